//! AVX2 kernels on the interleaved layout ([`super::packed`]), for hosts without AVX-512: a
//! record's 16 rows are taken as two halves of 8, one 256-bit register holding the same four
//! weight bytes of 8 rows (lane `r` is row `r` of the half), so, as on the AVX-512 path, no
//! lane is ever added to another.
//!
//! AVX2 has no byte dot product into 32-bit lanes; `vpmaddubsw` (u8 × i8, adjacent pairs
//! added into i16, saturating) then `vpmaddwd` (i16 × i16, pairs added into i32) stand in for
//! it. Saturation never happens: activations are within ±127, and
//! - 4-bit weights: one pair is at most 2·15·127 = 3,810, so 8 pairs (a 32-value sub-block of
//!   Q4_K, a Q4_0/Q4_1 block) add up in i16 to at most 30,480;
//! - 6-bit weights (Q6_K): one pair is at most 2·63·127 = 16,002, so two pairs are added in
//!   i16 (32,004) before widening;
//! - 8-bit weights (Q8_0): the sign of the weight moves to the activation (`vpsignb`) and its
//!   magnitude (at most 128, read unsigned) stays, so one pair is at most 2·128·127 = 32,512,
//!   widened at once.
//!
//! The `vpmaddwd` that widens also applies the sub-block's scale (the same scale in both i16
//! halves of a row's lane), so every row ends with the scalar oracle's exact integer sums, and
//! the block's float contribution is the oracle's `combine_*` expression, lane by lane.
//!
//! # Safety
//! The CPU must have AVX2, FMA and F16C (FMA is never used: products and sums stay separate);
//! `recs` must hold whole records of the type.

use super::packed::{q6k_high, q6k_low, record_bytes};
use super::quant::{BlockQ8, BlockQ8K};
use super::WType;
use std::arch::x86_64::*;

/// Four activation bytes at `p`, in every lane.
#[inline(always)]
unsafe fn bcast(p: *const i8) -> __m256i {
    _mm256_set1_epi32(std::ptr::read_unaligned(p.cast::<i32>()))
}

/// Two i16 at `p`, in every lane.
#[inline(always)]
unsafe fn bcast16(p: *const i16) -> __m256i {
    _mm256_set1_epi32(std::ptr::read_unaligned(p.cast::<i32>()))
}

#[inline(always)]
unsafe fn ld(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p.cast())
}

/// 8 f16 at `p`, widened (exactly).
#[inline(always)]
unsafe fn f16s(p: *const u8) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
}

/// 8 unsigned bytes at `p`, one per lane.
#[inline(always)]
unsafe fn bytes_u(p: *const u8) -> __m256i {
    _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()))
}

/// 8 signed bytes at `p`, one per lane.
#[inline(always)]
unsafe fn bytes_i(p: *const u8) -> __m256i {
    _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.cast()))
}

/// Lanes of `lo` and `hi` (each within i16) as (lo, hi) i16 pairs.
#[inline(always)]
unsafe fn pair16(lo: __m256i, hi: __m256i) -> __m256i {
    _mm256_or_si256(
        _mm256_and_si256(lo, _mm256_set1_epi32(0xFFFF)),
        _mm256_slli_epi32(hi, 16),
    )
}

/// The same i16 in both halves of each lane.
#[inline(always)]
unsafe fn twice16(v: __m256i) -> __m256i {
    pair16(v, v)
}

/// `vpmaddubsw`: u8 weights × i8 activations, adjacent pairs added into i16.
#[inline(always)]
unsafe fn mul8(w: __m256i, x: __m256i) -> __m256i {
    _mm256_maddubs_epi16(w, x)
}

/// Lanes `o..o + 8` of `s`, plus `v`.
#[inline(always)]
unsafe fn add_to(s: &mut [i32; 16], o: usize, v: __m256i) {
    let p = s.as_mut_ptr().add(o).cast();
    _mm256_storeu_si256(p, _mm256_add_epi32(_mm256_loadu_si256(p), v));
}

#[inline(always)]
unsafe fn load_i(s: &[i32; 16], o: usize) -> __m256i {
    _mm256_loadu_si256(s.as_ptr().add(o).cast())
}

#[inline(always)]
unsafe fn add_f(out: &mut [f32; 16], o: usize, v: __m256) {
    let p = out.as_mut_ptr().add(o);
    _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), v));
}

/// Q4_K: per 32-value sub-block, its 8 nibble registers of 8 rows are unpacked once and used
/// for every token of the tile.
///
/// # Safety
/// See the module.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q4k(
    recs: &[u8],
    acts: &[BlockQ8K],
    tokens: usize,
    t0: usize,
    acc: &mut [[f32; 16]],
    isum: &mut [[i32; 16]],
) {
    const RB: usize = record_bytes(WType::Q4K);
    let n = acc.len();
    let m4 = _mm256_set1_epi8(0x0F);
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(RB).enumerate() {
        let rec = rec.as_ptr();
        let tile = &acts[b * tokens + t0..b * tokens + t0 + n];
        isum[..n].fill([0; 16]);
        for h in 0..2 {
            let o = 8 * h;
            for c in 0..4 {
                for part in 0..2 {
                    // Sub-block 2c (low nibbles) or 2c + 1 (high nibbles).
                    let sc = twice16(bytes_u(rec.add(64 + 16 * (2 * c + part) + o)));
                    let w: [__m256i; 8] = simd_array!(_mm256_setzero_si256(); 8, |q| {
                        let v = ld(rec.add(320 + 64 * (8 * c + q) + 32 * h));
                        let v = if part == 0 {
                            v
                        } else {
                            _mm256_srli_epi16(v, 4)
                        };
                        _mm256_and_si256(v, m4)
                    });
                    for (a, s) in tile.iter().zip(isum.iter_mut()) {
                        let x = a.qs.as_ptr().add(64 * c + 32 * part);
                        let mut p = [_mm256_setzero_si256(); 2];
                        for q in 0..8 {
                            p[q & 1] = _mm256_add_epi16(p[q & 1], mul8(w[q], bcast(x.add(4 * q))));
                        }
                        add_to(s, o, _mm256_madd_epi16(_mm256_add_epi16(p[0], p[1]), sc));
                    }
                }
            }
            let d = f16s(rec.add(2 * o));
            let dmin = f16s(rec.add(32 + 2 * o));
            // Sub-block mins as (i16, i16) pairs per lane, for 16-bit dot products with the
            // activations' 32-value sums.
            let mins: [__m256i; 4] = simd_array!(_mm256_setzero_si256(); 4, |p| {
                pair16(
                    bytes_u(rec.add(192 + 32 * p + o)),
                    bytes_u(rec.add(208 + 32 * p + o)),
                )
            });
            for ((a, s), out) in tile.iter().zip(isum.iter()).zip(acc.iter_mut()) {
                let mut m = _mm256_setzero_si256();
                for (p, mins) in mins.iter().enumerate() {
                    m = _mm256_add_epi32(
                        m,
                        _mm256_madd_epi16(*mins, bcast16(a.psums.as_ptr().add(2 * p))),
                    );
                }
                let is = _mm256_cvtepi32_ps(load_i(s, o));
                // combine_q4k: ad * (d * isum - dmin * msum)
                let v = _mm256_mul_ps(
                    _mm256_set1_ps(a.d),
                    _mm256_sub_ps(
                        _mm256_mul_ps(d, is),
                        _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(m)),
                    ),
                );
                add_f(out, o, v);
            }
        }
    }
}

/// Q6_K: per 16-value sub-block, its 4 registers of 6-bit values of 8 rows are rebuilt once
/// and used for every token of the tile.
///
/// # Safety
/// See the module.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q6k(
    recs: &[u8],
    acts: &[BlockQ8K],
    tokens: usize,
    t0: usize,
    acc: &mut [[f32; 16]],
    isum: &mut [[i32; 16]],
) {
    const RB: usize = record_bytes(WType::Q6K);
    let n = acc.len();
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(3);
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(RB).enumerate() {
        let rec = rec.as_ptr();
        let tile = &acts[b * tokens + t0..b * tokens + t0 + n];
        isum[..n].fill([0; 16]);
        for h in 0..2 {
            let o = 8 * h;
            for half in 0..2 {
                for kk in 0..2 {
                    // Low nibbles: sub-blocks 8·half + 2·kk + {0, 1}; high: + {4, 5}.
                    for g in 0..4 {
                        let (high, i0) = (g / 2, 4 * (g % 2));
                        let sb = 8 * half + 2 * kk + 4 * high + g % 2;
                        let sc = twice16(bytes_i(rec.add(32 + 16 * sb + o)));
                        let shift = _mm_cvtsi32_si128((2 * kk + 4 * high) as i32);
                        let w: [__m256i; 4] = simd_array!(_mm256_setzero_si256(); 4, |i| {
                            let l = ld(rec.add(q6k_low(half, kk, i0 + i) + 32 * h));
                            let hb = ld(rec.add(q6k_high(half, i0 + i) + 32 * h));
                            let l = if high == 0 {
                                l
                            } else {
                                _mm256_srli_epi16(l, 4)
                            };
                            let hb = _mm256_and_si256(_mm256_srl_epi16(hb, shift), m2);
                            _mm256_or_si256(_mm256_and_si256(l, m4), _mm256_slli_epi16(hb, 4))
                        });
                        let xo = 128 * half + 32 * kk + 64 * high + 4 * i0;
                        for (a, s) in tile.iter().zip(isum.iter_mut()) {
                            let x = a.qs.as_ptr().add(xo);
                            let p0 =
                                _mm256_add_epi16(mul8(w[0], bcast(x)), mul8(w[1], bcast(x.add(4))));
                            let p1 = _mm256_add_epi16(
                                mul8(w[2], bcast(x.add(8))),
                                mul8(w[3], bcast(x.add(12))),
                            );
                            add_to(
                                s,
                                o,
                                _mm256_add_epi32(
                                    _mm256_madd_epi16(p0, sc),
                                    _mm256_madd_epi16(p1, sc),
                                ),
                            );
                        }
                    }
                }
            }
            let d = f16s(rec.add(2 * o));
            // Scales as (i16, i16) pairs per lane, for the offset's 16-bit dot products.
            let pairs: [__m256i; 8] = simd_array!(_mm256_setzero_si256(); 8, |p| {
                pair16(
                    bytes_i(rec.add(32 + 32 * p + o)),
                    bytes_i(rec.add(48 + 32 * p + o)),
                )
            });
            for ((a, s), out) in tile.iter().zip(isum.iter()).zip(acc.iter_mut()) {
                // The offset of 32: Σ scale · (16-value sum).
                let mut off = _mm256_setzero_si256();
                for (p, pair) in pairs.iter().enumerate() {
                    off = _mm256_add_epi32(
                        off,
                        _mm256_madd_epi16(*pair, bcast16(a.bsums.as_ptr().add(2 * p))),
                    );
                }
                let is = _mm256_sub_epi32(load_i(s, o), _mm256_slli_epi32(off, 5));
                // combine: ad * d * isum
                let v = _mm256_mul_ps(
                    _mm256_mul_ps(_mm256_set1_ps(a.d), d),
                    _mm256_cvtepi32_ps(is),
                );
                add_f(out, o, v);
            }
        }
    }
}

/// Q4_0, Q4_1 and Q8_0 (32-value blocks): a record half's 8 registers are unpacked once and
/// used for every token of the tile.
///
/// # Safety
/// See the module; `t` is one of the three types.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q32(
    t: WType,
    recs: &[u8],
    acts: &[BlockQ8],
    tokens: usize,
    t0: usize,
    acc: &mut [[f32; 16]],
) {
    let rb = record_bytes(t);
    let n = acc.len();
    let m4 = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(rb).enumerate() {
        let rec = rec.as_ptr();
        let tile = &acts[b * tokens + t0..b * tokens + t0 + n];
        for h in 0..2 {
            let o = 8 * h;
            let d = f16s(rec.add(2 * o));
            // w[i] holds values 4i..4i+4 of each row (Q8_0: signed, the record's 128 taken
            // off again).
            let w: [__m256i; 8] = match t {
                WType::Q8_0 => simd_array!(_mm256_setzero_si256(); 8, |i| {
                    _mm256_xor_si256(ld(rec.add(32 + 64 * i + 32 * h)), _mm256_set1_epi8(-128))
                }),
                _ => {
                    let qs = if t == WType::Q4_1 { 64 } else { 32 };
                    simd_array!(_mm256_setzero_si256(); 8, |i| {
                        let v = ld(rec.add(qs + 64 * (i % 4) + 32 * h));
                        let v = if i < 4 { v } else { _mm256_srli_epi16(v, 4) };
                        _mm256_and_si256(v, m4)
                    })
                }
            };
            let m = f16s(rec.add(32 + 2 * o));
            for (a, out) in tile.iter().zip(acc.iter_mut()) {
                let x = a.qs.as_ptr();
                let is = if t == WType::Q8_0 {
                    let mut s = [_mm256_setzero_si256(); 2];
                    for (i, w) in w.iter().enumerate() {
                        let p = mul8(
                            _mm256_abs_epi8(*w),
                            _mm256_sign_epi8(bcast(x.add(4 * i)), *w),
                        );
                        s[i & 1] = _mm256_add_epi32(s[i & 1], _mm256_madd_epi16(p, ones));
                    }
                    _mm256_add_epi32(s[0], s[1])
                } else {
                    let mut s = [_mm256_setzero_si256(); 2];
                    for i in 0..4 {
                        s[0] = _mm256_add_epi16(s[0], mul8(w[i], bcast(x.add(4 * i))));
                        s[1] = _mm256_add_epi16(s[1], mul8(w[4 + i], bcast(x.add(16 + 4 * i))));
                    }
                    _mm256_madd_epi16(_mm256_add_epi16(s[0], s[1]), ones)
                };
                let ad = _mm256_set1_ps(a.d);
                let v = match t {
                    // combine_q4_1: ad * d * isum + ad * m * asum
                    WType::Q4_1 => _mm256_add_ps(
                        _mm256_mul_ps(_mm256_mul_ps(ad, d), _mm256_cvtepi32_ps(is)),
                        _mm256_mul_ps(_mm256_mul_ps(ad, m), _mm256_set1_ps(a.sum as f32)),
                    ),
                    // combine: ad * d * isum (Q4_0's values carry an offset of 8)
                    _ => {
                        let off = if t == WType::Q4_0 { 8 * a.sum } else { 0 };
                        let is = _mm256_sub_epi32(is, _mm256_set1_epi32(off));
                        _mm256_mul_ps(_mm256_mul_ps(ad, d), _mm256_cvtepi32_ps(is))
                    }
                };
                add_f(out, o, v);
            }
        }
    }
}
