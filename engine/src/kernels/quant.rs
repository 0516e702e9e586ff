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

/// `y.round()` (halves away from zero) for |y| < 2^22, in plain arithmetic, the rule
/// [`BlockQ8`]'s quantizer spells out in steps that vectorize: adding 0.5's predecessor never
/// rounds a value below a half up; truncation does the rest.
#[cfg(test)]
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

/// Builds of the row quantizers: the same Rust compiled for wider vector units. The code is
/// integer sums, IEEE products and comparisons in a fixed order, so every build gives the same
/// bytes (the tests hold them to the baseline build); only the speed differs (the baseline
/// x86-64 target vectorizes none of it, and it was 6% of R1's prefill).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// The crate's baseline target.
    Baseline,
    /// AVX2 (x86-64 only).
    Avx2,
    /// AVX-512 F and BW (x86-64 only).
    Avx512,
}

impl Build {
    /// The widest build this CPU runs.
    pub fn best() -> Build {
        [Build::Avx512, Build::Avx2]
            .into_iter()
            .find(|b| b.runs_here())
            .unwrap_or(Build::Baseline)
    }

    /// Whether this CPU runs this build.
    pub fn runs_here(self) -> bool {
        match self {
            Build::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Build::Avx2 => is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Build::Avx512 => {
                is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every build this CPU runs, the baseline first.
    pub fn available() -> Vec<Build> {
        [Build::Baseline, Build::Avx2, Build::Avx512]
            .into_iter()
            .filter(|b| b.runs_here())
            .collect()
    }
}

/// Quantizes a row (its length a multiple of 32).
pub fn quantize_q8(x: &[f32]) -> Vec<BlockQ8> {
    quantize_q8_with(Build::best(), x)
}

/// Quantizes a row (its length a multiple of 256).
pub fn quantize_q8k(x: &[f32]) -> Vec<BlockQ8K> {
    quantize_q8k_with(Build::best(), x)
}

/// [`quantize_q8`] by one build.
///
/// # Panics
/// If this CPU cannot run `build` ([`Build::available`]).
pub fn quantize_q8_with(build: Build, x: &[f32]) -> Vec<BlockQ8> {
    by_build::<Q8>(build, x)
}

/// [`quantize_q8k`] by one build.
///
/// # Panics
/// If this CPU cannot run `build` ([`Build::available`]).
pub fn quantize_q8k_with(build: Build, x: &[f32]) -> Vec<BlockQ8K> {
    by_build::<Q8K>(build, x)
}

/// A block quantizer: blocks of `N` values.
trait Blocks {
    type B;
    const N: usize;
    /// Quantizes `N` values.
    fn block(c: &[f32]) -> Self::B;
}

/// [`BlockQ8`]'s quantizer.
struct Q8;
/// [`BlockQ8K`]'s quantizer.
struct Q8K;

fn by_build<Q: Blocks>(build: Build, x: &[f32]) -> Vec<Q::B> {
    assert!(build.runs_here(), "this CPU cannot run the {build:?} build");
    match build {
        Build::Baseline => rows::<Q>(x),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 (checked above).
        Build::Avx2 => unsafe { rows_avx2::<Q>(x) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512 F and BW (checked above).
        Build::Avx512 => unsafe { rows_avx512::<Q>(x) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("only the baseline build exists here"),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2<Q: Blocks>(x: &[f32]) -> Vec<Q::B> {
    rows::<Q>(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn rows_avx512<Q: Blocks>(x: &[f32]) -> Vec<Q::B> {
    rows::<Q>(x)
}

/// One block per `N` values, inlined into each build (a direct call of an inlined function:
/// a function passed as a value would be called through a shim compiled for the baseline).
#[inline(always)]
fn rows<Q: Blocks>(x: &[f32]) -> Vec<Q::B> {
    let mut out = Vec::with_capacity(x.len() / Q::N);
    for c in x.chunks_exact(Q::N) {
        out.push(Q::block(c));
    }
    out
}

impl Blocks for Q8 {
    type B = BlockQ8;
    const N: usize = 32;
    #[inline(always)]
    fn block(c: &[f32]) -> BlockQ8 {
        let amax = f32::from_bits(c.iter().map(|v| magnitude(*v)).fold(0u32, u32::max));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0i8; 32];
        for (q, v) in qs.iter_mut().zip(c) {
            // `round_half_away(v · id).clamp(-127.0, 127.0) as i8`, whose conversions
            // saturate (NaN to 0) and do not vectorize, in steps that do.
            let y = v * id;
            let t = y + 0.499_999_97f32.copysign(y);
            let t = if t.is_nan() {
                0.0
            } else {
                t.clamp(-127.0, 127.0)
            };
            // SAFETY: `t` is within [-127, 127], so truncated it fits an i32.
            *q = unsafe { t.to_int_unchecked::<i32>() } as i8;
        }
        let sum = qs.iter().map(|q| i32::from(*q)).sum();
        BlockQ8 { d, sum, qs }
    }
}

/// A value's magnitude bits, NaN's as zero's (for floats that are not NaN the bit order is the
/// value order).
#[inline(always)]
fn magnitude(v: f32) -> u32 {
    match v.to_bits() & 0x7FFF_FFFF {
        m if m > f32::INFINITY.to_bits() => 0,
        m => m,
    }
}

impl Blocks for Q8K {
    type B = BlockQ8K;
    const N: usize = 256;
    #[inline(always)]
    fn block(c: &[f32]) -> BlockQ8K {
        // The first value of largest magnitude (NaN never is one), found as llama.cpp's running
        // `> amax` scan finds it, in two passes that vectorize: the largest magnitude, then the
        // least position holding it.
        let c: &[f32; 256] = c.try_into().expect("chunks of 256");
        let mut top = 0u32;
        for v in c {
            top = top.max(magnitude(*v));
        }
        let amax = f32::from_bits(top);
        let mut at = u32::MAX;
        for (v, i) in c.iter().zip(0u32..) {
            at = at.min(if magnitude(*v) == top { i } else { u32::MAX });
        }
        let mut b = BlockQ8K {
            qs: [0; 256],
            d: 0.0,
            bsums: [0; 16],
            psums: [0; 8],
        };
        if amax == 0.0 {
            return b;
        }
        let iscale = -127.0 / c[at as usize];
        for (q, v) in b.qs.iter_mut().zip(c) {
            // `y.min(127.0) as i8`, whose conversion saturates (-inf to -128) and does not
            // vectorize: NaN's min is 127, so `z` is a number in [-128, 127].
            #[allow(clippy::manual_clamp)] // clamp would keep NaN, which must become 127
            let z = round_even(iscale * v).min(127.0).max(-128.0);
            // SAFETY: `z` is within [-128, 127], so truncated it fits an i32.
            *q = unsafe { z.to_int_unchecked::<i32>() } as i8;
        }
        for (s, q) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *s = q.iter().map(|v| i16::from(*v)).sum();
        }
        for (p, s) in b.psums.iter_mut().zip(b.bsums.chunks_exact(2)) {
            *p = s[0] + s[1];
        }
        b.d = 1.0 / iscale;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed sequence of pseudo-random 31-bit numbers.
    fn numbers(mut seed: u64) -> impl FnMut() -> u32 {
        move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as u32
        }
    }

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
        let mut next = numbers(7);
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
                    .for_each(|v| *v = if next().is_multiple_of(2) { 0.0 } else { -0.0 });
            }
            if case % 50 == 1 {
                c.iter_mut().for_each(|v| *v = f32::NAN);
            }
            let (amax, max) = scan(&c);
            let b = &quantize_q8k_with(Build::Baseline, &c)[0];
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

    /// Every build gives the baseline's bytes, specials and ties included, and the CPUs here
    /// run a vector build (so the comparison is not of one build with itself).
    #[test]
    fn every_build_gives_the_baseline_bytes() {
        let builds = Build::available();
        #[cfg(target_arch = "x86_64")]
        assert!(builds.len() > 1, "only {builds:?} here");
        let mut next = numbers(11);
        let specials = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            1e-40,
        ];
        for case in 0..64 {
            // Small integers make ties of magnitude and halfway products common.
            let mut x: Vec<f32> = (0..1024)
                .map(|_| match case % 3 {
                    0 => (next() % 9) as f32 - 4.0,
                    1 => f32::from_bits(next()),
                    _ => (next() % 20_001) as f32 / 1000.0 - 10.0,
                })
                .collect();
            for _ in 0..case % 7 {
                let at = next() as usize % x.len();
                x[at] = specials[next() as usize % specials.len()];
            }
            if case % 16 == 5 {
                x[256..512].fill(0.0);
            }
            // Blocks whose largest magnitude is so small that the scale overflows to infinity
            // (the products are then infinities and NaN, and the conversions saturate).
            if case % 8 == 6 {
                for v in &mut x[512..768] {
                    *v = f32::from_bits((next() % 0x0080_0000) | (next() & 0x8000_0000));
                }
                x[700] = -1e-38;
                for v in &mut x[32..64] {
                    *v = f32::from_bits(next() % 0x0010_0000);
                }
            }
            let (q8, q8k) = (
                quantize_q8_with(Build::Baseline, &x),
                quantize_q8k_with(Build::Baseline, &x),
            );
            // The baseline build is the plain rule.
            for (b, c) in q8.iter().zip(x.chunks_exact(32)) {
                let amax = c.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert_eq!(b.d.to_bits(), (amax / 127.0).to_bits(), "case {case}");
                let id = if b.d > 0.0 { 1.0 / b.d } else { 0.0 };
                for (q, v) in b.qs.iter().zip(c) {
                    let want = round_half_away(v * id).clamp(-127.0, 127.0) as i8;
                    assert_eq!(*q, want, "case {case}: {v:e} · {id:e}");
                }
                assert_eq!(b.sum, b.qs.iter().map(|q| i32::from(*q)).sum::<i32>());
            }
            for (b, c) in q8k.iter().zip(x.chunks_exact(256)) {
                let max = c
                    .iter()
                    .fold(0f32, |m, v| if v.abs() > m.abs() { *v } else { m });
                if max == 0.0 {
                    assert!(b.d == 0.0 && b.qs == [0; 256], "case {case}");
                    continue;
                }
                let iscale = -127.0 / max;
                assert_eq!(b.d.to_bits(), (1.0 / iscale).to_bits(), "case {case}");
                for (q, v) in b.qs.iter().zip(c) {
                    let want = round_even(iscale * v).min(127.0) as i8;
                    assert_eq!(*q, want, "case {case}: {v:e} · {iscale:e}");
                }
            }
            for &b in &builds {
                let same = |a: &BlockQ8, b: &BlockQ8| {
                    a.d.to_bits() == b.d.to_bits() && a.sum == b.sum && a.qs == b.qs
                };
                let got = quantize_q8_with(b, &x);
                assert!(
                    q8.iter().zip(&got).all(|(a, g)| same(a, g)),
                    "Q8, {b:?}, case {case}"
                );
                let got = quantize_q8k_with(b, &x);
                let same = |a: &BlockQ8K, b: &BlockQ8K| {
                    a.d.to_bits() == b.d.to_bits()
                        && a.qs == b.qs
                        && a.bsums == b.bsums
                        && a.psums == b.psums
                };
                assert!(
                    q8k.iter().zip(&got).all(|(a, g)| same(a, g)),
                    "Q8K, {b:?}, case {case}"
                );
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
