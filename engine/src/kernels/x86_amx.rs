//! AMX int8 tiles for Q4_K prefill on the interleaved layout ([`super::packed`]).
//!
//! A record's quant lines are already a tile's B operand: line `q` of chunk `c` holds, for
//! each of 16 rows, four bytes whose low nibbles are values `4q..4q + 4` of sub-block `2c` and
//! whose high nibbles are the same values of sub-block `2c + 1`. Masked (or shifted) into a
//! buffer, 8 lines are sub-block `j`'s B tile (8 rows × 16 weight rows × 4 bytes), and 16
//! tokens' 32 activation bytes of that sub-block, read in place at the activations' stride,
//! are its A tile. One `tdpbssd` gives the 16 × 16 exact integer dot products of the
//! sub-block; scaled by the 6-bit sub-block scales and added (integers, exact in any order)
//! they are the `isum` the AVX-512 kernel forms, and the float combination is that kernel's
//! own code ([`super::x86_packed::q4k_combine`]): the scalar oracle's bits.
//!
//! Tokens beyond the last whole 16 of a tile go to the AVX-512 kernel.
//!
//! # Safety
//! The CPU must have AVX-512 F, BW, VNNI and AMX-TILE/INT8, and the process must hold the tile
//! data permission ([`tiles_granted`]); `recs` must hold whole Q4_K records.

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

/// Palette 1: tmm0..3 are 16 × 16 i32 results, tmm4/5 16 tokens × 32 activation bytes, tmm6/7
/// 8 rows of 16 weight rows × 4 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const fn tile_config() -> TileConfig {
    let mut c = [0u8; 64];
    c[0] = 1;
    let mut t = 0;
    while t < 8 {
        let (rows, colsb) = match t {
            0..=3 => (16u8, 64u16),
            4 | 5 => (16, 32),
            _ => (8, 64),
        };
        c[16 + 2 * t] = colsb as u8;
        c[17 + 2 * t] = (colsb >> 8) as u8;
        c[48 + t] = rows;
        t += 1;
    }
    TileConfig(c)
}

static CONFIG: TileConfig = tile_config();

#[repr(C, align(64))]
struct Lines<const N: usize>([[u8; 64]; N]);

/// Sub-block `$j`'s products into `$cp` (16 tokens × 16 rows of i32): result tile `$c`, A
/// tile `$a` from `$ap` at stride `$st`, B tile `$b` from `$bp`.
macro_rules! sub_block {
    ($c:literal, $a:literal, $b:literal, $ap:expr, $st:expr, $bp:expr, $cp:expr) => {
        asm!(
            concat!("tilezero tmm", $c),
            concat!("tileloadd tmm", $a, ", [{ap} + {st} * 1]"),
            concat!("tileloadd tmm", $b, ", [{bp} + {line} * 1]"),
            concat!("tdpbssd tmm", $c, ", tmm", $a, ", tmm", $b),
            concat!("tilestored [{cp} + {line} * 1], tmm", $c),
            ap = in(reg) $ap,
            st = in(reg) $st,
            bp = in(reg) $bp,
            cp = in(reg) $cp,
            line = in(reg) 64usize,
            options(nostack),
        )
    };
}

/// Q4_K, the same contract as [`super::x86_packed::q4k`].
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
    // Whole 16-token groups, at most two (the result buffer's size); the rest to AVX-512.
    let whole = n.min(32) / 16 * 16;
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
    let (acc, isum) = (&mut acc[..whole], &mut isum[..whole]);
    let m4 = _mm512_set1_epi8(0x0F);
    let stride = std::mem::size_of::<BlockQ8K>();
    let mut b_tiles = Lines::<64>([[0; 64]; 64]);
    // Results of up to two 16-token groups (a 32-token tile), 8 sub-blocks each.
    let mut c_tiles = Lines::<256>([[0; 64]; 256]);
    configure();
    acc.fill([0.0; 16]);
    for (b, rec) in recs.chunks_exact(RB).enumerate() {
        let rec = rec.as_ptr();
        k512::prefetch_ahead(rec, RB);
        let tile = &acts[b * tokens + t0..b * tokens + t0 + whole];
        // Sub-block j's B tile is lines 8j..8j + 8.
        for c in 0..4 {
            for q in 0..8 {
                let v = _mm512_loadu_si512(rec.add(320 + 64 * (8 * c + q)).cast());
                let lo = b_tiles.0[16 * c + q].as_mut_ptr();
                let hi = b_tiles.0[16 * c + 8 + q].as_mut_ptr();
                _mm512_store_si512(lo.cast(), _mm512_and_si512(v, m4));
                _mm512_store_si512(hi.cast(), _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
            }
        }
        let scales: [__m512i; 8] = simd_array!(_mm512_setzero_si512(); 8, |j| {
            _mm512_cvtepu8_epi32(_mm_loadu_si128(rec.add(64 + 16 * j).cast()))
        });
        let (bt, ct) = (
            b_tiles.0.as_ptr().cast::<u8>(),
            c_tiles.0.as_mut_ptr().cast::<u8>(),
        );
        let bp = |j: usize| bt.add(512 * j);
        let cp = |g: usize, j: usize| ct.add(8192 * g + 1024 * j);
        // Every group's tile products first, then the vector work reads their results: a
        // load right after a tile store of the same lines waits for the store.
        for g in 0..whole / 16 {
            let a = tile[16 * g].qs.as_ptr();
            sub_block!(0, 4, 6, a, stride, bp(0), cp(g, 0));
            sub_block!(1, 5, 7, a.add(32), stride, bp(1), cp(g, 1));
            sub_block!(2, 4, 6, a.add(64), stride, bp(2), cp(g, 2));
            sub_block!(3, 5, 7, a.add(96), stride, bp(3), cp(g, 3));
            sub_block!(0, 4, 6, a.add(128), stride, bp(4), cp(g, 4));
            sub_block!(1, 5, 7, a.add(160), stride, bp(5), cp(g, 5));
            sub_block!(2, 4, 6, a.add(192), stride, bp(6), cp(g, 6));
            sub_block!(3, 5, 7, a.add(224), stride, bp(7), cp(g, 7));
        }
        for (g, isum) in isum.chunks_exact_mut(16).enumerate() {
            for (t, s) in isum.iter_mut().enumerate() {
                let mut v = _mm512_setzero_si512();
                for (j, sc) in scales.iter().enumerate() {
                    let d = _mm512_load_si512(cp(g, j).add(64 * t).cast());
                    v = _mm512_add_epi32(v, _mm512_mullo_epi32(d, *sc));
                }
                _mm512_storeu_si512(s.as_mut_ptr().cast(), v);
            }
        }
        k512::q4k_combine(rec, tile, isum, acc);
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
