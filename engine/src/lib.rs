//! Deterministic inference of GGUF language models (the llama and qwen2 families) on CPUs.
//! Nothing here knows about iExec: the iApp (`app`) feeds it a prompt and writes what it
//! returns.
//!
//! # The determinism contract
//!
//! The same model file, prompt tokens, [`sampler::Settings`] and token limit give the same
//! generated tokens, hence the same bytes, on every machine this engine runs on:
//!
//! - **any thread count** (`IEXEC_LLM_THREADS`): every output value is computed by one thread
//!   in a fixed order; threads split outputs, never a sum;
//! - **any SIMD path** (`IEXEC_LLM_SIMD=scalar|avx2|avx512|amx`, chosen at run time, never at
//!   build time): integer block products are exact, and each block's float value is the
//!   scalar oracle's expression ([`kernels::scalar`]), added in the oracle's order.
//!
//! Tests hold every kernel to the oracle bit for bit, and the app's `result.json` to the same
//! bytes across paths and thread counts. candle's forward pass ([`forward::candle`]), kept for
//! models with a matrix type our kernels lack, makes no such promise.
//!
//! # Modules, in the order a run uses them
//!
//! - [`gguf`]: the bounded GGUF reader.
//! - [`hparams`]: hyperparameters from the metadata, checked against the tensor directory.
//! - [`memory`]: what a task will need, checked against a budget before loading.
//! - [`forward`]: the forward pass ([`forward::decoder`], ours; [`forward::candle`]) behind
//!   one [`forward::Model`].
//! - [`kernels`]: quantized matrix products: the scalar oracle, AVX2, AVX-512 VNNI, AMX, and the
//!   16-row interleaved layout ([`kernels::packed`]).
//! - [`tokenizer`]: the tokenizer from the GGUF metadata (or a `tokenizer.json`).
//! - [`template`]: the chat template (minijinja), user text kept plain.
//! - [`sampler`]: the seeded choice of the next token.
//! - [`generate`]: prefill, then one token at a time until a stop.
//! - [`error`]: the one [`Error`] type.
#![deny(missing_docs)]

pub mod error;
pub mod forward;
pub mod generate;
pub mod gguf;
pub mod hparams;
pub mod kernels;
pub mod memory;
pub mod sampler;
pub mod template;
pub mod tokenizer;

pub use error::Error;
