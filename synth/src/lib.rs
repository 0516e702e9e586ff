//! Seeded synthetic GGUF models: real tensor names, shapes and quantization types, random
//! weights from a fixed generator, so the same seed always gives the same bytes (tests compare
//! the file's sha256 with the one the llama.cpp reference was recorded from).
//!
//! Two presets:
//! - [`Spec::tiny_qwen2`]: a 2-layer Qwen2 with q/k/v biases, a separate output head, the
//!   DeepSeek-R1 special tokens and every quantization type the app must read (Q4_0, Q4_1,
//!   Q4_K, Q6_K, Q8_0), for correctness tests against llama.cpp.
//! - [`Spec::deepseek_r1_1_5b`]: DeepSeek-R1-Distill-Qwen-1.5B's exact shapes in llama.cpp's
//!   Q4_K_M layout, for speed and memory benchmarks (a file with the real shapes costs the same
//!   per token as the real model).
#![deny(missing_docs)]

pub mod testing;

use anyhow::{Context, Result};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// The shape and quantization plan of a synthetic Qwen2 model.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `general.name`.
    pub name: &'static str,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Feed-forward size.
    pub n_ff: usize,
    /// Vocabulary size (padded with filler tokens past the real ones).
    pub n_vocab: usize,
    /// Training context length recorded in the metadata.
    pub n_ctx: u32,
    /// Type of tensor `name` in layer `layer` (`None` for tensors outside the blocks).
    pub dtype: fn(name: &str, layer: Option<usize>, n_layer: usize) -> GgmlDType,
}

impl Spec {
    /// A tiny Qwen2 that exercises every quantization type the app supports.
    pub fn tiny_qwen2() -> Self {
        Spec {
            name: "tiny-qwen2-synthetic",
            n_layer: 2,
            n_embd: 256,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 512,
            n_vocab: 320,
            n_ctx: 131072,
            dtype: |name, layer, _| match (name, layer) {
                ("token_embd.weight", _) => GgmlDType::Q8_0,
                ("output.weight", _) => GgmlDType::Q6K,
                ("attn_q.weight", Some(0)) | ("ffn_gate.weight", _) => GgmlDType::Q4K,
                ("attn_k.weight", _) => GgmlDType::Q4_0,
                ("attn_v.weight", _) | ("ffn_down.weight", Some(0)) => GgmlDType::Q6K,
                ("ffn_up.weight", _) => GgmlDType::Q4_1,
                _ => GgmlDType::Q8_0,
            },
        }
    }

    /// A one-layer Qwen2 of width 64 for a vocabulary of `n_vocab` tokens (a real tokenizer's,
    /// written with [`write_with_tokenizer`]): every matrix Q8_0, so that no row is narrower
    /// than a block.
    pub fn tiny_qwen2_for_vocab(n_vocab: usize) -> Self {
        Spec {
            name: "tiny-qwen2-real-tokenizer",
            n_layer: 1,
            n_embd: 64,
            n_head: 2,
            n_head_kv: 1,
            n_ff: 128,
            n_vocab,
            n_ctx: 131072,
            dtype: |_, _, _| GgmlDType::Q8_0,
        }
    }

    /// DeepSeek-R1-Distill-Qwen-1.5B's shapes with llama.cpp's Q4_K_M type choice
    /// (`llama-quant.cpp`: Q6_K output head, Q6_K `attn_v`/`ffn_down` in the layers
    /// `use_more_bits` picks, Q4_K elsewhere).
    pub fn deepseek_r1_1_5b() -> Self {
        Spec {
            name: "DeepSeek-R1-Distill-Qwen-1.5B-shaped-synthetic",
            n_layer: 28,
            n_embd: 1536,
            n_head: 12,
            n_head_kv: 2,
            n_ff: 8960,
            n_vocab: 151936,
            n_ctx: 131072,
            dtype: |name, layer, n| {
                let more_bits = |i: usize| i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
                match (name, layer) {
                    ("output.weight", _) => GgmlDType::Q6K,
                    ("attn_v.weight" | "ffn_down.weight", Some(i)) if more_bits(i) => {
                        GgmlDType::Q6K
                    }
                    _ => GgmlDType::Q4K,
                }
            },
        }
    }
}

/// DeepSeek's special tokens, in the order they follow the byte and merge tokens.
/// The `<think>` pair is user-defined (type 4) as in the real GGUF; the rest are control (3).
pub const SPECIAL_TOKENS: &[(&str, i32)] = &[
    ("<｜begin▁of▁sentence｜>", 3),
    ("<｜end▁of▁sentence｜>", 3),
    ("<｜User｜>", 3),
    ("<｜Assistant｜>", 3),
    ("<think>", 4),
    ("</think>", 4),
];

/// Merges of the synthetic vocabulary (byte-level text, as in GGUF).
const MERGES: &[(&str, &str)] = &[("h", "e"), ("Ġ", "t"), ("Ġt", "he"), ("i", "n"), ("a", "b")];

/// SplitMix64: a tiny, fixed generator, so the bytes never depend on a crate's version.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-a, a).
    fn uniform(&mut self, a: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (2.0 * u - 1.0) * a
    }

    fn tensor(&mut self, shape: &[usize], center: f32, a: f32) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| center + self.uniform(a)).collect();
        Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
    }
}

/// GPT-2's byte-to-character map: printable bytes stand for themselves, the rest move to
/// U+0100 and up (so a space is `Ġ`).
pub fn byte_char(b: u8) -> char {
    let printable = (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable {
        char::from(b)
    } else {
        let rank = (0..=b)
            .filter(|x| !((b'!'..=b'~').contains(x) || (0xA1..=0xAC).contains(x) || *x >= 0xAE))
            .count() as u32;
        char::from_u32(255 + rank).unwrap_or('?')
    }
}

/// Token texts and types: 256 bytes, the merges' results, the special tokens, then filler.
pub fn vocabulary(n_vocab: usize) -> (Vec<String>, Vec<i32>) {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    tokens.extend(MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    let mut types = vec![1; tokens.len()];
    for (t, ty) in SPECIAL_TOKENS {
        tokens.push((*t).to_string());
        types.push(*ty);
    }
    while tokens.len() < n_vocab {
        tokens.push(format!("[filler{}]", tokens.len()));
        types.push(1);
    }
    (tokens, types)
}

/// Writes a synthetic model to `path`. `chat_template` becomes `tokenizer.chat_template`.
/// `progress` is called with each tensor's name as it is made.
///
/// # Errors
/// If a tensor cannot be quantized or the file cannot be written.
pub fn write(
    spec: &Spec,
    seed: u64,
    chat_template: &str,
    path: &std::path::Path,
    progress: impl FnMut(&str),
) -> Result<()> {
    let tensors = tensors(spec, seed, progress)?;
    let metadata = metadata(spec, chat_template);
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let tmp = path.with_extension("part");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    gguf_file::write(&mut file, &md, &ts)?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Writes a synthetic model whose tokenizer and chat template are copied, value for value,
/// from `source`'s metadata (every `tokenizer.*` key, and `general.name`/`general.basename`):
/// a real vocabulary with tiny random weights. `spec.n_vocab` must be the source's token
/// count.
///
/// # Errors
/// If the source has no token list of `spec.n_vocab` entries, a tensor cannot be quantized,
/// or the file cannot be written.
pub fn write_with_tokenizer(
    spec: &Spec,
    seed: u64,
    source: &std::collections::HashMap<String, Value>,
    path: &std::path::Path,
) -> Result<()> {
    let n = match source.get("tokenizer.ggml.tokens") {
        Some(Value::Array(t)) => t.len(),
        _ => anyhow::bail!("the source has no tokenizer.ggml.tokens"),
    };
    anyhow::ensure!(
        n == spec.n_vocab,
        "{n} tokens, the spec has {}",
        spec.n_vocab
    );
    let tensors = tensors(spec, seed, |_| {})?;
    let mut metadata: Vec<(String, Value)> = hyperparameters(spec)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let mut copied: Vec<(&String, &Value)> = source
        .iter()
        .filter(|(k, _)| {
            k.starts_with("tokenizer.") || *k == "general.name" || *k == "general.basename"
        })
        .collect();
    copied.sort_by(|a, b| a.0.cmp(b.0));
    metadata.retain(|(k, _)| k != "general.name");
    metadata.extend(copied.into_iter().map(|(k, v)| (k.clone(), v.clone())));
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let tmp = path.with_extension("part");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    gguf_file::write(&mut file, &md, &ts)?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Every tensor of `spec`, quantized, drawn from the generator seeded with `seed` in a fixed
/// order (the order is part of the bytes).
fn tensors(
    spec: &Spec,
    seed: u64,
    mut progress: impl FnMut(&str),
) -> Result<Vec<(String, QTensor)>> {
    let mut rng = Rng(seed);
    let (e, f, v) = (spec.n_embd, spec.n_ff, spec.n_vocab);
    let kv = spec.n_head_kv * (e / spec.n_head);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, layer: Option<usize>, t: Tensor, quantize: bool| -> Result<()> {
        progress(&name);
        let base = name.rsplit_once("blk.").map_or(name.as_str(), |(_, r)| {
            r.split_once('.').map_or(r, |(_, rest)| rest)
        });
        let dtype = if quantize {
            (spec.dtype)(base, layer, spec.n_layer)
        } else {
            GgmlDType::F32
        };
        let q = QTensor::quantize(&t, dtype).with_context(|| format!("quantizing {name}"))?;
        tensors.push((name, q));
        Ok(())
    };
    // Scales keep activations of order one through the layers: weights ~U(-a, a) with a about
    // sqrt(3 / fan_in).
    let w = |fan_in: usize| (3.0 / fan_in as f32).sqrt();
    add(
        "token_embd.weight".into(),
        None,
        rng.tensor(&[v, e], 0.0, 1.0)?,
        true,
    )?;
    for i in 0..spec.n_layer {
        let p = |n: &str| format!("blk.{i}.{n}");
        let l = Some(i);
        add(p("attn_norm.weight"), l, rng.tensor(&[e], 1.0, 0.1)?, false)?;
        add(p("attn_q.weight"), l, rng.tensor(&[e, e], 0.0, w(e))?, true)?;
        add(
            p("attn_k.weight"),
            l,
            rng.tensor(&[kv, e], 0.0, w(e))?,
            true,
        )?;
        add(
            p("attn_v.weight"),
            l,
            rng.tensor(&[kv, e], 0.0, w(e))?,
            true,
        )?;
        add(p("attn_q.bias"), l, rng.tensor(&[e], 0.0, 0.1)?, false)?;
        add(p("attn_k.bias"), l, rng.tensor(&[kv], 0.0, 0.1)?, false)?;
        add(p("attn_v.bias"), l, rng.tensor(&[kv], 0.0, 0.1)?, false)?;
        add(
            p("attn_output.weight"),
            l,
            rng.tensor(&[e, e], 0.0, w(e))?,
            true,
        )?;
        add(p("ffn_norm.weight"), l, rng.tensor(&[e], 1.0, 0.1)?, false)?;
        add(
            p("ffn_gate.weight"),
            l,
            rng.tensor(&[f, e], 0.0, w(e))?,
            true,
        )?;
        add(p("ffn_up.weight"), l, rng.tensor(&[f, e], 0.0, w(e))?, true)?;
        add(
            p("ffn_down.weight"),
            l,
            rng.tensor(&[e, f], 0.0, w(f))?,
            true,
        )?;
    }
    add(
        "output_norm.weight".into(),
        None,
        rng.tensor(&[e], 1.0, 0.1)?,
        false,
    )?;
    add(
        "output.weight".into(),
        None,
        rng.tensor(&[v, e], 0.0, w(e))?,
        true,
    )?;
    Ok(tensors)
}

/// The metadata: Qwen2 hyperparameters, the synthetic vocabulary with DeepSeek-R1's special
/// tokens, and `chat_template`.
fn metadata(spec: &Spec, chat_template: &str) -> Vec<(&'static str, Value)> {
    let (tokens, types) = vocabulary(spec.n_vocab);
    let bos = tokens
        .iter()
        .position(|t| t == SPECIAL_TOKENS[0].0)
        .unwrap_or(0) as u32;
    let eos = tokens
        .iter()
        .position(|t| t == SPECIAL_TOKENS[1].0)
        .unwrap_or(0) as u32;
    let s = |x: &str| Value::String(x.to_string());
    let mut metadata = hyperparameters(spec);
    metadata.extend([
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s("deepseek-r1-qwen")),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        (
            "tokenizer.ggml.merges",
            Value::Array(
                MERGES
                    .iter()
                    .map(|(a, b)| Value::String(format!("{a} {b}")))
                    .collect(),
            ),
        ),
        ("tokenizer.ggml.bos_token_id", Value::U32(bos)),
        ("tokenizer.ggml.eos_token_id", Value::U32(eos)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
        ("tokenizer.chat_template", s(chat_template)),
    ]);
    metadata
}

/// The Qwen2 hyperparameters of `spec`.
fn hyperparameters(spec: &Spec) -> Vec<(&'static str, Value)> {
    let u32v = |x: usize| Value::U32(x as u32);
    vec![
        ("general.architecture", Value::String("qwen2".into())),
        ("general.name", Value::String(spec.name.into())),
        ("qwen2.block_count", u32v(spec.n_layer)),
        ("qwen2.context_length", Value::U32(spec.n_ctx)),
        ("qwen2.embedding_length", u32v(spec.n_embd)),
        ("qwen2.feed_forward_length", u32v(spec.n_ff)),
        ("qwen2.attention.head_count", u32v(spec.n_head)),
        ("qwen2.attention.head_count_kv", u32v(spec.n_head_kv)),
        ("qwen2.rope.freq_base", Value::F32(10000.0)),
        ("qwen2.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
    ]
}
