//! Hyperparameters from GGUF metadata, checked against the tensor directory.
//!
//! Everything a file could get wrong (a missing key, a zero head count, a tensor of the wrong
//! shape, an absurd size) is caught here with a message that names it, before any forward pass
//! sees the file: candle's assumes a well-formed model and may divide by zero or index out of
//! range, and ours indexes the mapped file by these sizes.

use crate::forward::Engine;
use crate::Error;
use candle_core::quantized::gguf_file::{Content, Value};
use candle_transformers::models::quantized_llama;

/// Candle's quantized Llama precomputes rotary tables for this many positions
/// (`quantized_llama::MAX_SEQ_LEN`), so a Llama context can be no longer.
const LLAMA_MAX_CONTEXT: usize = quantized_llama::MAX_SEQ_LEN;
/// Limits that no real model of this family reaches; larger values mean a corrupt file.
const MAX_LAYERS: usize = 1024;
const MAX_HEADS: usize = 1024;
const MAX_VOCAB: usize = 1 << 21;

/// The architectures this app runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `general.architecture = "llama"` (Llama, SmolLM, ...).
    Llama,
    /// `general.architecture = "qwen2"` (Qwen2, DeepSeek-R1-Distill-Qwen).
    Qwen2,
}

impl Arch {
    /// The GGUF architecture name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }
}

/// Hyperparameters read from GGUF metadata.
#[derive(Debug, Clone)]
pub struct Hparams {
    /// Architecture.
    pub arch: Arch,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention).
    pub n_head_kv: usize,
    /// Feed-forward size.
    pub n_ff: usize,
    /// Context length the model was trained for.
    pub n_ctx_train: usize,
    /// Vocabulary size (rows of the token embedding).
    pub n_vocab: usize,
}

impl Hparams {
    /// The context `engine` will use when asked for `max_context` tokens: no more than the
    /// model was trained for (and candle's Llama caps its rotary table at 4096).
    pub fn context_for(&self, engine: Engine, max_context: usize) -> usize {
        let c = self.n_ctx_train.min(max_context);
        if engine == Engine::Candle && self.arch == Arch::Llama {
            c.min(LLAMA_MAX_CONTEXT)
        } else {
            c
        }
    }

    /// Reads and checks the hyperparameters of a GGUF model.
    ///
    /// # Errors
    /// [`Error::Model`] for an unsupported architecture, a missing or non-integer key, or values
    /// that contradict each other or the tensor directory.
    pub fn from_gguf(ct: &Content) -> Result<Self, Error> {
        let arch = match md(ct, "general.architecture")?.to_string() {
            Ok(a) if a == "llama" => Arch::Llama,
            Ok(a) if a == "qwen2" => Arch::Qwen2,
            Ok(a) => {
                return Err(Error::Model(format!(
                    "architecture {a:?} is not supported (llama and qwen2 are)"
                )))
            }
            Err(_) => return Err(Error::Model("general.architecture is not a string".into())),
        };
        let a = arch.name();
        let int = |key: &str| -> Result<usize, Error> {
            let k = format!("{a}.{key}");
            let v = md(ct, &k)?;
            let n = v.to_u64().or_else(|_| v.to_u32().map(u64::from));
            n.ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::Model(format!("{k} must be a positive integer, got {v:?}")))
        };
        let n_embd = int("embedding_length")?;
        let n_head = int("attention.head_count")?;
        let n_head_kv = int("attention.head_count_kv")?;
        let hp = Hparams {
            arch,
            n_layer: int("block_count")?,
            n_embd,
            n_head,
            n_head_kv,
            n_ff: int("feed_forward_length")?,
            n_ctx_train: int("context_length")?,
            n_vocab: match ct.tensor_infos.get("token_embd.weight") {
                Some(t) => t.shape.dims().first().copied().unwrap_or(0),
                None => return Err(Error::Model("missing tensor token_embd.weight".into())),
            },
        };
        let bad = |m: String| Err(Error::Model(m));
        if hp.n_layer > MAX_LAYERS || n_head > MAX_HEADS || hp.n_vocab > MAX_VOCAB {
            return bad(format!("implausible sizes: {hp:?}"));
        }
        if n_embd % n_head != 0 || n_head % n_head_kv != 0 || (n_embd / n_head) % 2 != 0 {
            return bad(format!(
                "inconsistent attention: {n_embd} hidden, {n_head} heads, {n_head_kv} KV heads"
            ));
        }
        if arch == Arch::Llama {
            if let Some(rd) = ct.metadata.get("llama.rope.dimension_count") {
                if rd.to_u32().ok().map(|r| r as usize) != Some(n_embd / n_head) {
                    return bad(format!("llama.rope.dimension_count {rd:?} != head size"));
                }
            }
            if ct
                .metadata
                .get("llama.expert_count")
                .and_then(|v| v.to_u32().ok())
                .unwrap_or(0)
                > 0
            {
                return bad("mixture-of-experts models are not supported".into());
            }
        }
        for key in ["attention.layer_norm_rms_epsilon", "rope.freq_base"] {
            if let Some(v) = ct.metadata.get(&format!("{a}.{key}")) {
                if !v.to_f32().is_ok_and(|x| x.is_finite() && x > 0.0) {
                    return bad(format!("{a}.{key} must be a positive number, got {v:?}"));
                }
            }
        }
        hp.check_tensors(ct)?;
        Ok(hp)
    }

    /// Checks that every tensor the forward pass reads exists with the expected shape.
    fn check_tensors(&self, ct: &Content) -> Result<(), Error> {
        let head_dim = self.n_embd / self.n_head;
        let kv = self.n_head_kv * head_dim;
        let (e, f, v) = (self.n_embd, self.n_ff, self.n_vocab);
        let mut want: Vec<(String, Vec<usize>)> = vec![
            ("token_embd.weight".into(), vec![v, e]),
            ("output_norm.weight".into(), vec![e]),
        ];
        if ct.tensor_infos.contains_key("output.weight") {
            want.push(("output.weight".into(), vec![v, e]));
        }
        for i in 0..self.n_layer {
            let p = format!("blk.{i}");
            want.extend([
                (format!("{p}.attn_norm.weight"), vec![e]),
                (format!("{p}.attn_q.weight"), vec![e, e]),
                (format!("{p}.attn_k.weight"), vec![kv, e]),
                (format!("{p}.attn_v.weight"), vec![kv, e]),
                (format!("{p}.attn_output.weight"), vec![e, e]),
                (format!("{p}.ffn_norm.weight"), vec![e]),
                (format!("{p}.ffn_gate.weight"), vec![f, e]),
                (format!("{p}.ffn_up.weight"), vec![f, e]),
                (format!("{p}.ffn_down.weight"), vec![e, f]),
            ]);
            if self.arch == Arch::Qwen2 {
                want.extend([
                    (format!("{p}.attn_q.bias"), vec![e]),
                    (format!("{p}.attn_k.bias"), vec![kv]),
                    (format!("{p}.attn_v.bias"), vec![kv]),
                ]);
            }
        }
        for (name, shape) in want {
            match ct.tensor_infos.get(&name) {
                None => return Err(Error::Model(format!("missing tensor {name}"))),
                Some(t) if t.shape.dims() != shape.as_slice() => {
                    return Err(Error::Model(format!(
                        "tensor {name} has shape {:?}, expected {shape:?}",
                        t.shape.dims()
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

fn md<'a>(ct: &'a Content, key: &str) -> Result<&'a Value, Error> {
    ct.metadata
        .get(key)
        .ok_or_else(|| Error::Model(format!("missing metadata key {key}")))
}
