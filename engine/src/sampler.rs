//! Choosing the next token from the logits: greedy (argmax) at temperature 0 (below
//! [`GREEDY_BELOW`]), else
//! temperature + top-p with candle's `LogitsProcessor`, seeded from the task's seed. The same
//! logits, settings and seed give the same token sequence.

use crate::Error;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Sampling temperature; 0 means greedy (argmax).
    pub temperature: f64,
    /// Nucleus sampling mass; 1 disables it.
    pub top_p: f64,
    /// Seed of the sampler's random generator.
    pub seed: u64,
}

/// Temperatures below this are greedy (argmax). Sampling divides the logits by the
/// temperature; below about 1e-37 the quotient overflows f32 and the weights turn to NaN, and
/// long before that the draw is argmax in all but exact ties. One stated rule is better than a
/// failure somewhere in the range `temperature` accepts.
pub const GREEDY_BELOW: f64 = 1e-4;

/// A seeded sampler.
pub struct Sampler {
    inner: LogitsProcessor,
}

impl Sampler {
    /// A sampler for `settings`.
    pub fn new(settings: &Settings) -> Self {
        let sampling = if settings.temperature < GREEDY_BELOW {
            Sampling::ArgMax
        } else if settings.top_p >= 1.0 {
            Sampling::All {
                temperature: settings.temperature,
            }
        } else {
            Sampling::TopP {
                p: settings.top_p,
                temperature: settings.temperature,
            }
        };
        Self {
            inner: LogitsProcessor::from_sampling(settings.seed, sampling),
        }
    }

    /// The next token.
    ///
    /// # Errors
    /// [`Error::Inference`] for empty or NaN logits, or a sampler failure.
    pub fn sample(&mut self, logits: Vec<f32>) -> Result<u32, Error> {
        if logits.is_empty() || logits.iter().any(|x| x.is_nan()) {
            return Err(Error::Inference(
                "the model produced empty or NaN logits".into(),
            ));
        }
        let n = logits.len();
        let t = Tensor::from_vec(logits, n, &Device::Cpu)?;
        Ok(self.inner.sample(&t)?)
    }
}
