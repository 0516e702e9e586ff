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

/// Prompt tokens fed to the model per call. Between chunks the deadline is asked again, so a
/// long prompt cannot run past it; our engine gives the same bits for any split (tested).
pub const PREFILL_CHUNK: usize = 128;

/// The outcome of a generation, complete or not.
#[derive(Debug)]
pub struct Generation {
    /// Generated token ids (end-of-generation token excluded).
    pub tokens: Vec<u32>,
    /// Why it stopped.
    pub finish: FinishReason,
    /// The engine error, when `finish` is [`FinishReason::Error`].
    pub error: Option<Error>,
    /// Prompt tokens read: all of them, unless time ran out first.
    pub prefilled: usize,
    /// Time spent on the prompt.
    pub prefill: Duration,
    /// Time spent generating after the prompt.
    pub decode: Duration,
}

/// Generates a continuation of `prompt`, at most `max_tokens`.
///
/// `out_of_time(need)` is asked before each prompt chunk and each new token, with the time
/// the work ahead is expected to take (for the prompt, the rest of it at the speed of the
/// chunks so far; for a token, zero): the caller answers whether that would run past its
/// deadline. A prompt that cannot be read in time stops early, with
/// [`Generation::prefilled`] short of the prompt. `on_token` sees each token as it is
/// produced. Engine failures do not lose the tokens already generated: they come back in the
/// [`Generation`] with [`FinishReason::Error`].
pub fn generate(
    model: &mut Model,
    prompt: &[u32],
    sampling: &Settings,
    max_tokens: usize,
    end_of_generation: &[u32],
    mut out_of_time: impl FnMut(Duration) -> bool,
    mut on_token: impl FnMut(u32),
) -> Generation {
    let mut sampler = Sampler::new(sampling);
    let mut g = Generation {
        tokens: Vec::new(),
        finish: FinishReason::Length,
        error: None,
        prefilled: 0,
        prefill: Duration::ZERO,
        decode: Duration::ZERO,
    };
    let start = Instant::now();
    let mut logits = Vec::new();
    for chunk in prompt.chunks(PREFILL_CHUNK) {
        let left = prompt.len() - g.prefilled;
        let need = match g.prefilled {
            0 => Duration::ZERO,
            done => start.elapsed().mul_f64(left as f64 / done as f64),
        };
        if out_of_time(need) {
            g.finish = FinishReason::Time;
            g.prefill = start.elapsed();
            return g;
        }
        match model.forward(chunk, g.prefilled) {
            Ok(l) => logits = l,
            Err(e) => {
                g.finish = FinishReason::Error;
                g.error = Some(e);
                g.prefill = start.elapsed();
                return g;
            }
        }
        g.prefilled += chunk.len();
    }
    g.prefill = start.elapsed();
    let start = Instant::now();
    loop {
        if out_of_time(Duration::ZERO) {
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
