//! Token generation: prefill the prompt, then sample one token at a time until an
//! end-of-generation token, the token limit, the context end or the wall-clock deadline.
//!
//! Sampling is [`crate::sampler`], seeded: the same prompt, settings and seed give the same
//! tokens.

use crate::forward::Model;
use crate::sampler::{Sampler, Settings};
use crate::Error;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The model produced an end-of-generation token.
    Eos,
    /// `max_tokens` were generated, or the context is full.
    Length,
    /// The wall-clock budget ran out.
    Time,
    /// The engine failed; the tokens so far are kept.
    Error,
}

/// The outcome of a generation, complete or not.
#[derive(Debug)]
pub struct Generation {
    /// Generated token ids (end-of-generation token excluded).
    pub tokens: Vec<u32>,
    /// Why it stopped.
    pub finish: FinishReason,
    /// The engine error, when `finish` is [`FinishReason::Error`].
    pub error: Option<Error>,
    /// Time spent on the prompt.
    pub prefill: Duration,
    /// Time spent generating after the prompt.
    pub decode: Duration,
}

/// Generates a continuation of `prompt`. `out_of_time` is asked before each new token (the
/// caller compares the clock with its deadline); `on_token` sees each token as it is produced.
/// Engine failures do not lose the tokens already generated: they come back in the
/// [`Generation`] with [`FinishReason::Error`].
pub fn generate(
    model: &mut Model,
    prompt: &[u32],
    sampling: &Settings,
    max_tokens: usize,
    end_of_generation: &[u32],
    mut out_of_time: impl FnMut() -> bool,
    mut on_token: impl FnMut(u32),
) -> Generation {
    let mut sampler = Sampler::new(sampling);
    let mut g = Generation {
        tokens: Vec::new(),
        finish: FinishReason::Length,
        error: None,
        prefill: Duration::ZERO,
        decode: Duration::ZERO,
    };
    let start = Instant::now();
    let mut logits = match model.forward(prompt, 0) {
        Ok(l) => l,
        Err(e) => {
            g.finish = FinishReason::Error;
            g.error = Some(e);
            return g;
        }
    };
    g.prefill = start.elapsed();
    let start = Instant::now();
    loop {
        if out_of_time() {
            g.finish = FinishReason::Time;
            break;
        }
        let next = match sampler.sample(logits) {
            Ok(t) => t,
            Err(e) => {
                g.finish = FinishReason::Error;
                g.error = Some(e);
                break;
            }
        };
        if end_of_generation.contains(&next) {
            g.finish = FinishReason::Eos;
            break;
        }
        g.tokens.push(next);
        on_token(next);
        let pos = prompt.len() + g.tokens.len();
        if g.tokens.len() >= max_tokens || pos >= model.context {
            g.finish = FinishReason::Length;
            break;
        }
        logits = match model.forward(&[next], pos - 1) {
            Ok(l) => l,
            Err(e) => {
                g.finish = FinishReason::Error;
                g.error = Some(e);
                break;
            }
        };
    }
    g.decode = start.elapsed();
    g
}
