//! End-to-end tests of the workspace live in `e2e.rs` (`cargo test -p e2e-tests`); this
//! library is empty.
