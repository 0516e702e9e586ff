//! Every SIMD path equals the scalar oracle bit for bit; the oracle equals exact arithmetic
//! on the dequantized values; the layouts decode as candle decodes them; matmul's bits do
//! not depend on the thread count.
#![allow(clippy::unwrap_used)]

use super::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const TYPES: [WType; 5] = [
    WType::Q4_0,
    WType::Q4_1,
    WType::Q8_0,
    WType::Q4K,
    WType::Q6K,
];

/// Random blocks with sane f16 scales (random bits would include NaN and infinities).
fn weights(rng: &mut Rng, t: WType, rows: usize, k: usize) -> Vec<u8> {
    let mut w = rng.bytes(rows * k / t.block_len() * t.block_bytes());
    let f16 = |x: f32| half::f16::from_f32(x).to_bits().to_le_bytes();
    for b in w.chunks_exact_mut(t.block_bytes()) {
        let (s0, s1) = (f16(rng.f32() * 0.05), f16(rng.f32().abs() * 0.02));
        match t {
            WType::Q4_0 | WType::Q8_0 => b[0..2].copy_from_slice(&s0),
            WType::Q4_1 | WType::Q4K => {
                b[0..2].copy_from_slice(&s0);
                b[2..4].copy_from_slice(&s1);
            }
            WType::Q6K => b[208..210].copy_from_slice(&s0),
        }
    }
    w
}

fn acts(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.f32() * scale).collect()
}

#[test]
fn every_simd_path_gives_the_scalar_bits() {
    let mut rng = Rng(1);
    let paths = Isa::available();
    let mut compared = 0;
    for t in TYPES {
        for k in [t.block_len(), 2 * t.block_len(), 1536, 8960 / 256 * 256] {
            for _ in 0..20 {
                let w = weights(&mut rng, t, 1, k);
                let x = acts(&mut rng, k, 4.0);
                let a = Acts::quantize(t, &x, k);
                let want = dot(Isa::Scalar, t, &w, &a, 0);
                for &isa in &paths[1..] {
                    let got = dot(isa, t, &w, &a, 0);
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{t:?} k={k} {isa:?}: {got} vs {want}"
                    );
                    compared += 1;
                }
            }
        }
    }
    // This machine has AVX2 and AVX-512 VNNI: both are compared, for all five types.
    assert!(paths.len() < 2 || compared == TYPES.len() * 4 * 20 * (paths.len() - 1));
}

#[test]
fn extreme_values_stay_exact() {
    // All-ones nibbles/bytes with the largest activations: the integer sums saturate nowhere.
    for t in TYPES {
        let k = t.block_len() * 2;
        let mut w = vec![0xFFu8; k / t.block_len() * t.block_bytes()];
        for b in w.chunks_exact_mut(t.block_bytes()) {
            let one = half::f16::from_f32(1.0).to_bits().to_le_bytes();
            match t {
                WType::Q6K => b[208..210].copy_from_slice(&one),
                _ => b[0..2].copy_from_slice(&one),
            }
            if matches!(t, WType::Q4_1 | WType::Q4K) {
                b[2..4].copy_from_slice(&one); // the min
            }
            if t == WType::Q8_0 {
                b[2..34].fill(0x80); // -128
            }
        }
        for x in [vec![-1000.0f32; k], vec![1000.0f32; k]] {
            let a = Acts::quantize(t, &x, k);
            let want = dot(Isa::Scalar, t, &w, &a, 0);
            let exact: f64 = scalar::dequantize(t, &w)
                .iter()
                .zip(dequantized_acts(&a))
                .map(|(w, a)| f64::from(*w) * a)
                .sum();
            assert!(
                ((want as f64) - exact).abs() <= exact.abs() * 1e-5,
                "{t:?}: {want} vs {exact}"
            );
            for isa in Isa::available() {
                assert_eq!(
                    dot(isa, t, &w, &a, 0).to_bits(),
                    want.to_bits(),
                    "{t:?} {isa:?}"
                );
            }
        }
    }
}

fn dequantized_acts(a: &Acts) -> Vec<f64> {
    match a {
        Acts::Q8(v) => v[0]
            .iter()
            .flat_map(|b| b.qs.iter().map(move |q| f64::from(b.d) * f64::from(*q)))
            .collect(),
        Acts::Q8K(v) => v[0]
            .iter()
            .flat_map(|b| b.qs.iter().map(move |q| f64::from(b.d) * f64::from(*q)))
            .collect(),
    }
}

#[test]
fn the_oracle_is_exact_arithmetic_on_the_dequantized_values() {
    let mut rng = Rng(2);
    for t in TYPES {
        for _ in 0..50 {
            let k = 1536;
            let w = weights(&mut rng, t, 1, k);
            let x = acts(&mut rng, k, 3.0);
            let a = Acts::quantize(t, &x, k);
            let got = f64::from(dot(Isa::Scalar, t, &w, &a, 0));
            let terms: Vec<f64> = scalar::dequantize(t, &w)
                .iter()
                .zip(dequantized_acts(&a))
                .map(|(w, a)| f64::from(*w) * a)
                .collect();
            let exact: f64 = terms.iter().sum();
            let mass: f64 = terms.iter().map(|v| v.abs()).sum();
            // Block results are rounded to f32 and summed in f32: a few ulps of the mass.
            assert!(
                (got - exact).abs() <= mass * 1e-6,
                "{t:?}: {got} vs {exact} (mass {mass})"
            );
        }
    }
}

#[test]
fn activation_quantization_error_is_within_half_a_step() {
    let mut rng = Rng(3);
    let x = acts(&mut rng, 1024, 10.0);
    for b in quant::quantize_q8(&x).iter().zip(x.chunks_exact(32)) {
        for (q, v) in b.0.qs.iter().zip(b.1) {
            assert!((b.0.d * f32::from(*q) - v).abs() <= b.0.d * 0.5 + 1e-6);
        }
        assert_eq!(b.0.sum, b.0.qs.iter().map(|q| i32::from(*q)).sum::<i32>());
    }
    for (b, c) in quant::quantize_q8k(&x).iter().zip(x.chunks_exact(256)) {
        for (q, v) in b.qs.iter().zip(c) {
            assert!((b.d * f32::from(*q) - v).abs() <= b.d.abs() * 0.5 + 1e-5);
        }
        for (s, q) in b.bsums.iter().zip(b.qs.chunks_exact(16)) {
            assert_eq!(i32::from(*s), q.iter().map(|v| i32::from(*v)).sum::<i32>());
        }
    }
    // Zeros quantize to zeros with a zero scale (no division by zero).
    assert!(quant::quantize_q8k(&[0.0; 256])[0]
        .qs
        .iter()
        .all(|q| *q == 0));
    assert_eq!(quant::quantize_q8(&[0.0; 32])[0].d, 0.0);
}

#[test]
fn layouts_decode_as_candle_decodes_them() {
    use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType};
    let mut rng = Rng(4);
    for (t, g) in [
        (WType::Q4_0, GgmlDType::Q4_0),
        (WType::Q4_1, GgmlDType::Q4_1),
        (WType::Q8_0, GgmlDType::Q8_0),
        (WType::Q4K, GgmlDType::Q4K),
        (WType::Q6K, GgmlDType::Q6K),
    ] {
        let (rows, k) = (3, 512);
        let w = weights(&mut rng, t, rows, k);
        let q = qtensor_from_ggml(g, &w, vec![rows, k], &candle_core::Device::Cpu).unwrap();
        let theirs: Vec<f32> = q
            .dequantize(&candle_core::Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let ours = scalar::dequantize(t, &w);
        assert_eq!(ours.len(), theirs.len());
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                "{t:?}[{i}]: {a} vs {b}"
            );
        }
    }
}

#[test]
fn matmul_bits_do_not_depend_on_threads_or_path() {
    let mut rng = Rng(5);
    for t in TYPES {
        let (rows, k, tokens) = (37, 512, 5);
        let w = weights(&mut rng, t, rows, k);
        let x = acts(&mut rng, k * tokens, 2.0);
        let reference = matmul(Isa::Scalar, t, &w, rows, k, &x, 1).unwrap();
        // The oracle, row by row.
        let a = Acts::quantize(t, &x, k);
        let row_bytes = k / t.block_len() * t.block_bytes();
        for tok in 0..tokens {
            for r in 0..rows {
                let d = dot(
                    Isa::Scalar,
                    t,
                    &w[r * row_bytes..(r + 1) * row_bytes],
                    &a,
                    tok,
                );
                assert_eq!(reference[tok * rows + r].to_bits(), d.to_bits());
            }
        }
        for isa in Isa::available() {
            for threads in [1, 2, 3, 8, 64] {
                let got = matmul(isa, t, &w, rows, k, &x, threads).unwrap();
                let same = got
                    .iter()
                    .zip(&reference)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{t:?} {isa:?} threads={threads}");
            }
            // One token: no transpose.
            let one = matmul(isa, t, &w, rows, k, &x[..k], 2).unwrap();
            assert!(one
                .iter()
                .zip(&reference[..rows])
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}

#[test]
fn bad_shapes_are_errors() {
    let w = vec![0u8; 144];
    assert!(matmul(Isa::Scalar, WType::Q4K, &w, 1, 255, &[0.0; 255], 1)
        .unwrap_err()
        .contains("not a multiple of 256"));
    assert!(matmul(Isa::Scalar, WType::Q4K, &w, 2, 256, &[0.0; 256], 1)
        .unwrap_err()
        .contains("expected 2 rows of 144"));
    assert!(matmul(Isa::Scalar, WType::Q4K, &w, 1, 256, &[0.0; 300], 1)
        .unwrap_err()
        .contains("not rows of 256"));
}

#[test]
fn the_attention_kernels_have_the_same_bits_on_every_path() {
    let mut rng = Rng(6);
    for n in [1, 7, 8, 64, 128, 130] {
        let a = acts(&mut rng, n, 3.0);
        let b: Vec<half::f16> = acts(&mut rng, n, 3.0)
            .into_iter()
            .map(half::f16::from_f32)
            .collect();
        let want = dot_f16(Isa::Scalar, &a, &b);
        let exact: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(*x) * f64::from(y.to_f32()))
            .sum();
        assert!((f64::from(want) - exact).abs() < 1e-4 * n as f64);
        let w = rng.f32();
        let mut want_axpy = a.clone();
        axpy_f16(Isa::Scalar, w, &b, &mut want_axpy);
        for (i, o) in want_axpy.iter().enumerate() {
            assert_eq!(o.to_bits(), (a[i] + w * b[i].to_f32()).to_bits());
        }
        for isa in Isa::available() {
            assert_eq!(
                dot_f16(isa, &a, &b).to_bits(),
                want.to_bits(),
                "{isa:?} n={n}"
            );
            let mut got = a.clone();
            axpy_f16(isa, w, &b, &mut got);
            assert!(
                got.iter()
                    .zip(&want_axpy)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{isa:?} n={n}"
            );
        }
    }
}

/// The grouped attention kernels (the query heads of one KV head over a strided cache) give
/// each score the bits of `dot_f16` times the scale, and each sum the bits of `axpy_f16`
/// called position after position, on every path: group sizes on both sides of the 8 rows
/// one pass holds, head sizes with a tail, one position and many.
#[test]
fn grouped_attention_kernels_give_the_one_row_bits() {
    let mut rng = Rng(8);
    for hd in [8, 13, 64, 128] {
        for g in [1, 2, 3, 6, 7, 8, 9, 17] {
            for len in [1, 5, 70] {
                let stride = 3 * hd + 5;
                let q = acts(&mut rng, g * hd, 3.0);
                let kv: Vec<half::f16> = acts(&mut rng, (len - 1) * stride + hd, 3.0)
                    .into_iter()
                    .map(half::f16::from_f32)
                    .collect();
                let w: Vec<f32> = (0..g * len).map(|_| rng.f32()).collect();
                let out0 = acts(&mut rng, g * hd, 1.0);
                let scale = 0.125f32;
                let at = |j: usize| &kv[j * stride..j * stride + hd];
                for isa in Isa::available() {
                    let mut scores = vec![f32::NAN; g * len];
                    scores_f16(isa, &q, hd, &kv, stride, len, scale, &mut scores);
                    let mut out = out0.clone();
                    weighted_sum_f16(isa, &w, hd, &kv, stride, len, &mut out);
                    for r in 0..g {
                        let qr = &q[r * hd..(r + 1) * hd];
                        for j in 0..len {
                            let want = dot_f16(Isa::Scalar, qr, at(j)) * scale;
                            assert_eq!(
                                scores[r * len + j].to_bits(),
                                want.to_bits(),
                                "{isa:?} hd={hd} g={g} len={len} score {r},{j}"
                            );
                        }
                        let mut want = out0[r * hd..(r + 1) * hd].to_vec();
                        for j in 0..len {
                            axpy_f16(Isa::Scalar, w[r * len + j], at(j), &mut want);
                        }
                        let got = &out[r * hd..(r + 1) * hd];
                        assert!(
                            got.iter()
                                .zip(&want)
                                .all(|(x, y)| x.to_bits() == y.to_bits()),
                            "{isa:?} hd={hd} g={g} len={len} row {r}"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn word_unpacked_q4k_scales_equal_the_byte_rule() {
    let mut rng = Rng(7);
    for _ in 0..1000 {
        let q = rng.bytes(12);
        let (sc, mn) = x86::q4k_scales_mins(&q);
        for j in 0..8 {
            let (s, m) = scalar::scale_min_k4(j, &q);
            assert_eq!(((sc >> (8 * j)) & 0xff) as i32, s, "{q:?} scale {j}");
            assert_eq!(((mn >> (8 * j)) & 0xff) as i32, m, "{q:?} min {j}");
        }
    }
}

/// The paths this CPU has that read the interleaved layout (every machine of ours has at
/// least AVX2; the assertion says so rather than letting the tests pass on nothing).
fn packing_paths() -> Vec<Isa> {
    let paths: Vec<Isa> = Isa::available().into_iter().filter(|i| i.packs()).collect();
    assert!(
        !paths.is_empty(),
        "no path for the interleaved layout on this CPU"
    );
    paths
}

#[test]
fn the_interleaved_layout_is_refused_where_no_kernel_reads_it() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let w = vec![0u8; 18];
    let err = packed::Packed::new(&pool, Isa::Scalar, WType::Q4_0, &w, 1, 32)
        .err()
        .unwrap();
    assert!(
        err.contains("no kernels for the interleaved layout"),
        "{err}"
    );
    for isa in [Isa::Avx2, Isa::Avx512Vnni, Isa::Amx] {
        let made = packed::Packed::new(&pool, isa, WType::Q4_0, &w, 1, 32);
        assert_eq!(made.is_ok(), Isa::available().contains(&isa), "{isa:?}");
    }
}

#[test]
fn every_packed_row_reads_back_as_the_gguf_bytes_it_came_from() {
    // Any bytes at all (Q4_K's packed 6-bit scales included), rows that leave a group short,
    // and no row past the end.
    let mut rng = Rng(29);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for t in TYPES {
        for (rows, k) in [(1, t.block_len()), (37, 512), (48, 3 * 256)] {
            let w = rng.bytes(rows * k / t.block_len() * t.block_bytes());
            let row_bytes = w.len() / rows;
            for isa in packing_paths() {
                let p = packed::Packed::new(&pool, isa, t, &w, rows, k).unwrap();
                for r in 0..rows {
                    let got = p.row(r).unwrap();
                    assert!(
                        got == w[r * row_bytes..(r + 1) * row_bytes],
                        "{isa:?} {t:?} rows={rows} k={k}: row {r} differs"
                    );
                }
                assert_eq!(p.row(rows), None, "{isa:?} {t:?}: a row past the end");
            }
        }
    }
}

#[test]
fn the_interleaved_layout_gives_the_scalar_bits() {
    let mut rng = Rng(11);
    let paths = packing_paths();
    for t in TYPES {
        // Rows not a multiple of 16 (a padded group); every tile of up to 9 tokens (the
        // register kernels of AVX-512 take up to 8 for Q4_K and 3 for Q6_K); tokens
        // crossing the 32-token tile, and 16-token AMX groups: one, an odd count, pairs, each
        // with a rest, and more tokens than one AMX call takes (a second tile of two).
        for (rows, k) in [(1, t.block_len()), (37, 512), (48, 3 * 256)] {
            let w = weights(&mut rng, t, rows, k);
            for tokens in [1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 50, 70, 130] {
                let x = acts(&mut rng, k * tokens, 3.0);
                let want = matmul(Isa::Scalar, t, &w, rows, k, &x, 1).unwrap();
                for threads in [1, 2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    for &isa in &paths {
                        let p = packed::Packed::new(&pool, isa, t, &w, rows, k).unwrap();
                        let got = packed::matmul_packed(&pool, &p, &x).unwrap();
                        assert_eq!(got.len(), want.len());
                        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert_eq!(
                                g.to_bits(),
                                w.to_bits(),
                                "{isa:?} {t:?} rows={rows} k={k} tokens={tokens} threads={threads} at {i}: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn the_interleaved_layout_stays_exact_at_the_extremes() {
    let paths = packing_paths();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for t in TYPES {
        let (rows, k) = (16, 2 * 256);
        let mut w = vec![0xFFu8; rows * k / t.block_len() * t.block_bytes()];
        let one = half::f16::from_f32(1.0).to_bits().to_le_bytes();
        for b in w.chunks_exact_mut(t.block_bytes()) {
            match t {
                WType::Q6K => {
                    b[208..210].copy_from_slice(&one);
                    b[192..208].fill(0x80); // scales -128
                }
                _ => b[0..2].copy_from_slice(&one),
            }
            if matches!(t, WType::Q4_1 | WType::Q4K) {
                b[2..4].copy_from_slice(&one);
            }
            if t == WType::Q8_0 {
                b[2..34].fill(0x80);
            }
        }
        for v in [-1000.0f32, 1000.0] {
            let x = vec![v; k * 3];
            let want = matmul(Isa::Scalar, t, &w, rows, k, &x, 1).unwrap();
            for &isa in &paths {
                let p = packed::Packed::new(&pool, isa, t, &w, rows, k).unwrap();
                let got = packed::matmul_packed(&pool, &p, &x).unwrap();
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa:?} {t:?} {v}"
                );
            }
        }
    }
}

#[test]
fn several_matrices_of_one_input_give_each_ones_bits() {
    let isa = *packing_paths().last().unwrap();
    let mut rng = Rng(12);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let k = 512;
    // Q4_K and Q6_K share 256-value activation blocks (R1's V is Q6_K in half the layers).
    let mats: Vec<packed::Packed> = [(WType::Q4K, 48), (WType::Q6K, 20), (WType::Q4K, 16)]
        .iter()
        .map(|&(t, rows)| {
            packed::Packed::new(&pool, isa, t, &weights(&mut rng, t, rows, k), rows, k).unwrap()
        })
        .collect();
    for tokens in [1, 9] {
        let x = acts(&mut rng, k * tokens, 2.0);
        let refs: Vec<&packed::Packed> = mats.iter().collect();
        let many = packed::matmul_packed_many(&pool, &refs, &x).unwrap();
        for (m, got) in mats.iter().zip(&many) {
            let want = packed::matmul_packed(&pool, m, &x).unwrap();
            assert!(want
                .iter()
                .zip(got)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            assert_eq!(got.len(), m.shape().0 * tokens);
        }
    }
    // Another k, or 32-value activation blocks, cannot share the quantized input.
    let other = packed::Packed::new(
        &pool,
        isa,
        WType::Q4_1,
        &weights(&mut rng, WType::Q4_1, 16, k),
        16,
        k,
    )
    .unwrap();
    let err = packed::matmul_packed_many(&pool, &[&mats[0], &other], &vec![0.0; k]).unwrap_err();
    assert!(err.contains("share k and activation blocks"), "{err}");
}

/// AMX is offered exactly where the CPU advertises it (with the AVX-512 VNNI it builds on):
/// the tile permission was asked of Linux and granted, so a machine with AMX runs its tests.
#[test]
fn amx_is_offered_wherever_the_cpu_advertises_it() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap()
        .split_whitespace()
        .collect();
    let has = |f: &str| flags.contains(&f);
    let advertised = [
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512_vnni",
        "amx_tile",
        "amx_int8",
    ]
    .iter()
    .all(|f| has(f));
    assert_eq!(
        Isa::available().contains(&Isa::Amx),
        advertised,
        "flags: amx_tile={} amx_int8={}",
        has("amx_tile"),
        has("amx_int8")
    );
}

/// With nothing asked, the best path is taken, AMX included where it is offered; a path asked
/// for is taken only where it is offered, and an unknown name is refused.
#[test]
fn the_default_path_is_the_best_offered() {
    use Isa::*;
    let all = [Scalar, Avx2, Avx512Vnni, Amx];
    assert_eq!(Isa::select_from(&all, None), Ok(Amx));
    assert_eq!(Isa::select_from(&all, Some("")), Ok(Amx));
    assert_eq!(Isa::select_from(&all[..3], None), Ok(Avx512Vnni));
    assert_eq!(Isa::select_from(&all[..1], None), Ok(Scalar));
    assert_eq!(Isa::select_from(&all, Some("avx2")), Ok(Avx2));
    assert_eq!(Isa::select_from(&all, Some("scalar")), Ok(Scalar));
    let lacks = Isa::select_from(&all[..3], Some("amx")).unwrap_err();
    assert!(lacks.contains("this CPU lacks it"), "{lacks}");
    let unknown = Isa::select_from(&all, Some("neon")).unwrap_err();
    assert!(
        unknown.contains("use scalar, avx2, avx512 or amx"),
        "{unknown}"
    );
}
