//! End-to-end stories against a real server on 127.0.0.1:0.

mod access;
mod app_links;
mod binary;
mod common;
mod digital_key;
mod events;
mod import;
mod json_bodies;
mod keys;
mod machine_usage;
mod operators;
mod perf;
mod phone;
mod pins;
mod sms_http;
