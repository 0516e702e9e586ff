//! candle-transformers' quantized Llama and Qwen2 forward passes, kept for models with a
//! matrix type our kernels lack (`IEXEC_LLM_ENGINE=candle` forces them). candle reads all
//! weights into memory and keeps an f32 KV cache; its logits are not bit-identical to ours.

use crate::hparams::{Arch, Hparams};
use crate::Error;
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};

/// candle's weights and KV cache for one model.
pub enum CandleModel {
    /// `quantized_llama::ModelWeights`.
    Llama(quantized_llama::ModelWeights),
    /// `quantized_qwen2::ModelWeights`.
    Qwen2(quantized_qwen2::ModelWeights),
}

impl CandleModel {
    /// Loads the tensors of `ct` from `reader` for a context of `context` tokens.
    ///
    /// # Errors
    /// [`Error::Inference`] if candle fails to read a tensor.
    pub fn load(
        mut ct: Content,
        hp: &Hparams,
        reader: &mut std::fs::File,
        context: usize,
    ) -> Result<Self, Error> {
        let device = Device::Cpu;
        Ok(match hp.arch {
            Arch::Llama => CandleModel::Llama(quantized_llama::ModelWeights::from_gguf(
                ct, reader, &device,
            )?),
            Arch::Qwen2 => {
                // Candle sizes its rotary tables by the context length in the metadata; give it
                // the context we will use rather than the 128k the model was trained for.
                ct.metadata
                    .insert("qwen2.context_length".into(), Value::U32(context as u32));
                CandleModel::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
                    ct, reader, &device,
                )?)
            }
        })
    }

    /// Logits of the token after `tokens`, fed at positions `pos..`.
    ///
    /// # Errors
    /// [`Error::Inference`] if candle's forward pass fails.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, Error> {
        let x = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = match self {
            CandleModel::Llama(m) => m.forward(&x, pos)?,
            CandleModel::Qwen2(m) => m.forward(&x, pos)?,
        };
        Ok(logits
            .squeeze(0)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1()?)
    }
}
