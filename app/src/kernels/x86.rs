//! x86-64 kernels: AVX2 (+FMA) and AVX-512 VNNI. Within a block they compute the same exact
//! integer sums as [`super::scalar`], then call the same `combine_*` expression, so their
//! results are the oracle's bits.
//!
//! # Safety
//! Every function here is `unsafe` because it is compiled for CPU features the caller must
//! have checked (`Isa::available`). Loads are unaligned and stay inside the block slices,
//! whose lengths `chunks_exact` guarantees.

use super::quant::{BlockQ8, BlockQ8K};
use super::scalar::{combine, combine_q4k, f16_at, q4k_msum, scale_min_k4};
use std::arch::x86_64::*;

#[inline(always)]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

#[inline(always)]
unsafe fn load(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p.cast())
}

/// Q4_K row · Q8_K activations, AVX2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_q4k_avx2(row: &[u8], a: &[BlockQ8K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let mut acc = 0f32;
    for (b, a) in row.chunks_exact(144).zip(a) {
        let scales = &b[4..16];
        let qs = b[16..144].as_ptr();
        let q8 = a.qs.as_ptr().cast::<u8>();
        let mut iacc = _mm256_setzero_si256();
        for c in 0..4 {
            let (sl, _) = scale_min_k4(2 * c, scales);
            let (sh, _) = scale_min_k4(2 * c + 1, scales);
            let v = load(qs.add(32 * c));
            let lo = _mm256_and_si256(v, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            let plo = _mm256_maddubs_epi16(lo, load(q8.add(64 * c)));
            let phi = _mm256_maddubs_epi16(hi, load(q8.add(64 * c + 32)));
            iacc = _mm256_add_epi32(iacc, _mm256_madd_epi16(plo, _mm256_set1_epi16(sl as i16)));
            iacc = _mm256_add_epi32(iacc, _mm256_madd_epi16(phi, _mm256_set1_epi16(sh as i16)));
        }
        acc += combine_q4k(
            a.d,
            f16_at(b),
            f16_at(&b[2..]),
            hsum_i32(iacc),
            q4k_msum(scales, &a.bsums),
        );
    }
    acc
}

/// Q4_K row · Q8_K activations, AVX-512 VNNI (u8 × i8 dot products into i32, 64 at a time).
///
/// # Safety
/// The CPU must have AVX-512 F, BW, VL and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
pub unsafe fn dot_q4k_avx512(row: &[u8], a: &[BlockQ8K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let mut acc = 0f32;
    for (b, a) in row.chunks_exact(144).zip(a) {
        let scales = &b[4..16];
        let qs = b[16..144].as_ptr();
        let q8 = a.qs.as_ptr();
        let mut iacc = _mm512_setzero_si512();
        for c in 0..4 {
            let (sl, _) = scale_min_k4(2 * c, scales);
            let (sh, _) = scale_min_k4(2 * c + 1, scales);
            let v = load(qs.add(32 * c));
            let lo = _mm256_and_si256(v, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            let q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            let x = _mm512_loadu_si512(q8.add(64 * c).cast());
            let d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, x);
            let sc = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_set1_epi32(sl)),
                _mm256_set1_epi32(sh),
                1,
            );
            iacc = _mm512_add_epi32(iacc, _mm512_mullo_epi32(d, sc));
        }
        acc += combine_q4k(
            a.d,
            f16_at(b),
            f16_at(&b[2..]),
            _mm512_reduce_add_epi32(iacc),
            q4k_msum(scales, &a.bsums),
        );
    }
    acc
}

/// Q6_K row · Q8_K activations, AVX2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_q6k_avx2(row: &[u8], a: &[BlockQ8K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(3);
    let mut acc = 0f32;
    for (b, a) in row.chunks_exact(210).zip(a) {
        let (ql, qh, sc) = (b[0..128].as_ptr(), b[128..192].as_ptr(), &b[192..208]);
        let q8 = a.qs.as_ptr().cast::<u8>();
        let mut iacc = _mm256_setzero_si256();
        for n in 0..2 {
            let l0 = load(ql.add(64 * n));
            let l1 = load(ql.add(64 * n + 32));
            let h = load(qh.add(32 * n));
            for k in 0..4 {
                let low = match k {
                    0 => _mm256_and_si256(l0, m4),
                    1 => _mm256_and_si256(l1, m4),
                    2 => _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                    _ => _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                };
                let high = match k {
                    0 => _mm256_and_si256(h, m2),
                    1 => _mm256_and_si256(_mm256_srli_epi16(h, 2), m2),
                    2 => _mm256_and_si256(_mm256_srli_epi16(h, 4), m2),
                    _ => _mm256_and_si256(_mm256_srli_epi16(h, 6), m2),
                };
                let q = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
                let p = _mm256_maddubs_epi16(q, load(q8.add(128 * n + 32 * k)));
                let s = 8 * n + 2 * k;
                let scv = _mm256_set_m128i(
                    _mm_set1_epi16(i16::from(sc[s + 1] as i8)),
                    _mm_set1_epi16(i16::from(sc[s] as i8)),
                );
                iacc = _mm256_add_epi32(iacc, _mm256_madd_epi16(p, scv));
            }
        }
        let off: i32 = (0..16)
            .map(|s| i32::from(sc[s] as i8) * i32::from(a.bsums[s]))
            .sum();
        acc += combine(a.d, f16_at(&b[208..]), hsum_i32(iacc) - 32 * off);
    }
    acc
}

/// Q8_0 row · Q8 activations, AVX2 (sign trick: |w| · sign(a, w)).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_q8_0_avx2(row: &[u8], a: &[BlockQ8]) -> f32 {
    let ones = _mm256_set1_epi16(1);
    let mut acc = 0f32;
    for (b, a) in row.chunks_exact(34).zip(a) {
        let w = load(b[2..34].as_ptr());
        let x = load(a.qs.as_ptr().cast());
        let p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
        acc += combine(a.d, f16_at(b), hsum_i32(_mm256_madd_epi16(p, ones)));
    }
    acc
}

/// Q4_0 row · Q8 activations, AVX2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_q4_0_avx2(row: &[u8], a: &[BlockQ8]) -> f32 {
    let m4 = _mm_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let mut acc = 0f32;
    for (b, a) in row.chunks_exact(18).zip(a) {
        let v = _mm_loadu_si128(b[2..18].as_ptr().cast());
        let q = _mm256_set_m128i(
            _mm_and_si128(_mm_srli_epi16(v, 4), m4),
            _mm_and_si128(v, m4),
        );
        let p = _mm256_maddubs_epi16(q, load(a.qs.as_ptr().cast()));
        let isum = hsum_i32(_mm256_madd_epi16(p, ones)) - 8 * a.sum;
        acc += combine(a.d, f16_at(b), isum);
    }
    acc
}
