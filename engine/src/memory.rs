//! The memory budget: what a task needs, estimated before it is loaded, against what the
//! worker allows (6 GiB on iExec TDX workers by default). A task that would not fit is
//! refused with the figures, instead of being killed half-way by the kernel.
//!
//! The estimate follows the engine:
//! - the tensor data of the GGUF file (read into memory by candle; mapped by ours, and every
//!   page of it is touched once per token, so it counts all the same), and with ours on
//!   AVX-512 VNNI a thirty-second more: the matrices are held interleaved (Q4_K records are
//!   2.8% larger than their blocks, the other types' the same size), their mapped pages
//!   dropped;
//! - candle only: the token embedding expanded to f32 (`n_vocab × n_embd × 4`);
//! - the KV cache for the whole context (`2 × layers × context × kv_heads × head_dim`), f32
//!   plus one layer's copy while it grows with candle, f16 preallocated with ours;
//! - for the prompt, fed in chunks of Q = min(P, 128) tokens: attention scores and
//!   probabilities (`2 × heads × Q × P × 4`) and the feed-forward activations
//!   (`3 × Q × n_ff × 4`), plus the logits;
//! - a fixed allowance for the binary, tokenizer and allocator slack.

use crate::forward::Engine;
use crate::hparams::Hparams;
use crate::Error;

/// Default budget: the memory an iExec TDX worker gives a task.
pub const DEFAULT_BUDGET: u64 = 6 << 30;
/// Binary, tokenizer, allocator slack.
const FIXED_BYTES: u64 = 256 << 20;

/// An estimate, in bytes, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Tensor data read from the model file.
    pub weights: u64,
    /// The token embedding expanded to f32 (candle).
    pub embedding: u64,
    /// KV cache for the context.
    pub kv_cache: u64,
    /// Scratch for a prompt of the given length.
    pub prompt_scratch: u64,
    /// Everything else.
    pub fixed: u64,
}

impl Estimate {
    /// The sum.
    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.embedding)
            .saturating_add(self.kv_cache)
            .saturating_add(self.prompt_scratch)
            .saturating_add(self.fixed)
    }
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30))
}

/// The estimate for a model whose tensor data is `tensor_bytes`, run with `context` tokens and
/// a prompt of `prompt_tokens`.
pub fn estimate(
    engine: Engine,
    hp: &Hparams,
    tensor_bytes: u64,
    context: usize,
    prompt_tokens: usize,
) -> Estimate {
    let u = |x: usize| x as u64;
    let head_dim = u(hp.n_embd / hp.n_head.max(1));
    let (kv_bytes, growth, embedding, weights) = match engine {
        Engine::Candle => (4, 1, u(hp.n_vocab) * u(hp.n_embd) * 4, tensor_bytes),
        Engine::Own => (2, 0, 0, tensor_bytes.saturating_add(tensor_bytes / 32)),
    };
    let kv_layer = 2 * u(context) * u(hp.n_head_kv) * head_dim * kv_bytes;
    // The prompt is fed in chunks (generate::PREFILL_CHUNK): each chunk's queries attend to
    // every key so far.
    let p = u(prompt_tokens);
    let q = p.min(u(crate::generate::PREFILL_CHUNK));
    Estimate {
        weights,
        embedding,
        kv_cache: kv_layer.saturating_mul(u(hp.n_layer) + growth),
        prompt_scratch: (2 * u(hp.n_head) * q * p * 4)
            .saturating_add(3 * q * u(hp.n_ff) * 4)
            .saturating_add(u(hp.n_vocab) * 4 * 2),
        fixed: FIXED_BYTES,
    }
}

/// Refuses an estimate over the budget, saying what takes the room and what to change.
///
/// # Errors
/// [`Error::MemoryBudget`] when `e.total() > budget`.
pub fn check(e: &Estimate, budget: u64, context: usize, prompt_tokens: usize) -> Result<(), Error> {
    if e.total() <= budget {
        return Ok(());
    }
    Err(Error::MemoryBudget(format!(
        "the task needs about {} but the budget is {}: weights {}, expanded token embedding {}, \
         KV cache for context={context} {}, prompt of {prompt_tokens} tokens {}; lower \
         context= (or the prompt), or raise --memory-budget if the worker has the memory",
        gib(e.total()),
        gib(budget),
        gib(e.weights),
        gib(e.embedding),
        gib(e.kv_cache),
        gib(e.prompt_scratch),
    )))
}

/// Parses a size: bytes, or a number with KiB/MiB/GiB (also K/M/G, powers of 1024).
///
/// # Errors
/// A message naming the bad value.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (use KiB, MiB or GiB)"
            ))
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 6GiB, 512MiB)"))?;
    let bytes = n * mult as f64;
    if !(1.0..1e15).contains(&bytes) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// Peak resident set size of this process, from `/proc/self/status`.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::hparams::Arch;

    /// DeepSeek-R1-Distill-Qwen-1.5B's shapes.
    fn r1() -> Hparams {
        Hparams {
            arch: Arch::Qwen2,
            n_layer: 28,
            n_embd: 1536,
            n_head: 12,
            n_head_kv: 2,
            n_ff: 8960,
            n_ctx_train: 131_072,
            n_vocab: 151_936,
        }
    }

    #[test]
    fn the_default_context_fits_and_the_full_one_is_refused_with_figures() {
        let q4km = 1_117_320_736; // the pinned Q4_K_M file's size, an upper bound of its tensors
        let e = estimate(Engine::Candle, &r1(), q4km, 4096, 512);
        assert_eq!(e.kv_cache, 2 * 4096 * 2 * 128 * 4 * 29);
        assert_eq!(e.embedding, 151_936 * 1536 * 4);
        assert!(check(&e, DEFAULT_BUDGET, 4096, 512).is_ok(), "{e:?}");
        // Ours: the embedding stays quantized, the cache is f16 and preallocated.
        let own = estimate(Engine::Own, &r1(), q4km, 4096, 512);
        assert_eq!(
            (own.embedding, own.kv_cache, own.weights),
            (0, 2 * 4096 * 2 * 128 * 2 * 28, q4km + q4km / 32)
        );
        // 131072 tokens of f32 KV cache alone is 7.8 GB.
        let e = estimate(Engine::Candle, &r1(), q4km, 131_072, 512);
        let err = check(&e, DEFAULT_BUDGET, 131_072, 512)
            .unwrap_err()
            .to_string();
        assert!(err.contains("but the budget is 6.00 GiB"), "{err}");
        assert!(
            err.contains("KV cache for context=131072 7.25 GiB"),
            "{err}"
        );
        assert!(err.contains("lower context="), "{err}");
        // A long prompt's scratch counts too, one chunk of 128 queries over all its keys.
        let e = estimate(Engine::Candle, &r1(), q4km, 32_768, 30_000);
        assert_eq!(
            e.prompt_scratch,
            2 * 12 * 128 * 30_000 * 4 + 3 * 128 * 8960 * 4 + 151_936 * 8
        );
        let short = estimate(Engine::Candle, &r1(), q4km, 32_768, 100);
        assert_eq!(
            short.prompt_scratch,
            2 * 12 * 100 * 100 * 4 + 3 * 100 * 8960 * 4 + 151_936 * 8
        );
    }

    #[test]
    fn sizes_parse_with_units_and_bad_ones_are_named() {
        assert_eq!(parse_size("6GiB").unwrap(), 6 << 30);
        assert_eq!(parse_size("512 MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("6GB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }
}
