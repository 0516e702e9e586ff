//! Integration tests of the engine against llama.cpp's recorded outputs. One test binary
//! (`autotests = false`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod common;
mod memory;
mod r1_tokenizer;
mod reference;
