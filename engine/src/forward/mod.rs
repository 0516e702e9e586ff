//! The forward pass: a loaded model and its KV cache, fed tokens at positions, returning the
//! logits of the next token.
//!
//! Two passes exist. [`decoder`] is ours and the default: weights mapped from the file, our
//! kernels, an f16 KV cache, bit-identical at any thread count and on any SIMD path.
//! [`candle`] is candle-transformers' quantized Llama/Qwen2, for models with a matrix type
//! our kernels lack. [`Engine::choose`] picks one; [`Model`] hides which.
//!
//! [`Model::forward`] feeds the model's own sequence. On our pass, [`Model::feed`] also runs
//! several [`Sequence`]s at once, a batched decode step whose logits are, for each sequence,
//! the bits it gets alone.

use crate::gguf::Gguf;
use crate::hparams::Hparams;
use crate::Error;
use candle_core::quantized::gguf_file::Content;

pub mod candle;
pub mod decoder;

/// Which forward pass runs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Ours ([`decoder`]): mapped weights, our kernels, f16 KV cache, deterministic.
    /// `IEXEC_LLM_ENGINE=own`.
    Own,
    /// candle-transformers' quantized Llama/Qwen2 ([`candle`]). `IEXEC_LLM_ENGINE=candle`.
    Candle,
}

impl Engine {
    /// `IEXEC_LLM_ENGINE` (`own` or `candle`), else ours, unless the model has a matrix type
    /// our kernels lack (then candle's, which reads more types).
    ///
    /// # Errors
    /// [`Error::Setting`] for another value, or `own` for a model it cannot run.
    pub fn choose(ct: &Content) -> Result<Engine, Error> {
        let unsupported = decoder::unsupported(ct);
        match std::env::var("IEXEC_LLM_ENGINE").ok().as_deref() {
            None | Some("") => Ok(if unsupported.is_none() {
                Engine::Own
            } else {
                Engine::Candle
            }),
            Some("candle") => Ok(Engine::Candle),
            Some("own") => match unsupported {
                None => Ok(Engine::Own),
                Some(why) => Err(Error::Setting(format!(
                    "IEXEC_LLM_ENGINE=own cannot run this model: {why}"
                ))),
            },
            Some(other) => Err(Error::Setting(format!(
                "IEXEC_LLM_ENGINE={other:?}: use own or candle"
            ))),
        }
    }

    /// The name logs and `IEXEC_LLM_ENGINE` use.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Own => "own",
            Engine::Candle => "candle",
        }
    }
}

enum Pass {
    Decoder(Box<decoder::Decoder>),
    Candle(Box<candle::CandleModel>),
}

/// A sequence of its own for [`Model::feed`]: its KV cache and how many tokens it holds.
pub struct Sequence {
    cache: decoder::KvCache,
    len: usize,
    model: u64,
}

impl Sequence {
    /// Tokens fed so far: the position of the next one.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A loaded model with its KV cache.
pub struct Model {
    pass: Pass,
    /// Which load this is, so that a [`Sequence`] is fed only to the model that made it.
    id: u64,
    /// Hyperparameters.
    pub hparams: Hparams,
    /// Usable context length in tokens (prompt + generated).
    pub context: usize,
}

impl Model {
    /// Loads the weights of a parsed GGUF file. `max_context` caps the context length (the
    /// model's own training length and the engine's limit cap it too).
    ///
    /// # Errors
    /// [`Error::Model`] if the hyperparameters or tensors are inconsistent, [`Error::Inference`]
    /// if a tensor cannot be loaded.
    pub fn load(gguf: Gguf, reader: &mut std::fs::File, max_context: usize) -> Result<Self, Error> {
        let engine = Engine::choose(&gguf.content)?;
        Self::load_with(gguf, reader, max_context, engine)
    }

    /// The same with the engine given.
    ///
    /// # Errors
    /// As [`Model::load`]; [`Error::Model`] when our engine lacks a kernel for the model.
    pub fn load_with(
        gguf: Gguf,
        reader: &mut std::fs::File,
        max_context: usize,
        engine: Engine,
    ) -> Result<Self, Error> {
        let ct = gguf.content;
        let hparams = Hparams::from_gguf(&ct)?;
        let context = hparams.context_for(engine, max_context);
        let pass = match engine {
            Engine::Own => {
                if let Some(why) = decoder::unsupported(&ct) {
                    return Err(Error::Model(format!("our engine cannot run it: {why}")));
                }
                Pass::Decoder(Box::new(decoder::Decoder::load(
                    &ct, &hparams, reader, context,
                )?))
            }
            Engine::Candle => Pass::Candle(Box::new(candle::CandleModel::load(
                ct, &hparams, reader, context,
            )?)),
        };
        static LOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(Self {
            pass,
            id: LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            hparams,
            context,
        })
    }

    /// Feeds `tokens` at positions `pos..pos + tokens.len()` and returns the logits for the
    /// token that follows the last of them.
    ///
    /// # Errors
    /// [`Error::Inference`] if the forward pass fails or the positions would run past the
    /// context, or a token is outside the vocabulary.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, Error> {
        self.check(tokens, pos)?;
        match &mut self.pass {
            Pass::Decoder(m) => m.forward(tokens, pos),
            Pass::Candle(m) => m.forward(tokens, pos),
        }
    }

    fn check(&self, tokens: &[u32], pos: usize) -> Result<(), Error> {
        if tokens.is_empty() || pos.saturating_add(tokens.len()) > self.context {
            return Err(Error::Inference(format!(
                "{} tokens at position {pos} do not fit the context of {}",
                tokens.len(),
                self.context
            )));
        }
        if let Some(t) = tokens.iter().find(|t| **t as usize >= self.hparams.n_vocab) {
            return Err(Error::Inference(format!(
                "token id {t} is outside the vocabulary"
            )));
        }
        Ok(())
    }

    /// A new, empty sequence for [`Model::feed`], with a KV cache of the model's context.
    ///
    /// # Errors
    /// [`Error::Inference`] on candle's pass, which keeps one sequence.
    pub fn sequence(&self) -> Result<Sequence, Error> {
        match &self.pass {
            Pass::Decoder(m) => Ok(Sequence {
                cache: m.new_cache()?,
                len: 0,
                model: self.id,
            }),
            Pass::Candle(_) => Err(Error::Inference(
                "several sequences need our engine (IEXEC_LLM_ENGINE=own)".into(),
            )),
        }
    }

    /// Feeds each sequence its tokens, all in one pass through the weights, and returns for
    /// each the logits of the token after its last. Each sequence's logits are the bits that
    /// feeding it alone gives (and the bits of [`Model::forward`] on the same tokens).
    ///
    /// Every input is checked before anything runs: on an error no sequence has moved.
    ///
    /// # Errors
    /// [`Error::Inference`] for an empty batch, a sequence given no tokens, tokens past the
    /// context or outside the vocabulary, a sequence made by another model, or a failure of
    /// the forward pass.
    pub fn feed(&self, batch: &mut [(&mut Sequence, &[u32])]) -> Result<Vec<Vec<f32>>, Error> {
        if batch.is_empty() {
            return Err(Error::Inference("an empty batch".into()));
        }
        for (i, (s, tokens)) in batch.iter().enumerate() {
            if s.model != self.id {
                return Err(Error::Inference(format!(
                    "sequence {i} was made by another model"
                )));
            }
            self.check(tokens, s.len).map_err(|e| match e {
                Error::Inference(m) => Error::Inference(format!("sequence {i}: {m}")),
                e => e,
            })?;
        }
        let Pass::Decoder(m) = &self.pass else {
            return Err(Error::Inference(
                "several sequences need our engine (IEXEC_LLM_ENGINE=own)".into(),
            ));
        };
        let mut spans: Vec<decoder::Span<'_>> = batch
            .iter_mut()
            .map(|(s, tokens)| decoder::Span {
                pos: s.len,
                cache: &mut s.cache,
                tokens,
            })
            .collect();
        let logits = m.forward_many(&mut spans)?;
        drop(spans);
        for (s, tokens) in batch.iter_mut() {
            s.len += tokens.len();
        }
        Ok(logits)
    }
}
