//! Integration tests of the iApp: the iExec contract end to end through the binary. One test
//! binary (`autotests = false`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adversarial;
mod common;
mod contract;
mod protected_data;
