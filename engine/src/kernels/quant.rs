//! Activation quantization, shared by every kernel path (so every path sees the same bytes).
//!
//! - [`BlockQ8`]: 32 values, `d = max|x| / 127`, `q = round(x / d)`, and the sum of `q`
//!   (used by Q4_0's offset and Q4_1's min);
//! - [`BlockQ8K`]: 256 values, scaled by the value of largest magnitude as llama.cpp's
//!   `quantize_row_q8_K` does (`q = round_half_even(-127 / max · x)`, at most 127), with the sum
//!   of each 16 and each 32 values (used by the K-quants' mins and offsets).

/// 32 activations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ8 {
    /// Scale.
    pub d: f32,
    /// Sum of `qs`.
    pub sum: i32,
    /// Values.
    pub qs: [i8; 32],
}

/// 256 activations. The values come first and the block is 64-byte aligned (320 bytes),
/// so each 64 values lie on one cache line: AMX reads its activation tiles from them in
/// place, one line per tile row.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(64))]
pub struct BlockQ8K {
    /// Values.
    pub qs: [i8; 256],
    /// Scale.
    pub d: f32,
    /// Sum of each 16 values.
    pub bsums: [i16; 16],
    /// Sum of each 32 values (pairs of `bsums`: Q4_K's sub-blocks).
    pub psums: [i16; 8],
}

/// `y.round()` (halves away from zero) for |y| < 2^22, in plain arithmetic: `round` is a
/// libm call per value on the baseline x86-64 target, this inlines and vectorizes. Adding
/// 0.5's predecessor never rounds a value below a half up; truncation does the rest.
#[inline(always)]
fn round_half_away(y: f32) -> f32 {
    ((y + 0.499_999_97f32.copysign(y)) as i32) as f32
}

/// `y.round_ties_even()` for |y| < 2^22, in plain arithmetic: adding 1.5 · 2^23 moves `y`
/// where the float spacing is 1, so the addition itself rounds (to nearest, ties to even).
#[inline(always)]
fn round_even(y: f32) -> f32 {
    const M: f32 = 12_582_912.0;
    (y + M) - M
}

/// Quantizes a row (its length a multiple of 32).
pub fn quantize_q8(x: &[f32]) -> Vec<BlockQ8> {
    x.chunks_exact(32)
        .map(|c| {
            let amax = c.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut qs = [0i8; 32];
            let mut sum = 0i32;
            for (q, v) in qs.iter_mut().zip(c) {
                *q = round_half_away(v * id).clamp(-127.0, 127.0) as i8;
                sum += i32::from(*q);
            }
            BlockQ8 { d, sum, qs }
        })
        .collect()
}

/// Quantizes a row (its length a multiple of 256).
pub fn quantize_q8k(x: &[f32]) -> Vec<BlockQ8K> {
    x.chunks_exact(256)
        .map(|c| {
            // The first value of largest magnitude (NaN never is one), found as llama.cpp's
            // running `> amax` scan finds it, in two passes that vectorize: the largest
            // magnitude's bits (for floats that are not NaN the bit order is the value
            // order), then its first position.
            let mag = |v: &f32| match v.to_bits() & 0x7FFF_FFFF {
                m if m > f32::INFINITY.to_bits() => 0,
                m => m,
            };
            let top = c.iter().map(mag).fold(0u32, u32::max);
            let amax = f32::from_bits(top);
            let max = c.iter().find(|v| mag(v) == top).copied().unwrap_or(0.0);
            let mut b = BlockQ8K {
                d: 0.0,
                qs: [0; 256],
                bsums: [0; 16],
                psums: [0; 8],
            };
            if amax == 0.0 {
                return b;
            }
            let iscale = -127.0 / max;
            for (q, v) in b.qs.iter_mut().zip(c) {
                *q = round_even(iscale * v).min(127.0) as i8;
            }
            for (s, q) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
                *s = q.iter().map(|v| i16::from(*v)).sum();
            }
            for (p, s) in b.psums.iter_mut().zip(b.bsums.chunks_exact(2)) {
                *p = s[0] + s[1];
            }
            b.d = 1.0 / iscale;
            b
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scale's value is the first of largest magnitude, as llama.cpp's running scan
    /// (`if |v| > amax`) picks it: ties of either sign, zeros of both signs, NaN and
    /// infinities included.
    #[test]
    fn the_scale_is_set_by_the_first_largest_magnitude() {
        fn scan(c: &[f32]) -> (f32, f32) {
            let (mut amax, mut max) = (0f32, 0f32);
            for &v in c {
                if v.abs() > amax {
                    amax = v.abs();
                    max = v;
                }
            }
            (amax, max)
        }
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as u32
        };
        let specials = [
            0.0,
            -0.0,
            3.5,
            -3.5,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
        ];
        for case in 0..400 {
            let mut c: Vec<f32> = (0..256)
                .map(|_| (next() % 2001) as f32 / 100.0 - 10.0)
                .collect();
            // A few special values at random places: later cases use more of them.
            for _ in 0..case % 9 {
                let at = next() as usize % 256;
                c[at] = specials[next() as usize % specials.len()];
            }
            if case % 50 == 0 {
                c.iter_mut()
                    .for_each(|v| *v = if next() % 2 == 0 { 0.0 } else { -0.0 });
            }
            if case % 50 == 1 {
                c.iter_mut().for_each(|v| *v = f32::NAN);
            }
            let (amax, max) = scan(&c);
            let b = &quantize_q8k(&c)[0];
            if amax == 0.0 {
                assert!(b.d == 0.0 && b.qs.iter().all(|q| *q == 0), "case {case}");
                continue;
            }
            let iscale = -127.0 / max;
            assert_eq!(b.d.to_bits(), (1.0 / iscale).to_bits(), "case {case}");
            for (q, v) in b.qs.iter().zip(&c) {
                assert_eq!(*q, round_even(iscale * v).min(127.0) as i8, "case {case}");
            }
        }
    }

    /// Every scaled value lies within ±128: a sample of every float there (one bit pattern in
    /// 61), and every half-integer with its two neighbours.
    #[test]
    fn arithmetic_rounding_is_the_standard_rounding() {
        let mut ys: Vec<f32> = (0..=128.0f32.to_bits())
            .step_by(61)
            .map(f32::from_bits)
            .collect();
        for i in 0..=512 {
            let h = i as f32 / 2.0;
            ys.extend([h, f32::from_bits(h.to_bits() + 1)]);
            if h > 0.0 {
                ys.push(f32::from_bits(h.to_bits() - 1));
            }
        }
        for y in ys.iter().flat_map(|y| [*y, -*y]) {
            assert_eq!(round_half_away(y), y.round(), "round({y:e})");
            assert_eq!(round_even(y), y.round_ties_even(), "round_ties_even({y:e})");
        }
    }
}
