//! x86-64 kernels: AVX2 (+FMA) and AVX-512 VNNI. Within a block they compute the same exact
//! integer sums as [`super::scalar`], then call the same `combine_*` expression, so their
//! results are the oracle's bits.
//!
//! # Safety
//! Every function here is `unsafe` because it is compiled for CPU features the caller must
//! have checked (`Isa::available`). Loads are unaligned and stay inside the block slices,
//! whose lengths `chunks_exact` guarantees.

use super::quant::{BlockQ8, BlockQ8K};
use super::scalar::{combine, combine_q4k};
use std::arch::x86_64::*;

#[inline(always)]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// An f16 at `b[0..2]` with F16C, inline (a call would spill the vector registers); the
/// conversion is exact, so it equals the scalar path's.
#[inline(always)]
unsafe fn f16_at(b: &[u8]) -> f32 {
    let bits = i32::from(u16::from_le_bytes([b[0], b[1]]));
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)))
}

#[inline(always)]
unsafe fn load(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p.cast())
}

/// Q4_K's eight 6-bit scales and eight mins of a block, as two little-endian u64 (one byte
/// per sub-block), unpacked from the 12 packed bytes with word operations.
#[inline(always)]
pub fn q4k_scales_mins(q: &[u8]) -> (u64, u64) {
    let w = |i: usize| u32::from_le_bytes([q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]]);
    let (w0, w1, w2) = (w(0), w(1), w(2));
    let (low6, low4, top2) = (0x3f3f_3f3fu32, 0x0f0f_0f0fu32, 0x0303_0303u32);
    // Sub-blocks 0..3 keep their low 6 bits; 4..7 take a nibble from bytes 8..11 and their
    // top 2 bits from the high bits of bytes 0..3 (scales) and 4..7 (mins).
    let sc_lo = w0 & low6;
    let sc_hi = (w2 & low4) | (((w0 >> 6) & top2) << 4);
    let m_lo = w1 & low6;
    let m_hi = ((w2 >> 4) & low4) | (((w1 >> 6) & top2) << 4);
    (
        u64::from(sc_lo) | (u64::from(sc_hi) << 32),
        u64::from(m_lo) | (u64::from(m_hi) << 32),
    )
}

/// Mins · (pairs of 16-value activation sums), exact in i32.
#[inline(always)]
unsafe fn q4k_msum_sse(mins: u64, bsums: &[i16; 16]) -> i32 {
    let mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(mins as i64));
    let bs = bsums.as_ptr().cast::<__m128i>();
    let pairs = _mm_hadd_epi16(_mm_loadu_si128(bs), _mm_loadu_si128(bs.add(1)));
    let m = _mm_madd_epi16(mins, pairs);
    let m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0b01_00_11_10));
    let m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0b10_11_00_01));
    _mm_cvtsi128_si32(m)
}

/// Byte-shuffle masks that broadcast i16 element `2c` to the low 128-bit lane and `2c + 1`
/// to the high one (scales of a chunk's two sub-blocks).
#[inline(always)]
unsafe fn pair_mask(c: usize) -> __m256i {
    let (a, b) = ((4 * c) as i8, (4 * c + 2) as i8);
    _mm256_setr_epi8(
        a,
        a + 1,
        a,
        a + 1,
        a,
        a + 1,
        a,
        a + 1,
        a,
        a + 1,
        a,
        a + 1,
        a,
        a + 1,
        a,
        a + 1,
        b,
        b + 1,
        b,
        b + 1,
        b,
        b + 1,
        b,
        b + 1,
        b,
        b + 1,
        b,
        b + 1,
        b,
        b + 1,
        b,
        b + 1,
    )
}

/// Q4_K row · Q8_K activations, AVX2.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4k_avx2(row: &[u8], a: &[BlockQ8K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let masks = [pair_mask(0), pair_mask(1), pair_mask(2), pair_mask(3)];
    let mut acc = 0f32;
    for (b, a) in row.chunks_exact(144).zip(a) {
        let (sc, mn) = q4k_scales_mins(&b[4..16]);
        // Scales as i16 in both 128-bit lanes.
        let sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(sc as i64)));
        let qs = b[16..144].as_ptr();
        let q8 = a.qs.as_ptr().cast::<u8>();
        let mut iacc = _mm256_setzero_si256();
        for (c, mask) in masks.iter().enumerate() {
            let v = load(qs.add(32 * c));
            let lo = _mm256_and_si256(v, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            let plo = _mm256_maddubs_epi16(lo, load(q8.add(64 * c)));
            let phi = _mm256_maddubs_epi16(hi, load(q8.add(64 * c + 32)));
            // The low sub-block's products use its scale in every lane, the high one's too:
            // lanes of plo all belong to sub-block 2c, of phi to 2c + 1.
            let s = _mm256_shuffle_epi8(sc16, *mask);
            let s_lo = _mm256_permute2x128_si256(s, s, 0x00);
            let s_hi = _mm256_permute2x128_si256(s, s, 0x11);
            iacc = _mm256_add_epi32(iacc, _mm256_madd_epi16(plo, s_lo));
            iacc = _mm256_add_epi32(iacc, _mm256_madd_epi16(phi, s_hi));
        }
        acc += combine_q4k(
            a.d,
            f16_at(b),
            f16_at(&b[2..]),
            hsum_i32(iacc),
            q4k_msum_sse(mn, &a.bsums),
        );
    }
    acc
}

/// Q4_K row · Q8_K activations, AVX-512 VNNI (u8 × i8 dot products into i32, 64 at a time).
///
/// # Safety
/// The CPU must have AVX-512 F, BW, VL and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,f16c")]
pub unsafe fn dot_q4k_avx512(row: &[u8], a: &[BlockQ8K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let mut acc = 0f32;
    for (b, a) in row.chunks_exact(144).zip(a) {
        let (sc, mn) = q4k_scales_mins(&b[4..16]);
        let qs = b[16..144].as_ptr();
        let q8 = a.qs.as_ptr();
        let mut iacc = _mm512_setzero_si512();
        for c in 0..4 {
            let sl = ((sc >> (16 * c)) & 0xff) as i32;
            let sh = ((sc >> (16 * c + 8)) & 0xff) as i32;
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
            q4k_msum_sse(mn, &a.bsums),
        );
    }
    acc
}

/// Q6_K row · Q8_K activations, AVX2.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q6k_avx2(row: &[u8], a: &[BlockQ8K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(3);
    let masks = [pair_mask(0), pair_mask(1), pair_mask(2), pair_mask(3)];
    let mut acc = 0f32;
    for (b, a) in row.chunks_exact(210).zip(a) {
        let (ql, qh, sc) = (
            b[0..128].as_ptr(),
            b[128..192].as_ptr(),
            b[192..208].as_ptr(),
        );
        let q8 = a.qs.as_ptr().cast::<u8>();
        let mut iacc = _mm256_setzero_si256();
        for n in 0..2 {
            // The half's 8 scales as i16 in both 128-bit lanes.
            let sc16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64(
                sc.add(8 * n).cast(),
            )));
            let l0 = load(ql.add(64 * n));
            let l1 = load(ql.add(64 * n + 32));
            let h = load(qh.add(32 * n));
            for (k, mask) in masks.iter().enumerate() {
                let low = match k {
                    0 => _mm256_and_si256(l0, m4),
                    1 => _mm256_and_si256(l1, m4),
                    2 => _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                    _ => _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                };
                let high =
                    _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * k as i32)), m2);
                let q = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
                let p = _mm256_maddubs_epi16(q, load(q8.add(128 * n + 32 * k)));
                iacc =
                    _mm256_add_epi32(iacc, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc16, *mask)));
            }
        }
        // The offset of 32: Σ scale · (16-value sum).
        let sc_all = _mm256_cvtepi8_epi16(_mm_loadu_si128(sc.cast()));
        let off = _mm256_madd_epi16(sc_all, _mm256_loadu_si256(a.bsums.as_ptr().cast()));
        acc += combine(a.d, f16_at(&b[208..]), hsum_i32(iacc) - 32 * hsum_i32(off));
    }
    acc
}

/// Q8_0 row · Q8 activations, AVX2 (sign trick: |w| · sign(a, w)).
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
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
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
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
