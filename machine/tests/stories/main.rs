//! The simulated machine as stories: a phone (the protocol's `PhoneUnlock` and a test
//! phone key) talking to a `Machine` through `Connection`s, in memory and with no sleeps;
//! and the `opkey-machine` process over its local socket.

mod persistence;
mod process;
mod relay;
mod support;
mod unlock;
