//! The simulated machine as stories: a phone (the protocol's `PhoneUnlock` and a test
//! phone key) talking to a `Machine` through `Connection`s, in memory and with no sleeps;
//! the `opkey-machine` process over its local socket; and the unit reporting its usage
//! sessions to a real backend.

mod keypad;
mod keypad_process;
mod keypad_refresh;
mod persistence;
mod process;
mod relay;
mod reporting;
mod support;
mod unlock;
