//! AMX int8 tiles for Q4_K and Q6_K prefill on the interleaved layout ([`super::packed`]).
//!
//! Q6_K (signed 8-bit scales `s`, 6-bit values `q`): with `q = ql + 16·qh` and `s = sl +
//! 16·sh` (`sl = s & 15`, `sh = s >> 4`), the scaled sum is `T1 + 16·(T2 + T3) + 256·T4` over
//! the products with B = `ql·sl`, `qh·sl` (unsigned, at most 225) and `ql·sh`, `qh·sh`
//! (signed, within ±120), four result tiles per 16 tokens; the offset of 32 and the float
//! step are the AVX-512 kernel's own (`x86_packed::q6k_combine_with`).
//!
//! A record's quant lines are already most of a tile's B operand: line `q` of chunk `c` holds,
//! for each of 16 rows, four bytes whose low nibbles are values `4q..4q + 4` of sub-block
//! `2c` and whose high nibbles are the same values of sub-block `2c + 1`. Masked (or
//! shifted), the 8 lines of the low nibbles followed by the 8 of the high ones are the 64
//! values `64c..64c + 64` of 16 rows in the B layout (16 rows × 16 weight rows × 4 bytes),
//! against 16 tokens' 64 activation bytes of that chunk, read in place at the activations'
//! stride, as the A tile.
//!
//! The 6-bit sub-block scales are multiplied into B before the products, split in two so
//! every byte stays unsigned and below 256: `q · (s & 15)` (at most 225) and `q · (s >> 4)`
//! (at most 45). One `tdpbsud` (signed activations, unsigned weights) per chunk and half, into
//! two result tiles that stay in their registers for the whole record, gives `C1` and `C2`,
//! and `C1 + 16 · C2` is the record's scaled integer sum, the `isum` the AVX-512 kernel forms
//! (integers, exact in any order). The float combination is that kernel's own code
//! (`x86_packed::q4k_combine`): the scalar oracle's bits.
//!
//! Tokens beyond the last whole 16 of a tile go to the AVX-512 kernel.
//!
//! # Safety
//! The CPU must have AVX-512 F, BW, VNNI and AMX-TILE/INT8, and the process must hold the tile
//! data permission ([`tiles_granted`]); `recs` must hold whole Q4_K records.

use super::packed::{q6k_high, q6k_low};
use super::quant::BlockQ8K;
use super::x86_packed as k512;
use super::WType;
use std::arch::asm;
use std::arch::x86_64::*;

/// Whether the CPU has AMX-TILE and AMX-INT8 and Linux gave this process the tile data state
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`; asked once, before any tile
/// instruction). The permission is the process's, for all its threads; it does not survive
/// `exec`, so every process asks for itself.
pub fn tiles_granted() -> bool {
    static GRANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GRANTED.get_or_init(|| {
        // CPUID leaf 7: EDX bit 24 is AMX-TILE, bit 25 AMX-INT8.
        #[allow(unused_unsafe)]
        // SAFETY: CPUID leaf 7 exists on every x86-64 CPU this runs on (AVX2 and above).
        let edx = unsafe { __cpuid_count(7, 0) }.edx;
        if edx & (1 << 24) == 0 || edx & (1 << 25) == 0 {
            return false;
        }
        request_tile_data()
    })
}

#[cfg(target_os = "linux")]
fn request_tile_data() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: arch_prctl takes two integers and changes only the process's permission set;
    // the syscall clobbers rcx and r11, declared here.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

#[cfg(not(target_os = "linux"))]
fn request_tile_data() -> bool {
    false
}

/// Palette 1: all eight tiles 16 rows × 64 bytes. tmm0..3 are results (16 tokens × 16 rows
/// of i32), tmm4/5 16 tokens × 64 activation bytes, tmm6/7 16 lines of B (16 rows × 4 bytes).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const fn tile_config() -> TileConfig {
    let mut c = [0u8; 64];
    c[0] = 1;
    let mut t = 0;
    while t < 8 {
        c[16 + 2 * t] = 64;
        c[48 + t] = 16;
        t += 1;
    }
    TileConfig(c)
}

static CONFIG: TileConfig = tile_config();

#[repr(C, align(64))]
struct Lines<const N: usize>([[u8; 64]; N]);

/// Most tokens one call takes in whole 16-token groups (the result buffer's size); the
/// matmul hands the AMX path tiles of this many tokens, a prefill chunk.
pub const TOKENS: usize = 128;

/// Zeroes the result tiles of a pair of groups (tmm0..3).
macro_rules! zero_results {
    () => {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        )
    };
}

/// One chunk of 64 values for two groups of 16 tokens: B halves from `$b1` and `$b2`, A
/// tiles from `$a0` and `$a1` at stride `$st`, into tmm0/1 (first group) and tmm2/3.
macro_rules! chunk_pair {
    ($b1:expr, $b2:expr, $a0:expr, $a1:expr, $st:expr) => {
        asm!(
            "tileloadd tmm6, [{b1} + {line} * 1]",
            "tileloadd tmm7, [{b2} + {line} * 1]",
            "tileloadd tmm4, [{a0} + {st} * 1]",
            "tileloadd tmm5, [{a1} + {st} * 1]",
            "tdpbsud tmm0, tmm4, tmm6",
            "tdpbsud tmm1, tmm4, tmm7",
            "tdpbsud tmm2, tmm5, tmm6",
            "tdpbsud tmm3, tmm5, tmm7",
            b1 = in(reg) $b1,
            b2 = in(reg) $b2,
            a0 = in(reg) $a0,
            a1 = in(reg) $a1,
            st = in(reg) $st,
            line = in(reg) 64usize,
            options(nostack, readonly),
        )
    };
}

/// One chunk of 64 values for a single group of 16 tokens, into tmm0/1.
macro_rules! chunk_one {
    ($b1:expr, $b2:expr, $a0:expr, $st:expr) => {
        asm!(
            "tileloadd tmm6, [{b1} + {line} * 1]",
            "tileloadd tmm7, [{b2} + {line} * 1]",
            "tileloadd tmm4, [{a0} + {st} * 1]",
            "tdpbsud tmm0, tmm4, tmm6",
            "tdpbsud tmm1, tmm4, tmm7",
            b1 = in(reg) $b1,
            b2 = in(reg) $b2,
            a0 = in(reg) $a0,
            st = in(reg) $st,
            line = in(reg) 64usize,
            options(nostack, readonly),
        )
    };
}

/// Stores result tiles tmm0..`$n` - 1 to `$cp`, 1 KiB apart.
macro_rules! store_results {
    ($cp:expr, 2) => {
        asm!(
            "tilestored [{cp} + {line} * 1], tmm0",
            "tilestored [{cp} + {line} * 1 + 1024], tmm1",
            cp = in(reg) $cp,
            line = in(reg) 64usize,
            options(nostack),
        )
    };
    ($cp:expr, 4) => {
        asm!(
            "tilestored [{cp} + {line} * 1], tmm0",
            "tilestored [{cp} + {line} * 1 + 1024], tmm1",
            "tilestored [{cp} + {line} * 1 + 2048], tmm2",
            "tilestored [{cp} + {line} * 1 + 3072], tmm3",
            cp = in(reg) $cp,
            line = in(reg) 64usize,
            options(nostack),
        )
    };
}

/// Q4_K, the same contract as [`super::x86_packed::q4k`], for up to [`TOKENS`] tokens.
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
    assert!(n <= TOKENS, "{n} tokens in one AMX call");
    // Whole 16-token groups; the rest to AVX-512.
    let whole = n / 16 * 16;
    if whole < n {
        k512::q4k(
            recs,
            acts,
            tokens,
            t0 + whole,
            &mut acc[whole..],
            &mut isum[whole..],
        );
    }
    if whole == 0 {
        return;
    }
    let acc = &mut acc[..whole];
    let groups = whole / 16;
    let m4 = _mm512_set1_epi8(0x0F);
    let m16 = _mm512_set1_epi16(0x0F);
    let stride = std::mem::size_of::<BlockQ8K>();
    // B for chunk c: lines 16c..16c + 16 of the low-scale half, then 64 + 16c.. of the high.
    let mut b_tiles = Lines::<128>([[0; 64]; 128]);
    // Each group's two result tiles (16 tokens × 16 rows of i32, 1 KiB each), side by side.
    let mut c_tiles = Lines::<{ 2 * TOKENS }>([[0; 64]; 2 * TOKENS]);
    configure();
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(RB).enumerate() {
        let rec = rec.as_ptr();
        k512::prefetch_ahead(rec, RB);
        let tile = &acts[b * tokens + t0..b * tokens + t0 + whole];
        let bt = b_tiles.0.as_mut_ptr().cast::<u8>();
        for c in 0..4 {
            // Row r's scale in both bytes of its two 16-bit lanes.
            let scale16 = |j: usize| {
                let s = _mm512_cvtepu8_epi32(_mm_loadu_si128(rec.add(64 + 16 * j).cast()));
                _mm512_or_si512(s, _mm512_slli_epi32(s, 16))
            };
            let (sl, sh) = (scale16(2 * c), scale16(2 * c + 1));
            let (sl1, sl2) = (_mm512_and_si512(sl, m16), _mm512_srli_epi16(sl, 4));
            let (sh1, sh2) = (_mm512_and_si512(sh, m16), _mm512_srli_epi16(sh, 4));
            for q in 0..8 {
                let v = _mm512_loadu_si512(rec.add(320 + 64 * (8 * c + q)).cast());
                let lo = _mm512_and_si512(v, m4);
                let hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                // Two nibbles of one row per 16-bit lane, times a scale part under 16: each
                // byte's product stays under 256, so no carry crosses into the next byte.
                let line = |half: usize, l: usize| bt.add(64 * (64 * half + 16 * c + l));
                _mm512_store_si512(line(0, q).cast(), _mm512_mullo_epi16(lo, sl1));
                _mm512_store_si512(line(1, q).cast(), _mm512_mullo_epi16(lo, sl2));
                _mm512_store_si512(line(0, 8 + q).cast(), _mm512_mullo_epi16(hi, sh1));
                _mm512_store_si512(line(1, 8 + q).cast(), _mm512_mullo_epi16(hi, sh2));
            }
        }
        let bt = b_tiles.0.as_ptr().cast::<u8>();
        let (b1, b2) = (
            |c: usize| bt.add(1024 * c),
            |c: usize| bt.add(4096 + 1024 * c),
        );
        let ct = c_tiles.0.as_mut_ptr().cast::<u8>();
        // Every group's tile products first, then the vector work reads their results: a
        // load right after a tile store of the same lines waits for the store.
        let mut g = 0;
        while g + 2 <= groups {
            let (a0, a1) = (tile[16 * g].qs.as_ptr(), tile[16 * g + 16].qs.as_ptr());
            zero_results!();
            for c in 0..4 {
                chunk_pair!(b1(c), b2(c), a0.add(64 * c), a1.add(64 * c), stride);
            }
            store_results!(ct.add(2048 * g), 4);
            g += 2;
        }
        if g < groups {
            let a0 = tile[16 * g].qs.as_ptr();
            zero_results!();
            for c in 0..4 {
                chunk_one!(b1(c), b2(c), a0.add(64 * c), stride);
            }
            store_results!(ct.add(2048 * g), 2);
        }
        // isum = C1 + 16 · C2, read straight from the stored result tiles.
        let isum_at = |t: usize| {
            let cg = ct.add(2048 * (t / 16) + 64 * (t % 16));
            let c1 = _mm512_load_si512(cg.cast());
            let c2 = _mm512_load_si512(cg.add(1024).cast());
            _mm512_add_epi32(c1, _mm512_slli_epi32(c2, 4))
        };
        k512::q4k_combine_with(rec, tile, isum_at, acc);
    }
}

/// One Q6_K chunk of 64 values for 16 tokens: the A tile from `$a` at stride `$st`, and the
/// four B tiles from `$b`, 4 KiB apart (products T1..T4 of the module), into
/// tmm0..3; the last two products have signed weights.
macro_rules! chunk_q6 {
    ($b:expr, $a:expr, $st:expr) => {
        asm!(
            "tileloadd tmm4, [{a} + {st} * 1]",
            "tileloadd tmm5, [{b} + {line} * 1]",
            "tdpbsud tmm0, tmm4, tmm5",
            "tileloadd tmm6, [{b} + {line} * 1 + 4096]",
            "tdpbsud tmm1, tmm4, tmm6",
            "tileloadd tmm7, [{b} + {line} * 1 + 8192]",
            "tdpbssd tmm2, tmm4, tmm7",
            "tileloadd tmm5, [{b} + {line} * 1 + 12288]",
            "tdpbssd tmm3, tmm4, tmm5",
            a = in(reg) $a,
            b = in(reg) $b,
            st = in(reg) $st,
            line = in(reg) 64usize,
            options(nostack, readonly),
        )
    };
}

/// Q6_K, the same contract as [`super::x86_packed::q6k`], for up to [`TOKENS`] tokens.
///
/// # Safety
/// See the module; `recs` holds whole Q6_K records.
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
    assert!(n <= TOKENS, "{n} tokens in one AMX call");
    let whole = n / 16 * 16;
    if whole < n {
        k512::q6k(
            recs,
            acts,
            tokens,
            t0 + whole,
            &mut acc[whole..],
            &mut isum[whole..],
        );
    }
    if whole == 0 {
        return;
    }
    let acc = &mut acc[..whole];
    let m4 = _mm512_set1_epi8(0x0F);
    let m2 = _mm512_set1_epi8(3);
    let m16 = _mm512_set1_epi32(0x0F);
    let stride = std::mem::size_of::<BlockQ8K>();
    // Product p's B for chunk m: lines 64p + 16m..64p + 16m + 16.
    let mut b_tiles = Lines::<256>([[0; 64]; 256]);
    // Two slots of a group's four result tiles.
    let mut c_tiles = Lines::<128>([[0; 64]; 128]);
    configure();
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(RB).enumerate() {
        let rec = rec.as_ptr();
        k512::prefetch_ahead(rec, RB);
        let tile = &acts[b * tokens + t0..b * tokens + t0 + whole];
        let bt = b_tiles.0.as_mut_ptr().cast::<u8>();
        for sub in 0..16 {
            // Sub-block `sub` is rows 4(sub % 4)..+4 of chunk m = sub / 4. Its scale in
            // the low byte of both 16-bit lanes of each row's lane: the low nibble, and the
            // high part (arithmetic) plus 8, both under 16.
            let s = _mm512_cvtepi8_epi32(_mm_loadu_si128(rec.add(32 + 16 * sub).cast()));
            let (lo, hi) = (
                _mm512_and_si512(s, m16),
                _mm512_add_epi32(_mm512_srai_epi32(s, 4), _mm512_set1_epi32(8)),
            );
            let (sl, sh) = (
                _mm512_or_si512(lo, _mm512_slli_epi32(lo, 16)),
                _mm512_or_si512(hi, _mm512_slli_epi32(hi, 16)),
            );
            let (m, h, nib) = (sub / 4, sub / 8, (sub / 4) % 2);
            for r in 4 * (sub % 4)..4 * (sub % 4) + 4 {
                let (kk, i) = (r / 8, r % 8);
                let l = _mm512_loadu_si512(rec.add(q6k_low(h, kk, i)).cast());
                let qh = _mm512_loadu_si512(rec.add(q6k_high(h, i)).cast());
                let shift = _mm_cvtsi32_si128((2 * kk + 4 * nib) as i32);
                let q_lo = if nib == 0 {
                    _mm512_and_si512(l, m4)
                } else {
                    _mm512_and_si512(_mm512_srli_epi16(l, 4), m4)
                };
                let q_hi = _mm512_and_si512(_mm512_srl_epi16(qh, shift), m2);
                // Bytes under 16 times scale parts under 16, two bytes per 16-bit lane:
                // no product reaches 256, so none carries into its neighbour. The signed
                // parts are the unsigned products less 8 × the value, byte by byte.
                let line = |p: usize| bt.add(64 * (64 * p + 16 * m + r));
                _mm512_store_si512(line(0).cast(), _mm512_mullo_epi16(q_lo, sl));
                _mm512_store_si512(line(1).cast(), _mm512_mullo_epi16(q_hi, sl));
                let t3 = _mm512_sub_epi8(_mm512_mullo_epi16(q_lo, sh), _mm512_slli_epi16(q_lo, 3));
                let t4 = _mm512_sub_epi8(_mm512_mullo_epi16(q_hi, sh), _mm512_slli_epi16(q_hi, 3));
                _mm512_store_si512(line(2).cast(), t3);
                _mm512_store_si512(line(3).cast(), t4);
            }
        }
        let bt = b_tiles.0.as_ptr().cast::<u8>();
        let ct = c_tiles.0.as_mut_ptr().cast::<u8>();
        // isum = C1 + 16 · (C2 + C3) + 256 · C4, from the results of slot `g % 2`.
        let combine = |g: usize, acc: &mut [[f32; 16]]| {
            let cs = ct.add(4096 * (g % 2));
            let isum_at = |t: usize| {
                let c = [0, 1024, 2048, 3072].map(|o| _mm512_load_si512(cs.add(o + 64 * t).cast()));
                _mm512_add_epi32(
                    _mm512_add_epi32(c[0], _mm512_slli_epi32(_mm512_add_epi32(c[1], c[2]), 4)),
                    _mm512_slli_epi32(c[3], 8),
                )
            };
            k512::q6k_combine_with(rec, &tile[16 * g..16 * g + 16], isum_at, acc);
        };
        // Each group's products, then the float step of the group before (a load right
        // after a tile store of the same lines would wait for the store); two slots of
        // results keep B, results and accumulators within L1.
        let groups = whole / 16;
        for g in 0..groups {
            let a = tile[16 * g].qs.as_ptr();
            zero_results!();
            for m in 0..4 {
                chunk_q6!(bt.add(1024 * m), a.add(64 * m), stride);
            }
            store_results!(ct.add(4096 * (g % 2)), 4);
            if g > 0 {
                combine(g - 1, &mut acc[16 * (g - 1)..16 * g]);
            }
        }
        combine(groups - 1, &mut acc[16 * (groups - 1)..]);
    }
}

/// Loads the tile configuration once per thread: nothing else in the process configures
/// tiles, and the kernel saves and restores it with the thread.
///
/// # Safety
/// See the module.
#[inline(always)]
unsafe fn configure() {
    thread_local! {
        static CONFIGURED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !CONFIGURED.get() {
        asm!("ldtilecfg [{}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly));
        CONFIGURED.set(true);
    }
}
