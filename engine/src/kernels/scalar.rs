//! The scalar kernels: the oracle every SIMD path must equal bit for bit. The `combine_*`
//! functions turn a block's exact integer sums into its float contribution; every path calls
//! them, so the float arithmetic is the same expression everywhere.

use super::quant::{BlockQ8, BlockQ8K};
use super::WType;

/// An f16 stored little-endian at `b[0..2]`.
#[inline(always)]
pub fn f16_at(b: &[u8]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
}

/// Q4_K's 6-bit scale and min of sub-block `j` (0..8) from its 12 packed bytes.
#[inline(always)]
pub fn scale_min_k4(j: usize, q: &[u8]) -> (i32, i32) {
    if j < 4 {
        (i32::from(q[j] & 63), i32::from(q[j + 4] & 63))
    } else {
        (
            i32::from((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)),
            i32::from((q[j + 4] >> 4) | ((q[j] >> 6) << 4)),
        )
    }
}

/// Q4_K: `d · Σ scale·dot − dmin · Σ min·sum`, times the activations' scale.
#[inline(always)]
pub fn combine_q4k(ad: f32, d: f32, dmin: f32, isum: i32, msum: i32) -> f32 {
    ad * (d * isum as f32 - dmin * msum as f32)
}

/// Q6_K, Q8_0, Q4_0: one scale each side.
#[inline(always)]
pub fn combine(ad: f32, d: f32, isum: i32) -> f32 {
    ad * d * isum as f32
}

/// Q4_1: scale and min.
#[inline(always)]
pub fn combine_q4_1(ad: f32, d: f32, m: f32, isum: i32, asum: i32) -> f32 {
    ad * d * isum as f32 + ad * m * asum as f32
}

/// Q4_K's sum of mins × activation sums, from the 16-value partial sums.
#[inline(always)]
pub fn q4k_msum(scales: &[u8], bsums: &[i16; 16]) -> i32 {
    (0..8)
        .map(|j| {
            scale_min_k4(j, scales).1 * (i32::from(bsums[2 * j]) + i32::from(bsums[2 * j + 1]))
        })
        .sum()
}

/// A K-quant row (Q4_K or Q6_K) · 256-value activation blocks.
pub fn dot_k(t: WType, row: &[u8], a: &[BlockQ8K]) -> f32 {
    let mut acc = 0f32;
    for (b, a) in row.chunks_exact(t.block_bytes()).zip(a) {
        acc += match t {
            WType::Q4K => block_q4k(b, a),
            _ => block_q6k(b, a),
        };
    }
    acc
}

fn block_q4k(b: &[u8], a: &BlockQ8K) -> f32 {
    let (d, dmin, scales, qs) = (f16_at(&b[0..]), f16_at(&b[2..]), &b[4..16], &b[16..144]);
    let mut isum = 0i32;
    for c in 0..4 {
        let (sl, _) = scale_min_k4(2 * c, scales);
        let (sh, _) = scale_min_k4(2 * c + 1, scales);
        let (mut lo, mut hi) = (0i32, 0i32);
        for l in 0..32 {
            let q = qs[32 * c + l];
            lo += i32::from(q & 0xF) * i32::from(a.qs[64 * c + l]);
            hi += i32::from(q >> 4) * i32::from(a.qs[64 * c + 32 + l]);
        }
        isum += sl * lo + sh * hi;
    }
    combine_q4k(a.d, d, dmin, isum, q4k_msum(scales, &a.bsums))
}

/// Q6_K's 6-bit value at position `idx` (0..256) of a block, before the offset of 32.
#[inline(always)]
pub fn q6_at(ql: &[u8], qh: &[u8], idx: usize) -> i32 {
    let (n, k, l) = (idx / 128, (idx % 128) / 32, idx % 32);
    let lq = ql[64 * n + l + 32 * (k & 1)];
    let low = if k < 2 { lq & 0xF } else { lq >> 4 };
    let high = (qh[32 * n + l] >> (2 * k)) & 3;
    i32::from(low | (high << 4))
}

fn block_q6k(b: &[u8], a: &BlockQ8K) -> f32 {
    let (ql, qh, sc, d) = (&b[0..128], &b[128..192], &b[192..208], f16_at(&b[208..]));
    let mut isum = 0i32;
    for (s, (&scale, &bsum)) in sc.iter().zip(&a.bsums).enumerate() {
        let dot: i32 = (16 * s..16 * s + 16)
            .map(|idx| q6_at(ql, qh, idx) * i32::from(a.qs[idx]))
            .sum();
        isum += i32::from(scale as i8) * (dot - 32 * i32::from(bsum));
    }
    combine(a.d, d, isum)
}

/// A 32-value-block row (Q4_0, Q4_1, Q8_0) · 32-value activation blocks.
pub fn dot_32(t: WType, row: &[u8], a: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, a) in row.chunks_exact(t.block_bytes()).zip(a) {
        acc += match t {
            WType::Q8_0 => {
                let isum: i32 = b[2..34]
                    .iter()
                    .zip(&a.qs)
                    .map(|(w, x)| i32::from(*w as i8) * i32::from(*x))
                    .sum();
                combine(a.d, f16_at(b), isum)
            }
            WType::Q4_0 => combine(a.d, f16_at(b), nibble_dot(&b[2..18], a) - 8 * a.sum),
            _ => combine_q4_1(
                a.d,
                f16_at(b),
                f16_at(&b[2..]),
                nibble_dot(&b[4..20], a),
                a.sum,
            ),
        };
    }
    acc
}

/// Σ nibble · activation for 16 bytes of 4-bit values (low nibbles first, then high).
#[inline(always)]
fn nibble_dot(qs: &[u8], a: &BlockQ8) -> i32 {
    (0..16)
        .map(|l| {
            i32::from(qs[l] & 0xF) * i32::from(a.qs[l])
                + i32::from(qs[l] >> 4) * i32::from(a.qs[l + 16])
        })
        .sum()
}

/// A row dequantized to f32 (tests and the embedding lookup).
pub fn dequantize(t: WType, row: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(row.len() / t.block_bytes() * t.block_len());
    for b in row.chunks_exact(t.block_bytes()) {
        match t {
            WType::Q8_0 => {
                let d = f16_at(b);
                out.extend(b[2..34].iter().map(|q| d * f32::from(*q as i8)));
            }
            WType::Q4_0 => {
                let d = f16_at(b);
                out.extend((0..32).map(|i| {
                    let q = if i < 16 {
                        b[2 + i] & 0xF
                    } else {
                        b[2 + i - 16] >> 4
                    };
                    d * (i32::from(q) - 8) as f32
                }));
            }
            WType::Q4_1 => {
                let (d, m) = (f16_at(b), f16_at(&b[2..]));
                out.extend((0..32).map(|i| {
                    let q = if i < 16 {
                        b[4 + i] & 0xF
                    } else {
                        b[4 + i - 16] >> 4
                    };
                    d * f32::from(q) + m
                }));
            }
            WType::Q4K => {
                let (d, dmin, scales, qs) = (f16_at(b), f16_at(&b[2..]), &b[4..16], &b[16..144]);
                for c in 0..4 {
                    for (half, shift) in [(0, 0), (1, 4)] {
                        let (sc, m) = scale_min_k4(2 * c + half, scales);
                        let (dl, ml) = (d * sc as f32, dmin * m as f32);
                        out.extend(
                            qs[32 * c..32 * c + 32]
                                .iter()
                                .map(|q| dl * f32::from((q >> shift) & 0xF) - ml),
                        );
                    }
                }
            }
            WType::Q6K => {
                let (ql, qh, sc, d) = (&b[0..128], &b[128..192], &b[192..208], f16_at(&b[208..]));
                out.extend(
                    (0..256)
                        .map(|i| d * f32::from(sc[i / 16] as i8) * (q6_at(ql, qh, i) - 32) as f32),
                );
            }
        }
    }
    out
}
