//! AVX-512 VNNI kernels on the interleaved layout ([`super::packed`]): lane `r` of every
//! register belongs to row `r` of the record's 16, so no lane is ever added to another.
//!
//! Each kernel takes one group's records (`recs`, one per block position), the activations in
//! block-major order (`acts[b * tokens + t]`), and a tile of tokens starting at `t0`; it writes
//! each tile token's 16 row results into `acc`. `isum` is scratch for the exact integer sums.
//!
//! # Safety
//! The CPU must have AVX-512 F, BW and VNNI; `recs` must hold whole records of the type.

use super::packed::{q6k_high, q6k_low};
use super::quant::{BlockQ8, BlockQ8K};
use super::WType;
use std::arch::x86_64::*;

/// Four activation bytes at `p`, in every lane.
#[inline(always)]
unsafe fn bcast(p: *const i8) -> __m512i {
    _mm512_set1_epi32(std::ptr::read_unaligned(p.cast::<i32>()))
}

/// Two i16 at `p`, in every lane.
#[inline(always)]
unsafe fn bcast16(p: *const i16) -> __m512i {
    _mm512_set1_epi32(std::ptr::read_unaligned(p.cast::<i32>()))
}

/// Asks for the record `AHEAD` records after `rec` (`len` bytes) into L2: at decode (one
/// token per record) the hardware prefetchers alone left a 208 MB Q6_K matrix streaming at
/// 9 GB/s on one core; with this, 14 GB/s (Q4_K: 12.7 -> 20 GB/s). Into L1 (T0) it was
/// slower still. Prefetches never fault, so the address may lie past the matrix.
#[inline(always)]
pub(super) unsafe fn prefetch_ahead(rec: *const u8, len: usize) {
    const AHEAD: usize = 16;
    let next = rec.wrapping_add(AHEAD * len);
    for line in (0..len).step_by(64) {
        _mm_prefetch::<_MM_HINT_T1>(next.wrapping_add(line).cast());
    }
}

/// 16 f16 at `p`, widened (exactly).
#[inline(always)]
unsafe fn f16s(p: *const u8) -> __m512 {
    _mm512_cvtph_ps(_mm256_loadu_si256(p.cast()))
}

/// 16 unsigned bytes at `p`, one per lane.
#[inline(always)]
unsafe fn bytes_u(p: *const u8) -> __m512i {
    _mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast()))
}

/// 16 signed bytes at `p`, one per lane.
#[inline(always)]
unsafe fn bytes_i(p: *const u8) -> __m512i {
    _mm512_cvtepi8_epi32(_mm_loadu_si128(p.cast()))
}

/// Lanes of `lo` and `hi` (each within i16) as (lo, hi) i16 pairs.
#[inline(always)]
unsafe fn pair16(lo: __m512i, hi: __m512i) -> __m512i {
    _mm512_or_si512(
        _mm512_and_si512(lo, _mm512_set1_epi32(0xFFFF)),
        _mm512_slli_epi32(hi, 16),
    )
}

#[inline(always)]
unsafe fn ld(p: *const u8) -> __m512i {
    _mm512_loadu_si512(p.cast())
}

#[inline(always)]
unsafe fn add_to(s: &mut [i32; 16], v: __m512i) {
    let p = s.as_mut_ptr().cast();
    _mm512_storeu_si512(p, _mm512_add_epi32(_mm512_loadu_si512(p), v));
}

#[inline(always)]
unsafe fn add_f(o: &mut [f32; 16], v: __m512) {
    let p = o.as_mut_ptr();
    _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), v));
}

/// Q4_K: per 64-value chunk, the 8 low-nibble and 8 high-nibble registers of 16 rows are
/// unpacked once and used for every token of the tile.
///
/// # Safety
/// See the module.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn q4k(
    recs: &[u8],
    acts: &[BlockQ8K],
    tokens: usize,
    t0: usize,
    acc: &mut [[f32; 16]],
    isum: &mut [[i32; 16]],
) {
    const RB: usize = super::packed::record_bytes(WType::Q4K);
    let n = acc.len();
    match n {
        1 => return q4k_few::<1>(recs, acts, tokens, t0, acc),
        2 => return q4k_few::<2>(recs, acts, tokens, t0, acc),
        3 => return q4k_few::<3>(recs, acts, tokens, t0, acc),
        4 => return q4k_few::<4>(recs, acts, tokens, t0, acc),
        5 => return q4k_few::<5>(recs, acts, tokens, t0, acc),
        6 => return q4k_few::<6>(recs, acts, tokens, t0, acc),
        7 => return q4k_few::<7>(recs, acts, tokens, t0, acc),
        8 => return q4k_few::<8>(recs, acts, tokens, t0, acc),
        _ => {}
    }
    let m4 = _mm512_set1_epi8(0x0F);
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(RB).enumerate() {
        let rec = rec.as_ptr();
        prefetch_ahead(rec, RB);
        let tile = &acts[b * tokens + t0..b * tokens + t0 + n];
        isum.fill([0; 16]);
        for c in 0..4 {
            let sl = bytes_u(rec.add(64 + 32 * c));
            let sh = bytes_u(rec.add(80 + 32 * c));
            let mut lo = [_mm512_setzero_si512(); 8];
            let mut hi = [_mm512_setzero_si512(); 8];
            for q in 0..8 {
                let v = ld(rec.add(320 + 64 * (8 * c + q)));
                lo[q] = _mm512_and_si512(v, m4);
                hi[q] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
            for (a, s) in tile.iter().zip(isum.iter_mut()) {
                let x = a.qs.as_ptr().add(64 * c);
                // Four independent chains (the instruction's latency is four times its
                // throughput).
                let mut d = [_mm512_setzero_si512(); 4];
                for q in 0..8 {
                    d[q & 1] = _mm512_dpbusd_epi32(d[q & 1], lo[q], bcast(x.add(4 * q)));
                    d[2 + (q & 1)] =
                        _mm512_dpbusd_epi32(d[2 + (q & 1)], hi[q], bcast(x.add(32 + 4 * q)));
                }
                let (dl, dh) = (_mm512_add_epi32(d[0], d[1]), _mm512_add_epi32(d[2], d[3]));
                add_to(
                    s,
                    _mm512_add_epi32(_mm512_mullo_epi32(dl, sl), _mm512_mullo_epi32(dh, sh)),
                );
            }
        }
        q4k_combine(rec, tile, isum, acc);
    }
}

/// [`q4k`] for a tile of `N` ≤ 8 tokens (decode, small batches): the integer sums stay in
/// registers, each weight register is used as soon as it is unpacked, and nothing is
/// prefetched. Streaming R1's Q4_K matrices for one token on one core of an AMD EPYC (Zen 4),
/// the tile kernel left the hardware prefetchers behind: 11 GB/s without its software
/// prefetches and 17-19 GB/s with them, where this kernel reads 23-26 GB/s (and 18 with the
/// prefetches added). The sums are the same integers, so the bits are the tile kernel's.
///
/// # Safety
/// See the module; `acc` has `N` entries.
#[inline(always)]
unsafe fn q4k_few<const N: usize>(
    recs: &[u8],
    acts: &[BlockQ8K],
    tokens: usize,
    t0: usize,
    acc: &mut [[f32; 16]],
) {
    const RB: usize = super::packed::record_bytes(WType::Q4K);
    // One token: four chains (the instruction's latency is four times its throughput);
    // more tokens: two chains each, and the tokens' chains are independent.
    let chains = if N == 1 { 2 } else { 1 };
    let m4 = _mm512_set1_epi8(0x0F);
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(RB).enumerate() {
        let rec = rec.as_ptr();
        let tile = &acts[b * tokens + t0..b * tokens + t0 + N];
        let mut is = [_mm512_setzero_si512(); N];
        for c in 0..4 {
            let sl = bytes_u(rec.add(64 + 32 * c));
            let sh = bytes_u(rec.add(80 + 32 * c));
            let mut d = [[_mm512_setzero_si512(); 4]; N];
            for q in 0..8 {
                let v = ld(rec.add(320 + 64 * (8 * c + q)));
                let lo = _mm512_and_si512(v, m4);
                let hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                for (d, a) in d.iter_mut().zip(tile) {
                    let x = a.qs.as_ptr().add(64 * c);
                    let j = q % chains;
                    d[j] = _mm512_dpbusd_epi32(d[j], lo, bcast(x.add(4 * q)));
                    d[2 + j] = _mm512_dpbusd_epi32(d[2 + j], hi, bcast(x.add(32 + 4 * q)));
                }
            }
            for (is, d) in is.iter_mut().zip(&d) {
                let (dl, dh) = (_mm512_add_epi32(d[0], d[1]), _mm512_add_epi32(d[2], d[3]));
                *is = _mm512_add_epi32(
                    *is,
                    _mm512_add_epi32(_mm512_mullo_epi32(dl, sl), _mm512_mullo_epi32(dh, sh)),
                );
            }
        }
        q4k_combine_with(rec, tile, |t| is[t], acc);
    }
}

/// Q4_K's float step for one record: each tile token's exact `isum` and the sub-block mins ×
/// the activations' 32-value sums, combined as `combine_q4k` and added to `acc`.
///
/// # Safety
/// See the module; `rec` points to a whole Q4_K record, and `tile`, `isum` and `acc` have one
/// entry per token.
#[inline(always)]
pub(super) unsafe fn q4k_combine(
    rec: *const u8,
    tile: &[BlockQ8K],
    isum: &[[i32; 16]],
    acc: &mut [[f32; 16]],
) {
    q4k_combine_with(
        rec,
        tile,
        |t| _mm512_loadu_si512(isum[t].as_ptr().cast()),
        acc,
    );
}

/// [`q4k_combine`] with token `t`'s 16 integer sums given by `isum(t)`.
///
/// # Safety
/// See [`q4k_combine`]; `acc` has one entry per token of `tile`.
#[inline(always)]
pub(super) unsafe fn q4k_combine_with(
    rec: *const u8,
    tile: &[BlockQ8K],
    isum: impl Fn(usize) -> __m512i,
    acc: &mut [[f32; 16]],
) {
    let d = f16s(rec);
    let dmin = f16s(rec.add(32));
    // Sub-block mins as (i16, i16) pairs per lane, for 16-bit dot products with the
    // activations' 32-value sums.
    let mins: [__m512i; 4] = simd_array!(_mm512_setzero_si512(); 4, |p| {
        pair16(
            bytes_u(rec.add(192 + 32 * p)),
            bytes_u(rec.add(208 + 32 * p)),
        )
    });
    for (t, (a, o)) in tile.iter().zip(acc.iter_mut()).enumerate() {
        let mut m = _mm512_setzero_si512();
        for (p, mins) in mins.iter().enumerate() {
            m = _mm512_dpwssd_epi32(m, *mins, bcast16(a.psums.as_ptr().add(2 * p)));
        }
        let is = _mm512_cvtepi32_ps(isum(t));
        // combine_q4k: ad * (d * isum - dmin * msum)
        let v = _mm512_mul_ps(
            _mm512_set1_ps(a.d),
            _mm512_sub_ps(
                _mm512_mul_ps(d, is),
                _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(m)),
            ),
        );
        add_f(o, v);
    }
}

/// Q6_K: per chunk (half `n`, quarter pair `kk`), 16 registers of 6-bit values (four
/// 16-value sub-blocks of 16 rows) are rebuilt once and used for every token of the tile.
///
/// # Safety
/// See the module.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn q6k(
    recs: &[u8],
    acts: &[BlockQ8K],
    tokens: usize,
    t0: usize,
    acc: &mut [[f32; 16]],
    isum: &mut [[i32; 16]],
) {
    const RB: usize = super::packed::record_bytes(WType::Q6K);
    let n = acc.len();
    match n {
        1 => return q6k_few::<1>(recs, acts, tokens, t0, acc),
        2 => return q6k_few::<2>(recs, acts, tokens, t0, acc),
        3 => return q6k_few::<3>(recs, acts, tokens, t0, acc),
        _ => {}
    }
    let m4 = _mm512_set1_epi8(0x0F);
    let m2 = _mm512_set1_epi8(3);
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(RB).enumerate() {
        let rec = rec.as_ptr();
        prefetch_ahead(rec, RB);
        let tile = &acts[b * tokens + t0..b * tokens + t0 + n];
        isum.fill([0; 16]);
        for half in 0..2 {
            for kk in 0..2 {
                // Sub-blocks 8·half + 2·kk + {0, 1} (low nibbles) and + {4, 5} (high nibbles).
                let s0 = 8 * half + 2 * kk;
                let sc = [s0, s0 + 1, s0 + 4, s0 + 5].map(|s| bytes_i(rec.add(32 + 16 * s)));
                let mut w = [_mm512_setzero_si512(); 16];
                let sh_lo = _mm_cvtsi32_si128(2 * kk as i32);
                let sh_hi = _mm_cvtsi32_si128(2 * kk as i32 + 4);
                for i in 0..8 {
                    let l = ld(rec.add(q6k_low(half, kk, i)));
                    let h = ld(rec.add(q6k_high(half, i)));
                    let hl = _mm512_and_si512(_mm512_srl_epi16(h, sh_lo), m2);
                    let hh = _mm512_and_si512(_mm512_srl_epi16(h, sh_hi), m2);
                    w[i] = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16(hl, 4));
                    w[8 + i] = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                        _mm512_slli_epi16(hh, 4),
                    );
                }
                for (a, s) in tile.iter().zip(isum.iter_mut()) {
                    let x = a.qs.as_ptr().add(128 * half + 32 * kk);
                    let mut d = [_mm512_setzero_si512(); 4];
                    for i in 0..8 {
                        d[i / 4] = _mm512_dpbusd_epi32(d[i / 4], w[i], bcast(x.add(4 * i)));
                        d[2 + i / 4] =
                            _mm512_dpbusd_epi32(d[2 + i / 4], w[8 + i], bcast(x.add(64 + 4 * i)));
                    }
                    let v = _mm512_add_epi32(
                        _mm512_add_epi32(
                            _mm512_mullo_epi32(d[0], sc[0]),
                            _mm512_mullo_epi32(d[1], sc[1]),
                        ),
                        _mm512_add_epi32(
                            _mm512_mullo_epi32(d[2], sc[2]),
                            _mm512_mullo_epi32(d[3], sc[3]),
                        ),
                    );
                    add_to(s, v);
                }
            }
        }
        q6k_combine_with(
            rec,
            tile,
            |t| _mm512_loadu_si512(isum[t].as_ptr().cast()),
            acc,
        );
    }
}

/// [`q6k`] for a tile of `N` ≤ 3 tokens, as [`q4k_few`] is for Q4_K: sums in registers, no
/// prefetches, and each record read front to back once ([`super::packed`] lays the lines out
/// in this order). One core of an AMD EPYC (Zen 4) streams R1's Q6_K matrices for one token
/// at 23-25 GB/s this way, against 12.6-13.3 GB/s for the tile kernel. Four accumulators a
/// token: from 4 tokens on they no longer fit in the registers, and the tile kernel is faster.
///
/// # Safety
/// See the module; `acc` has `N` entries.
#[inline(always)]
unsafe fn q6k_few<const N: usize>(
    recs: &[u8],
    acts: &[BlockQ8K],
    tokens: usize,
    t0: usize,
    acc: &mut [[f32; 16]],
) {
    const RB: usize = super::packed::record_bytes(WType::Q6K);
    let m4 = _mm512_set1_epi8(0x0F);
    let m2 = _mm512_set1_epi8(3);
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(RB).enumerate() {
        let rec = rec.as_ptr();
        let tile = &acts[b * tokens + t0..b * tokens + t0 + N];
        let mut is = [_mm512_setzero_si512(); N];
        for half in 0..2 {
            for pair in 0..2 {
                // Both quarter pairs at once, so each line is read once and in order:
                // sums of sub-blocks 8·half + pair + {0, 4} (kk = 0) and + {2, 6} (kk = 1).
                let mut d = [[_mm512_setzero_si512(); 4]; N];
                for i in 4 * pair..4 * pair + 4 {
                    let l0 = ld(rec.add(q6k_low(half, 0, i)));
                    let l1 = ld(rec.add(q6k_low(half, 1, i)));
                    let h = ld(rec.add(q6k_high(half, i)));
                    let six = |l: __m512i, hb: __m512i| {
                        _mm512_or_si512(
                            _mm512_and_si512(l, m4),
                            _mm512_slli_epi16(_mm512_and_si512(hb, m2), 4),
                        )
                    };
                    let w = [
                        six(l0, h),
                        six(_mm512_srli_epi16(l0, 4), _mm512_srli_epi16(h, 4)),
                        six(l1, _mm512_srli_epi16(h, 2)),
                        six(_mm512_srli_epi16(l1, 4), _mm512_srli_epi16(h, 6)),
                    ];
                    for (d, a) in d.iter_mut().zip(tile) {
                        let x = a.qs.as_ptr().add(128 * half + 4 * i);
                        d[0] = _mm512_dpbusd_epi32(d[0], w[0], bcast(x));
                        d[1] = _mm512_dpbusd_epi32(d[1], w[1], bcast(x.add(64)));
                        d[2] = _mm512_dpbusd_epi32(d[2], w[2], bcast(x.add(32)));
                        d[3] = _mm512_dpbusd_epi32(d[3], w[3], bcast(x.add(96)));
                    }
                }
                let sc = [0, 4, 2, 6].map(|o| bytes_i(rec.add(32 + 16 * (8 * half + pair + o))));
                for (is, d) in is.iter_mut().zip(&d) {
                    *is = _mm512_add_epi32(
                        *is,
                        _mm512_add_epi32(
                            _mm512_add_epi32(
                                _mm512_mullo_epi32(d[0], sc[0]),
                                _mm512_mullo_epi32(d[1], sc[1]),
                            ),
                            _mm512_add_epi32(
                                _mm512_mullo_epi32(d[2], sc[2]),
                                _mm512_mullo_epi32(d[3], sc[3]),
                            ),
                        ),
                    );
                }
            }
        }
        q6k_combine_with(rec, tile, |t| is[t], acc);
    }
}

/// Q6_K's float step for one record: token `t`'s 16 sums of scale × (6-bit value ·
/// activation) given by `isum(t)`, less 32 × Σ scale · (16-value sum), combined as `combine`
/// and added to `acc`.
///
/// # Safety
/// See the module; `rec` points to a whole Q6_K record, and `acc` has one entry per token
/// of `tile`.
#[inline(always)]
pub(super) unsafe fn q6k_combine_with(
    rec: *const u8,
    tile: &[BlockQ8K],
    isum: impl Fn(usize) -> __m512i,
    acc: &mut [[f32; 16]],
) {
    let d = f16s(rec);
    // Scales as (i16, i16) pairs per lane, for the offset's 16-bit dot products.
    let pairs: [__m512i; 8] = simd_array!(_mm512_setzero_si512(); 8, |p| {
        pair16(bytes_i(rec.add(32 + 32 * p)), bytes_i(rec.add(48 + 32 * p)))
    });
    for (t, (a, o)) in tile.iter().zip(acc.iter_mut()).enumerate() {
        // The offset of 32: Σ scale · (16-value sum).
        let mut off = _mm512_setzero_si512();
        for (p, pair) in pairs.iter().enumerate() {
            off = _mm512_dpwssd_epi32(off, *pair, bcast16(a.bsums.as_ptr().add(2 * p)));
        }
        let is = _mm512_sub_epi32(isum(t), _mm512_slli_epi32(off, 5));
        // combine: ad * d * isum
        let v = _mm512_mul_ps(
            _mm512_mul_ps(_mm512_set1_ps(a.d), d),
            _mm512_cvtepi32_ps(is),
        );
        add_f(o, v);
    }
}

/// Q4_0, Q4_1 and Q8_0 (32-value blocks): a record's 8 registers are unpacked once and used
/// for every token of the tile.
///
/// # Safety
/// See the module; `t` is one of the three types.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn q32(
    t: WType,
    recs: &[u8],
    acts: &[BlockQ8],
    tokens: usize,
    t0: usize,
    acc: &mut [[f32; 16]],
) {
    let rb = super::packed::record_bytes(t);
    let n = acc.len();
    let m4 = _mm512_set1_epi8(0x0F);
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(rb).enumerate() {
        let rec = rec.as_ptr();
        prefetch_ahead(rec, rb);
        let tile = &acts[b * tokens + t0..b * tokens + t0 + n];
        // f16 scales, widened exactly.
        let d = _mm512_cvtph_ps(_mm256_loadu_si256(rec.cast()));
        // w[i] holds values 4i..4i+4 of each row.
        let mut w = [_mm512_setzero_si512(); 8];
        match t {
            WType::Q8_0 => {
                for (i, w) in w.iter_mut().enumerate() {
                    *w = ld(rec.add(32 + 64 * i));
                }
            }
            _ => {
                let qs = if t == WType::Q4_1 { 64 } else { 32 };
                for i in 0..4 {
                    let v = ld(rec.add(qs + 64 * i));
                    w[i] = _mm512_and_si512(v, m4);
                    w[4 + i] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                }
            }
        }
        let m = _mm512_cvtph_ps(_mm256_loadu_si256(rec.add(32).cast()));
        for (a, o) in tile.iter().zip(acc.iter_mut()) {
            let x = a.qs.as_ptr();
            let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            for i in 0..4 {
                s0 = _mm512_dpbusd_epi32(s0, w[i], bcast(x.add(4 * i)));
                s1 = _mm512_dpbusd_epi32(s1, w[4 + i], bcast(x.add(16 + 4 * i)));
            }
            let is = _mm512_add_epi32(s0, s1);
            let ad = _mm512_set1_ps(a.d);
            let v = match t {
                // combine_q4_1: ad * d * isum + ad * m * asum
                WType::Q4_1 => _mm512_add_ps(
                    _mm512_mul_ps(_mm512_mul_ps(ad, d), _mm512_cvtepi32_ps(is)),
                    _mm512_mul_ps(_mm512_mul_ps(ad, m), _mm512_set1_ps(a.sum as f32)),
                ),
                // combine: ad * d * (isum − offset · asum), offset 8 (Q4_0) or 128 (Q8_0)
                _ => {
                    let off = if t == WType::Q8_0 { 128 } else { 8 };
                    let is = _mm512_sub_epi32(is, _mm512_set1_epi32(off * a.sum));
                    _mm512_mul_ps(_mm512_mul_ps(ad, d), _mm512_cvtepi32_ps(is))
                }
            };
            add_f(o, v);
        }
    }
}
