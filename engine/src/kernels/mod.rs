//! Quantized matrix × activation kernels, ours: a scalar implementation that is the oracle,
//! and SIMD implementations chosen at run time (`is_x86_feature_detected!`), never by the
//! build's target CPU: the image is built once and runs on whatever host the worker has.
//!
//! Weights stay in GGUF's block layouts (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K). Activations are
//! quantized to 8 bits per block, as llama.cpp does ([`quant`]): 32-value blocks for
//! Q4_0/Q4_1/Q8_0 weights, 256-value blocks with 16-value partial sums for the K-quants.
//!
//! **Determinism.** Within a block every product and sum is an integer, exact on every path;
//! the block's float result is then formed by the same scalar expression on every path, and
//! blocks are summed in order. So every SIMD path gives the scalar oracle's bits, and a row's
//! dot product never depends on how rows are shared among threads.

/// `[f(0), f(1), ..]` for a SIMD kernel, built by a loop in the kernel itself:
/// `std::array::from_fn` calls its closure from a function compiled without the kernel's
/// target features, where each intrinsic becomes a call (perf put 7% of an R1 decode in
/// `try_from_fn` and an out-of-line `_mm512_or_si512`).
macro_rules! simd_array {
    ($zero:expr; $n:literal, |$i:ident| $body:expr) => {{
        let mut a = [$zero; $n];
        for ($i, slot) in a.iter_mut().enumerate() {
            *slot = $body;
        }
        a
    }};
}

pub mod packed;
pub mod quant;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86;
#[cfg(target_arch = "x86_64")]
pub mod x86_amx;
#[cfg(target_arch = "x86_64")]
pub mod x86_packed;
#[cfg(target_arch = "x86_64")]
pub mod x86_packed_avx2;

use half::f16;
use quant::{BlockQ8, BlockQ8K};

/// Weight block types the kernels take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WType {
    /// 32 values: f16 scale, 16 bytes of 4-bit values (offset 8).
    Q4_0,
    /// 32 values: f16 scale and min, 16 bytes of 4-bit values.
    Q4_1,
    /// 32 values: f16 scale, 32 signed bytes.
    Q8_0,
    /// 256 values: f16 scale and min, 12 bytes of 6-bit sub-block scales/mins, 128 bytes.
    Q4K,
    /// 256 values: 128 + 64 bytes of 6-bit values (offset 32), 16 signed scales, f16 scale.
    Q6K,
}

impl WType {
    /// Values per block.
    pub fn block_len(self) -> usize {
        match self {
            WType::Q4_0 | WType::Q4_1 | WType::Q8_0 => 32,
            WType::Q4K | WType::Q6K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            WType::Q4_0 => 18,
            WType::Q4_1 => 20,
            WType::Q8_0 => 34,
            WType::Q4K => 144,
            WType::Q6K => 210,
        }
    }

    /// Whether activations are quantized in 256-value blocks (K-quants) or 32-value ones.
    pub fn k_quant(self) -> bool {
        matches!(self, WType::Q4K | WType::Q6K)
    }
}

/// Which implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// The oracle.
    Scalar,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX-512 (F, BW, VL) with VNNI.
    Avx512Vnni,
    /// AVX-512 VNNI, and AMX int8 tiles for Q4_K products of 16 tokens or more (prefill):
    /// [`x86_amx`]. Linux must grant the process the tile state. Never the default.
    Amx,
}

impl Isa {
    /// Every path the engine has, scalar first, whether or not this CPU runs it.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni, Isa::Amx];

    /// The name `IEXEC_LLM_SIMD` takes for this path.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512",
            Isa::Amx => "amx",
        }
    }

    /// The best the CPU has (AMX where the CPU lists AMX-TILE and AMX-INT8 and Linux grants
    /// the tile state, [`x86_amx::tiles_granted`]), unless `IEXEC_LLM_SIMD` (`scalar`,
    /// `avx2`, `avx512`, `amx`) asks for another one it also has.
    ///
    /// # Errors
    /// A message when the variable names an unknown path or one the CPU lacks.
    pub fn select() -> Result<Isa, String> {
        Self::select_from(
            &Self::available(),
            std::env::var("IEXEC_LLM_SIMD").ok().as_deref(),
        )
    }

    /// [`Isa::select`] among the paths `available` (scalar first, best last), with `asked`
    /// the value of `IEXEC_LLM_SIMD`.
    ///
    /// # Errors
    /// As [`Isa::select`].
    pub fn select_from(available: &[Isa], asked: Option<&str>) -> Result<Isa, String> {
        match asked {
            // Every path gives the same bits, so the fastest is the default: on an Intel Xeon
            // with the tile state granted, AMX's R1 prefill of 512 tokens at 2 threads ran at
            // 230-237 tok/s against AVX-512 VNNI's 133-157.
            None | Some("") => Ok(available.last().copied().unwrap_or(Isa::Scalar)),
            Some(name) => {
                let Some(want) = Self::ALL.into_iter().find(|i| i.name() == name) else {
                    return Err(format!(
                        "IEXEC_LLM_SIMD={name:?}: use scalar, avx2, avx512 or amx"
                    ));
                };
                if available.contains(&want) {
                    Ok(want)
                } else {
                    Err(format!("IEXEC_LLM_SIMD={name}: this CPU lacks it"))
                }
            }
        }
    }

    /// Whether this path has kernels for the interleaved layout ([`packed`]).
    pub fn packs(self) -> bool {
        matches!(self, Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx)
    }

    /// Every path this CPU can run, scalar first.
    pub fn available() -> Vec<Isa> {
        let mut v = vec![Isa::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
            {
                v.push(Isa::Avx2);
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
                {
                    v.push(Isa::Avx512Vnni);
                    if x86_amx::tiles_granted() {
                        v.push(Isa::Amx);
                    }
                }
            }
        }
        v
    }
}

/// Activations quantized for one weight type: one row per token.
pub enum Acts {
    /// 32-value blocks.
    Q8(Vec<Vec<BlockQ8>>),
    /// 256-value blocks.
    Q8K(Vec<Vec<BlockQ8K>>),
}

impl Acts {
    /// Quantizes `tokens` rows of `k` values for weights of type `t`.
    ///
    /// # Panics
    /// Never for `k` a multiple of the block length; callers check shapes.
    pub fn quantize(t: WType, x: &[f32], k: usize) -> Acts {
        let rows = x.chunks_exact(k);
        if t.k_quant() {
            Acts::Q8K(rows.map(quant::quantize_q8k).collect())
        } else {
            Acts::Q8(rows.map(quant::quantize_q8).collect())
        }
    }

    fn len(&self) -> usize {
        match self {
            Acts::Q8(v) => v.len(),
            Acts::Q8K(v) => v.len(),
        }
    }
}

/// The dot product of one weight row (`row` bytes, GGUF layout) with one token's activations.
pub fn dot(isa: Isa, t: WType, row: &[u8], acts: &Acts, token: usize) -> f32 {
    match (acts, isa) {
        #[cfg(target_arch = "x86_64")]
        (Acts::Q8K(a), Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx) => {
            let a = &a[token];
            // SAFETY: Isa values other than Scalar come from `available()`, which checked
            // the CPU features these functions are compiled for.
            unsafe {
                match (t, isa) {
                    (WType::Q4K, Isa::Avx512Vnni | Isa::Amx) => x86::dot_q4k_avx512(row, a),
                    (WType::Q4K, _) => x86::dot_q4k_avx2(row, a),
                    (WType::Q6K, _) => x86::dot_q6k_avx2(row, a),
                    _ => scalar::dot_k(t, row, a),
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        (Acts::Q8(a), Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx) => {
            let a = &a[token];
            // SAFETY: as above.
            unsafe {
                match t {
                    WType::Q8_0 => x86::dot_q8_0_avx2(row, a),
                    WType::Q4_0 => x86::dot_q4_0_avx2(row, a),
                    _ => scalar::dot_32(t, row, a),
                }
            }
        }
        (Acts::Q8K(a), _) => scalar::dot_k(t, row, &a[token]),
        (Acts::Q8(a), _) => scalar::dot_32(t, row, &a[token]),
    }
}

/// Token tile: the activations of this many tokens are reused across every weight row of a
/// thread's share before the next tile (they stay in cache; weights are re-read once per tile).
const TOKEN_TILE: usize = 64;
/// Rows per task handed to the pool.
const ROWS_PER_TASK: usize = 32;

/// `out[token][row] = W[row] · x[token]` on a rayon pool (the engine's, built once): rows are cut into
/// fixed tasks of [`ROWS_PER_TASK`], each computed whole by one thread, so the bits never
/// depend on the pool's size.
///
/// # Errors
/// A message when the shapes do not fit the type.
pub fn matmul_pool(
    pool: &rayon::ThreadPool,
    isa: Isa,
    t: WType,
    w: &[u8],
    rows: usize,
    k: usize,
    x: &[f32],
) -> Result<Vec<f32>, String> {
    use rayon::prelude::*;
    let row_bytes = check_shapes(t, w, rows, k, x)?;
    let acts = Acts::quantize(t, x, k);
    let tokens = acts.len();
    // [row][token], then transposed (nothing to transpose for one token).
    let mut by_row = vec![0f32; rows * tokens];
    pool.install(|| {
        by_row
            .par_chunks_mut(ROWS_PER_TASK * tokens.max(1))
            .enumerate()
            .for_each(|(task, out)| {
                let r0 = task * ROWS_PER_TASK;
                let n = out.len() / tokens.max(1);
                for t0 in (0..tokens).step_by(TOKEN_TILE) {
                    let t1 = (t0 + TOKEN_TILE).min(tokens);
                    for r in 0..n {
                        let row = &w[(r0 + r) * row_bytes..(r0 + r + 1) * row_bytes];
                        for tok in t0..t1 {
                            out[r * tokens + tok] = dot(isa, t, row, &acts, tok);
                        }
                    }
                }
            });
    });
    if tokens == 1 {
        return Ok(by_row);
    }
    let mut out = vec![0f32; rows * tokens];
    for r in 0..rows {
        for tok in 0..tokens {
            out[tok * rows + r] = by_row[r * tokens + tok];
        }
    }
    Ok(out)
}

fn check_shapes(t: WType, w: &[u8], rows: usize, k: usize, x: &[f32]) -> Result<usize, String> {
    if k == 0 || !k.is_multiple_of(t.block_len()) {
        return Err(format!("k = {k} is not a multiple of {}", t.block_len()));
    }
    let row_bytes = k / t.block_len() * t.block_bytes();
    if w.len() != rows * row_bytes {
        return Err(format!(
            "weights are {} bytes, expected {rows} rows of {row_bytes}",
            w.len()
        ));
    }
    if !x.len().is_multiple_of(k) {
        return Err(format!(
            "activations of {} values are not rows of {k}",
            x.len()
        ));
    }
    Ok(row_bytes)
}

/// `out[token][row] = W[row] · x[token]` for `rows` weight rows of `k` values (`w` holds them
/// back to back in GGUF layout), `x` holding `tokens` rows of `k` activations, on a pool of
/// `threads` threads built for the call ([`matmul_pool`] reuses one).
///
/// # Errors
/// A message when the shapes do not fit the type or the pool cannot be built.
pub fn matmul(
    isa: Isa,
    t: WType,
    w: &[u8],
    rows: usize,
    k: usize,
    x: &[f32],
    threads: usize,
) -> Result<Vec<f32>, String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| format!("thread pool: {e}"))?;
    matmul_pool(&pool, isa, t, w, rows, k, x)
}

/// Σ a·b with `b` in f16 (widened exactly) over 8 lane accumulators and a fixed final
/// reduction: the same bits however the compiler vectorizes it (each lane is one sequence of
/// separate multiplies and adds; Rust never fuses them).
#[inline(always)]
fn dot_f16_lanes(a: &[f32], b: &[f16]) -> f32 {
    let mut acc = [0f32; 8];
    let n8 = a.len().min(b.len()) / 8 * 8;
    for (ca, cb) in a[..n8].chunks_exact(8).zip(b[..n8].chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += ca[l] * cb[l].to_f32();
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in a[n8..].iter().zip(&b[n8..]) {
        s += x * y.to_f32();
    }
    s
}

/// [`dot_f16_lanes`] with F16C: the 8 lanes are one register, multiplied then added (never
/// fused), reduced in the same order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn dot_f16_avx2(a: &[f32], b: &[f16]) -> f32 {
    use std::arch::x86_64::*;
    let n8 = a.len().min(b.len()) / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    for i in (0..n8).step_by(8) {
        let x = _mm256_loadu_ps(a.as_ptr().add(i));
        let y = _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(i).cast()));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(x, y));
    }
    let mut l = [0f32; 8];
    _mm256_storeu_ps(l.as_mut_ptr(), acc);
    let mut s = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
    for (x, y) in a[n8..].iter().zip(&b[n8..]) {
        s += x * y.to_f32();
    }
    s
}

/// Σ a·b with `b` in f16, for attention scores over the f16 KV cache: the same bits on every
/// path.
pub fn dot_f16(isa: Isa, a: &[f32], b: &[f16]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Isa::Avx2 and above come from `available()`, which checked AVX2 and F16C.
        Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx => unsafe { dot_f16_avx2(a, b) },
        _ => dot_f16_lanes(a, b),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn axpy_f16_avx2(w: f32, v: &[f16], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let n8 = v.len().min(out.len()) / 8 * 8;
    let wv = _mm256_set1_ps(w);
    for i in (0..n8).step_by(8) {
        let y = _mm256_cvtph_ps(_mm_loadu_si128(v.as_ptr().add(i).cast()));
        let o = out.as_mut_ptr().add(i);
        _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), _mm256_mul_ps(wv, y)));
    }
    for (o, y) in out[n8..].iter_mut().zip(&v[n8..]) {
        *o += w * y.to_f32();
    }
}

/// `out[i] += w · v[i]` with `v` in f16 (multiplied, then added: the same bits on every path).
pub fn axpy_f16(isa: Isa, w: f32, v: &[f16], out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_f16`.
        Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx => unsafe { axpy_f16_avx2(w, v, out) },
        _ => {
            for (o, y) in out.iter_mut().zip(v) {
                *o += w * y.to_f32();
            }
        }
    }
}

/// Attention scores of the query heads that share one KV head, over `len` cached keys:
/// `scores[r * len + j] = dot_f16(q_r, k_j) * scale`, where `q_r` is row `r` of `q` (rows of
/// `hd` values, side by side) and `k_j = k[j * stride..j * stride + hd]`. Each score has the
/// bits of [`dot_f16`] times `scale`; each key is loaded and widened once for all the rows.
///
/// # Panics
/// If the slices are shorter than the shapes say.
#[allow(clippy::too_many_arguments)]
pub fn scores_f16(
    isa: Isa,
    q: &[f32],
    hd: usize,
    k: &[f16],
    stride: usize,
    len: usize,
    scale: f32,
    scores: &mut [f32],
) {
    let g = q.len() / hd;
    assert!(
        hd > 0 && q.len() == g * hd && scores.len() >= g * len,
        "scores_f16: shapes"
    );
    if len == 0 {
        return;
    }
    assert!(k.len() >= (len - 1) * stride + hd, "scores_f16: keys");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_f16`; the asserts above bound every access.
        Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx => unsafe {
            for (r0, q) in q.chunks(8 * hd).enumerate() {
                let s = &mut scores[8 * r0 * len..];
                match q.len() / hd {
                    1 => scores_avx2::<1>(q, hd, k, stride, len, scale, s),
                    2 => scores_avx2::<2>(q, hd, k, stride, len, scale, s),
                    3 => scores_avx2::<3>(q, hd, k, stride, len, scale, s),
                    4 => scores_avx2::<4>(q, hd, k, stride, len, scale, s),
                    5 => scores_avx2::<5>(q, hd, k, stride, len, scale, s),
                    6 => scores_avx2::<6>(q, hd, k, stride, len, scale, s),
                    7 => scores_avx2::<7>(q, hd, k, stride, len, scale, s),
                    _ => scores_avx2::<8>(q, hd, k, stride, len, scale, s),
                }
            }
        },
        _ => {
            for (r, q) in q.chunks_exact(hd).enumerate() {
                for j in 0..len {
                    scores[r * len + j] = dot_f16_lanes(q, &k[j * stride..j * stride + hd]) * scale;
                }
            }
        }
    }
}

/// `G` rows of [`scores_f16`], each with its own accumulator register, as [`dot_f16_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn scores_avx2<const G: usize>(
    q: &[f32],
    hd: usize,
    k: &[f16],
    stride: usize,
    len: usize,
    scale: f32,
    scores: &mut [f32],
) {
    use std::arch::x86_64::*;
    let n8 = hd / 8 * 8;
    for j in 0..len {
        let kj = k.as_ptr().add(j * stride);
        let mut acc = [_mm256_setzero_ps(); G];
        for i in (0..n8).step_by(8) {
            let y = _mm256_cvtph_ps(_mm_loadu_si128(kj.add(i).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(q.as_ptr().add(r * hd + i));
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(x, y));
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let mut l = [0f32; 8];
            _mm256_storeu_ps(l.as_mut_ptr(), *acc);
            let mut s = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
            for i in n8..hd {
                s += *q.get_unchecked(r * hd + i) * (*kj.add(i)).to_f32();
            }
            *scores.get_unchecked_mut(r * len + j) = s * scale;
        }
    }
}

/// The attention sums of the query heads that share one KV head: for each row `r` of `out`
/// (rows of `hd` values, side by side) and each `j < len` in order, `out_r += w[r * len + j] ·
/// v_j`, with `v_j = v[j * stride..j * stride + hd]`: the bits of [`axpy_f16`] called
/// position after position. Each value is loaded and widened once for all the rows.
///
/// # Panics
/// If the slices are shorter than the shapes say.
pub fn weighted_sum_f16(
    isa: Isa,
    w: &[f32],
    hd: usize,
    v: &[f16],
    stride: usize,
    len: usize,
    out: &mut [f32],
) {
    let g = out.len() / hd.max(1);
    assert!(
        hd > 0 && out.len() == g * hd && w.len() >= g * len,
        "weighted_sum_f16: shapes"
    );
    if len == 0 {
        return;
    }
    assert!(
        v.len() >= (len - 1) * stride + hd,
        "weighted_sum_f16: values"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_f16`; the asserts above bound every access.
        Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx => unsafe {
            for (r0, o) in out.chunks_mut(8 * hd).enumerate() {
                let w = &w[8 * r0 * len..];
                match o.len() / hd {
                    1 => weighted_sum_avx2::<1>(w, hd, v, stride, len, o),
                    2 => weighted_sum_avx2::<2>(w, hd, v, stride, len, o),
                    3 => weighted_sum_avx2::<3>(w, hd, v, stride, len, o),
                    4 => weighted_sum_avx2::<4>(w, hd, v, stride, len, o),
                    5 => weighted_sum_avx2::<5>(w, hd, v, stride, len, o),
                    6 => weighted_sum_avx2::<6>(w, hd, v, stride, len, o),
                    7 => weighted_sum_avx2::<7>(w, hd, v, stride, len, o),
                    _ => weighted_sum_avx2::<8>(w, hd, v, stride, len, o),
                }
            }
        },
        _ => {
            for (r, o) in out.chunks_exact_mut(hd).enumerate() {
                for j in 0..len {
                    axpy_f16(
                        Isa::Scalar,
                        w[r * len + j],
                        &v[j * stride..j * stride + hd],
                        o,
                    );
                }
            }
        }
    }
}

/// `G` rows of [`weighted_sum_f16`], 8 values of each at a time in registers: every output
/// register takes its adds in position order, as [`axpy_f16_avx2`] does position after
/// position.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn weighted_sum_avx2<const G: usize>(
    w: &[f32],
    hd: usize,
    v: &[f16],
    stride: usize,
    len: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let n8 = hd / 8 * 8;
    for i in (0..n8).step_by(8) {
        let mut acc = [_mm256_setzero_ps(); G];
        for (r, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_loadu_ps(out.as_ptr().add(r * hd + i));
        }
        for j in 0..len {
            let y = _mm256_cvtph_ps(_mm_loadu_si128(v.as_ptr().add(j * stride + i).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let wr = _mm256_set1_ps(*w.get_unchecked(r * len + j));
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(wr, y));
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(r * hd + i), *acc);
        }
    }
    for r in 0..G {
        for i in n8..hd {
            for j in 0..len {
                out[r * hd + i] += w[r * len + j] * v[j * stride + i].to_f32();
            }
        }
    }
}

#[cfg(test)]
mod tests;
