//! Our quantized matmul kernels beside candle's (`QMatMul`) on DeepSeek-R1-Distill-Qwen-1.5B's
//! matrix shapes (Q4_K, Q6_K) and SmolLM2-135M's (Q4_1, Q8_0), for one token (decode) and a
//! batch of 64 (prefill): milliseconds per call (the fastest of several) for the row kernels
//! (the `IEXEC_LLM_SIMD` path), candle, candle's time over our best, and the interleaved
//! kernels of every path this CPU has, side by side.
//!
//!   cargo bench -p engine --bench kernels [-- THREADS]
//!
//! candle's CPU matmul uses its own thread pool (rayon, all cores); ours uses THREADS
//! (default: the number of cores). Weights are random blocks with sane scales.
#![allow(clippy::unwrap_used)]

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{Device, Module, Tensor};
use engine::kernels::packed::{matmul_packed, Packed};
use engine::kernels::{matmul_pool, Isa, WType};
use std::time::Instant;

fn weights(t: WType, rows: usize, k: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut w: Vec<u8> = (0..rows * k / t.block_len() * t.block_bytes())
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u8
        })
        .collect();
    let f = half::f16::from_f32(0.01).to_bits().to_le_bytes();
    for b in w.chunks_exact_mut(t.block_bytes()) {
        match t {
            WType::Q6K => b[208..210].copy_from_slice(&f),
            WType::Q4_0 | WType::Q8_0 => b[0..2].copy_from_slice(&f),
            _ => {
                b[0..2].copy_from_slice(&f);
                b[2..4].copy_from_slice(&f);
            }
        }
    }
    w
}

/// The fastest of `reps` calls, in milliseconds (the least disturbed by other work).
fn time<F: FnMut()>(mut f: F, reps: usize) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let threads: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let isa = Isa::select().unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    println!("ours: {isa:?}, {threads} threads; candle 0.11.1 QMatMul (rayon)");
    println!(
        "{:<28} {:>6} {:>10} {:>10} {:>7}  interleaved ms, per path",
        "matrix (rows x k)", "tokens", "rows ms", "candle ms", "ratio"
    );
    for (name, t, g, rows, k) in [
        (
            "attn_q  Q4_K 1536x1536",
            WType::Q4K,
            GgmlDType::Q4K,
            1536,
            1536,
        ),
        (
            "ffn_up  Q4_K 8960x1536",
            WType::Q4K,
            GgmlDType::Q4K,
            8960,
            1536,
        ),
        (
            "ffn_down Q6_K 1536x8960",
            WType::Q6K,
            GgmlDType::Q6K,
            1536,
            8960,
        ),
        (
            "output  Q6_K 151936x1536",
            WType::Q6K,
            GgmlDType::Q6K,
            151_936,
            1536,
        ),
        (
            "SmolLM2 ffn_up Q4_1 1536x576",
            WType::Q4_1,
            GgmlDType::Q4_1,
            1536,
            576,
        ),
        (
            "SmolLM2 output Q8_0 49152x576",
            WType::Q8_0,
            GgmlDType::Q8_0,
            49152,
            576,
        ),
    ] {
        let w = weights(t, rows, k, 7);
        let q = qtensor_from_ggml(g, &w, vec![rows, k], &Device::Cpu).unwrap();
        let mm = QMatMul::from_qtensor(q).unwrap();
        // Every interleaved path this CPU has, side by side in one process.
        let packed: Vec<(Isa, Packed)> = Isa::available()
            .into_iter()
            .filter(|i| i.packs())
            .filter_map(|i| Packed::new(&pool, i, t, &w, rows, k).ok().map(|p| (i, p)))
            .collect();
        for tokens in [1usize, 64, 256] {
            let x: Vec<f32> = (0..tokens * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let xt = Tensor::from_vec(x.clone(), (1, tokens, k), &Device::Cpu).unwrap();
            let reps = if tokens == 1 { 100 } else { 20 };
            let ours = time(
                || drop(matmul_pool(&pool, isa, t, &w, rows, k, &x).unwrap()),
                reps,
            );
            let packed_ms: Vec<(Isa, f64)> = packed
                .iter()
                .map(|(i, p)| {
                    (
                        *i,
                        time(|| drop(matmul_packed(&pool, p, &x).unwrap()), reps),
                    )
                })
                .collect();
            let theirs = time(|| drop(mm.forward(&xt).unwrap()), reps);
            let best = packed_ms.iter().map(|p| p.1).fold(ours, f64::min);
            let cols: String = packed_ms
                .iter()
                .map(|(i, ms)| format!(" {:>6} {ms:>8.3}", i.name()))
                .collect();
            println!(
                "{name:<28} {tokens:>6} {ours:>10.3} {theirs:>10.3} {:>7.2}{cols}",
                theirs / best
            );
        }
    }
}
