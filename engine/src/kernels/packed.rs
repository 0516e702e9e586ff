//! The SIMD paths' weight layout (AVX-512 VNNI, and AVX2 in two halves of 8 rows:
//! [`super::x86_packed_avx2`]), and its matmul.
//!
//! GGUF stores a matrix row by row, so a SIMD dot product runs along one row and must add its
//! lanes together at every block. Here the weights of 16 rows are interleaved instead: one
//! 512-bit register holds the same four weight bytes of 16 rows, and one VNNI instruction
//! multiplies them by four activation bytes of one token (broadcast), adding into 16 lanes,
//! one per row. No lane is ever added to another: each lane ends with its row's exact integer
//! sums. A block of 16 rows is unpacked into registers once and used for every token of a tile
//! (prefill reads each weight once per 32 tokens).
//!
//! A *record* is one block position of 16 rows (rows past the matrix are zero), laid out as
//! follows (all offsets in bytes; `[a][r]` means 16 entries of `r` for each `a`; f16 scales
//! are widened to f32, which is exact):
//!
//! | type | record |
//! |------|--------|
//! | Q4_K | `d` f16\[16\], `dmin` f16\[16\], scales u8\[8\]\[16\], mins u8\[8\]\[16\], quant dwords\[32\]\[16\]: 2368 |
//! | Q6_K | `d` f16\[16\], scales i8\[16\]\[16\], then for each of 16 positions `8·half + i`: low-bit dwords `16·half + i` and `16·half + 8 + i`, high-bit dword `8·half + i` (each \[16\]): 3360 |
//! | Q4_0 | `d` f16\[16\], quant dwords\[4\]\[16\]: 288 |
//! | Q4_1 | `d` f16\[16\], `m` f16\[16\], quant dwords\[4\]\[16\]: 320 |
//! | Q8_0 | `d` f16\[16\], quant dwords\[8\]\[16\] with 128 added (unsigned): 544 |
//!
//! Scales stay f16 (widened in the kernel, exactly) and Q4_K's 6-bit scales and mins take a
//! byte each, so a record is as large as the 16 GGUF blocks it holds (Q4_K: 3% larger), and
//! decode, which streams every record once per token, reads no more than GGUF's bytes.
//!
//! Q6_K's lines are in the order its kernels use them: the two low-bit lines and the one
//! high-bit line that make up 64 six-bit values of four sub-blocks sit side by side, so a
//! decode step reads each record front to back, one stream. Kept apart as GGUF keeps them,
//! the two regions were two streams that the hardware prefetchers of an AMD EPYC (Zen 4)
//! did not follow: 9.7 GB/s on one core, against 23-27 GB/s in this order.
//!
//! The quant dwords are GGUF's own bytes, four at a time, so nibbles and bit planes keep their
//! places and the kernels split them as the row kernels do. The block's float contribution is
//! the oracle's `combine_*` expression, lane by lane (IEEE multiplications and subtractions,
//! never fused), and blocks are added in order: every output has the scalar oracle's bits.

use super::quant::{BlockQ8, BlockQ8K};
use super::scalar::scale_min_k4;
use super::{check_shapes, Isa, WType};

/// Rows per record.
pub const GROUP: usize = 16;
/// Tokens whose activations are used against one unpacked record before the next record.
const TILE: usize = 32;
/// Groups of rows per task handed to the pool (fixed, so bits never depend on the pool).
const GROUPS_PER_TASK: usize = 2;

#[repr(C, align(64))]
struct Line([u8; 64]);

/// A matrix in the interleaved layout.
pub struct Packed {
    isa: Isa,
    t: WType,
    rows: usize,
    k: usize,
    /// The records, in anonymous memory asked for in 2 MiB pages ([`huge_zeroed`]).
    data: memmap2::MmapMut,
}

/// `len` zeroed bytes of anonymous memory, page-aligned, with the kernel asked to back them
/// with transparent huge pages (`MADV_HUGEPAGE`, before the first write): a decode step
/// streams every packed weight once, and in 4 KiB pages that is a TLB miss every 4 KiB.
/// Where the kernel gives none (THP off), the memory is plain pages, with the same bytes.
fn huge_zeroed(len: usize) -> Result<memmap2::MmapMut, String> {
    let map = memmap2::MmapMut::map_anon(len.max(1))
        .map_err(|e| format!("cannot allocate {len} bytes for a packed matrix: {e}"))?;
    #[cfg(target_os = "linux")]
    {
        // Only a hint; an error (an old kernel, THP compiled out) leaves plain pages.
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    Ok(map)
}

/// Byte offset in a Q6_K record of low-bit line `16·half + 8·kk + i` (GGUF's dwords of the
/// 128 low-bit bytes, four at a time, 16 rows to a line), for `half`, `kk` < 2 and `i` < 8.
pub(super) const fn q6k_low(half: usize, kk: usize, i: usize) -> usize {
    288 + 192 * (8 * half + i) + 64 * kk
}

/// Byte offset in a Q6_K record of high-bit line `8·half + i` (of the 64 high-bit bytes).
pub(super) const fn q6k_high(half: usize, i: usize) -> usize {
    288 + 192 * (8 * half + i) + 128
}

/// Bytes of one record.
pub const fn record_bytes(t: WType) -> usize {
    match t {
        WType::Q4_0 => 288,
        WType::Q4_1 => 320,
        WType::Q8_0 => 544,
        WType::Q4K => 2368,
        WType::Q6K => 3360,
    }
}

/// Writes row `i`'s GGUF block `b` into a record.
fn pack_block(t: WType, rec: &mut [u8], i: usize, b: &[u8]) {
    // A dword at a time (a byte at a time, this was most of a model's load): dword `d` of
    // the source goes to line `d` of the region, in row `i`'s four bytes.
    let dwords_at = |rec: &mut [u8], at: &dyn Fn(usize) -> usize, src: &[u8], xor: u32| {
        for (d, q) in src.chunks_exact(4).enumerate() {
            let v = u32::from_ne_bytes([q[0], q[1], q[2], q[3]]) ^ xor;
            let o = at(d) + 4 * i;
            rec[o..o + 4].copy_from_slice(&v.to_ne_bytes());
        }
    };
    let dwords = |rec: &mut [u8], base: usize, src: &[u8], xor: u32| {
        dwords_at(rec, &|d| base + 64 * d, src, xor);
    };
    match t {
        WType::Q4K => {
            rec[2 * i..2 * i + 2].copy_from_slice(&b[0..2]);
            rec[32 + 2 * i..32 + 2 * i + 2].copy_from_slice(&b[2..4]);
            for j in 0..8 {
                let (sc, m) = scale_min_k4(j, &b[4..16]);
                rec[64 + 16 * j + i] = sc as u8;
                rec[192 + 16 * j + i] = m as u8;
            }
            dwords(rec, 320, &b[16..144], 0);
        }
        WType::Q6K => {
            rec[2 * i..2 * i + 2].copy_from_slice(&b[208..210]);
            for sb in 0..16 {
                rec[32 + 16 * sb + i] = b[192 + sb];
            }
            dwords_at(rec, &|d| q6k_low(d / 16, d / 8 % 2, d % 8), &b[0..128], 0);
            dwords_at(rec, &|d| q6k_high(d / 8, d % 8), &b[128..192], 0);
        }
        WType::Q4_0 => {
            rec[2 * i..2 * i + 2].copy_from_slice(&b[0..2]);
            dwords(rec, 32, &b[2..18], 0);
        }
        WType::Q4_1 => {
            rec[2 * i..2 * i + 2].copy_from_slice(&b[0..2]);
            rec[32 + 2 * i..32 + 2 * i + 2].copy_from_slice(&b[2..4]);
            dwords(rec, 64, &b[4..20], 0);
        }
        WType::Q8_0 => {
            rec[2 * i..2 * i + 2].copy_from_slice(&b[0..2]);
            dwords(rec, 32, &b[2..34], 0x8080_8080);
        }
    }
}

/// Reads row `i`'s GGUF block back out of a record: the inverse of [`pack_block`], byte for
/// byte (Q4_K's twelve bytes of 6-bit scales and mins are packed again the way GGUF packs them,
/// which uses all 96 bits, so every block comes back as it was).
fn unpack_block(t: WType, rec: &[u8], i: usize, b: &mut [u8]) {
    let dwords_at = |rec: &[u8], at: &dyn Fn(usize) -> usize, dst: &mut [u8], xor: u8| {
        for (d, q) in dst.chunks_exact_mut(4).enumerate() {
            for (e, v) in q.iter_mut().enumerate() {
                *v = rec[at(d) + 4 * i + e] ^ xor;
            }
        }
    };
    let dwords = |rec: &[u8], base: usize, dst: &mut [u8], xor: u8| {
        dwords_at(rec, &|d| base + 64 * d, dst, xor);
    };
    match t {
        WType::Q4K => {
            b[0..2].copy_from_slice(&rec[2 * i..2 * i + 2]);
            b[2..4].copy_from_slice(&rec[32 + 2 * i..32 + 2 * i + 2]);
            let (sc, m) = (
                |j: usize| rec[64 + 16 * j + i],
                |j: usize| rec[192 + 16 * j + i],
            );
            let q = &mut b[4..16];
            for j in 0..4 {
                q[j] = sc(j) | ((sc(j + 4) >> 4) << 6);
                q[j + 4] = m(j) | ((m(j + 4) >> 4) << 6);
                q[j + 8] = (sc(j + 4) & 0xF) | ((m(j + 4) & 0xF) << 4);
            }
            dwords(rec, 320, &mut b[16..144], 0);
        }
        WType::Q6K => {
            b[208..210].copy_from_slice(&rec[2 * i..2 * i + 2]);
            for sb in 0..16 {
                b[192 + sb] = rec[32 + 16 * sb + i];
            }
            dwords_at(
                rec,
                &|d| q6k_low(d / 16, d / 8 % 2, d % 8),
                &mut b[0..128],
                0,
            );
            dwords_at(rec, &|d| q6k_high(d / 8, d % 8), &mut b[128..192], 0);
        }
        WType::Q4_0 => {
            b[0..2].copy_from_slice(&rec[2 * i..2 * i + 2]);
            dwords(rec, 32, &mut b[2..18], 0);
        }
        WType::Q4_1 => {
            b[0..2].copy_from_slice(&rec[2 * i..2 * i + 2]);
            b[2..4].copy_from_slice(&rec[32 + 2 * i..32 + 2 * i + 2]);
            dwords(rec, 64, &mut b[4..20], 0);
        }
        WType::Q8_0 => {
            b[0..2].copy_from_slice(&rec[2 * i..2 * i + 2]);
            dwords(rec, 32, &mut b[2..34], 0x80);
        }
    }
}

impl Packed {
    /// Interleaves `rows` GGUF rows of `k` values of type `t` (`w` holds them back to back),
    /// on `pool`, for the kernels of `isa`.
    ///
    /// # Errors
    /// A message when the shapes do not fit the type, or when `isa` has no kernels for this
    /// layout or this CPU lacks it.
    pub fn new(
        pool: &rayon::ThreadPool,
        isa: Isa,
        t: WType,
        w: &[u8],
        rows: usize,
        k: usize,
    ) -> Result<Packed, String> {
        Self::new_releasing(pool, isa, t, w, rows, k, |_| {})
    }

    /// [`Packed::new`], calling `release` with each byte range of `w` once it has been
    /// packed (1024 rows at a time), so a caller can let go of mapped pages as it goes: the
    /// source and its copy are never both held whole.
    ///
    /// # Errors
    /// As [`Packed::new`].
    pub fn new_releasing(
        pool: &rayon::ThreadPool,
        isa: Isa,
        t: WType,
        w: &[u8],
        rows: usize,
        k: usize,
        mut release: impl FnMut(std::ops::Range<usize>),
    ) -> Result<Packed, String> {
        use rayon::prelude::*;
        const SLICE_GROUPS: usize = 64;
        if !isa.packs() {
            return Err(format!(
                "the {isa:?} path has no kernels for the interleaved layout"
            ));
        }
        if !Isa::available().contains(&isa) {
            return Err(format!("this CPU lacks the {isa:?} path"));
        }
        let row_bytes = check_shapes(t, w, rows, k, &[])?;
        let (nb, bb, rb) = (k / t.block_len(), t.block_bytes(), record_bytes(t));
        let groups = rows.div_ceil(GROUP);
        let lines_per_group = (nb * rb).div_ceil(64);
        let mut map = huge_zeroed(groups * lines_per_group * 64)?;
        // SAFETY: the map is page-aligned (more than Line's 64), zero-filled, at least this
        // many Lines long, and only reached through this slice until it is moved below.
        let data = unsafe {
            std::slice::from_raw_parts_mut(
                map.as_mut_ptr().cast::<Line>(),
                groups * lines_per_group,
            )
        };
        for (slice, lines) in data.chunks_mut(lines_per_group * SLICE_GROUPS).enumerate() {
            let g0 = slice * SLICE_GROUPS;
            pool.install(|| {
                lines
                    .par_chunks_mut(lines_per_group)
                    .enumerate()
                    .for_each(|(gi, lines)| {
                        let g = g0 + gi;
                        // SAFETY: Line is 64 plain bytes with no padding; the slice covers
                        // exactly the group's lines.
                        let bytes = unsafe {
                            std::slice::from_raw_parts_mut(
                                lines.as_mut_ptr().cast::<u8>(),
                                lines.len() * 64,
                            )
                        };
                        for (b, rec) in bytes[..nb * rb].chunks_exact_mut(rb).enumerate() {
                            for i in 0..GROUP.min(rows - g * GROUP) {
                                let at = (g * GROUP + i) * row_bytes + b * bb;
                                pack_block(t, rec, i, &w[at..at + bb]);
                            }
                        }
                    });
            });
            let (r0, r1) = (g0 * GROUP, ((g0 + SLICE_GROUPS) * GROUP).min(rows));
            release(r0 * row_bytes..r1 * row_bytes);
        }
        Ok(Packed {
            isa,
            t,
            rows,
            k,
            data: map,
        })
    }

    /// The weight type.
    pub fn wtype(&self) -> WType {
        self.t
    }

    /// Rows and columns.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.k)
    }

    /// Row `r` in GGUF's own layout, the bytes it was packed from, or `None` past the last
    /// row. A tied embedding is looked up here, so the mapped copy of its matrix is not read
    /// again (and not paged back in) once it is packed.
    pub fn row(&self, r: usize) -> Option<Vec<u8>> {
        if r >= self.rows {
            return None;
        }
        let (rb, bb) = (record_bytes(self.t), self.t.block_bytes());
        let nb = self.k / self.t.block_len();
        let mut out = vec![0u8; nb * bb];
        let recs = self.group(r / GROUP);
        for (rec, b) in recs.chunks_exact(rb).zip(out.chunks_exact_mut(bb)) {
            unpack_block(self.t, rec, r % GROUP, b);
        }
        Some(out)
    }

    /// Group `g`'s records (each group starts on a 64-byte line).
    fn group(&self, g: usize) -> &[u8] {
        let len = self.k / self.t.block_len() * record_bytes(self.t);
        let stride = len.div_ceil(64) * 64;
        // SAFETY: as in `new`; the range lies inside `data`.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast::<u8>().add(g * stride), len) }
    }
}

/// Activations in block-major order: block `b` of token `t` at `b * tokens + t`.
enum ByBlock {
    Q8(Vec<BlockQ8>),
    Q8K(Vec<BlockQ8K>),
}

/// Tokens whose activations meet one record before the next: [`TILE`], or for AMX's Q4_K
/// a whole prefill chunk, so each record's scaled B tiles are made once for more tokens.
fn tile_tokens(p: &Packed) -> usize {
    #[cfg(target_arch = "x86_64")]
    if p.isa == Isa::Amx && matches!(p.t, WType::Q4K | WType::Q6K) {
        return super::x86_amx::TOKENS;
    }
    TILE
}

/// Below this many tokens the elementwise work stays on the calling thread: waking the pool
/// costs more than it saves (at decode it halved SmolLM2's tokens/s).
const PARALLEL_TOKENS: usize = 8;

/// Quantizes each token's row (on the pool for a batch), then orders the blocks block-major.
fn by_block<B: Copy + Send + Sync>(
    pool: &rayon::ThreadPool,
    x: &[f32],
    k: usize,
    quantize: fn(&[f32]) -> Vec<B>,
) -> Vec<B> {
    use rayon::prelude::*;
    if x.len() / k < PARALLEL_TOKENS {
        let rows: Vec<Vec<B>> = x.chunks_exact(k).map(quantize).collect();
        let (tokens, nb) = (rows.len(), rows.first().map_or(0, Vec::len));
        return (0..nb * tokens)
            .map(|i| rows[i % tokens][i / tokens])
            .collect();
    }
    pool.install(|| {
        let rows: Vec<Vec<B>> = x.par_chunks_exact(k).map(quantize).collect();
        let (tokens, nb) = (rows.len(), rows.first().map_or(0, Vec::len));
        (0..nb * tokens)
            .into_par_iter()
            .map(|i| rows[i % tokens][i / tokens])
            .collect()
    })
}

/// `out[token][row] = W[row] · x[token]` for a packed matrix, on `pool`: the same bits as
/// [`super::matmul_pool`] with the scalar oracle on the GGUF rows, at any pool size.
///
/// # Errors
/// A message when `x` is not whole rows of `k` values.
pub fn matmul_packed(pool: &rayon::ThreadPool, p: &Packed, x: &[f32]) -> Result<Vec<f32>, String> {
    Ok(matmul_packed_many(pool, &[p], x)?.remove(0))
}

/// [`matmul_packed`] for several matrices of the same input (Q, K and V; gate and up): the
/// activations are quantized once and every matrix's tasks share one parallel loop, so the
/// pool is woken once (at decode, a call's work is short enough for that to count).
///
/// # Errors
/// A message when `ps` is empty, its matrices differ in `k` or in activation block size,
/// or `x` is not whole rows of `k` values.
pub fn matmul_packed_many(
    pool: &rayon::ThreadPool,
    ps: &[&Packed],
    x: &[f32],
) -> Result<Vec<Vec<f32>>, String> {
    use rayon::prelude::*;
    let first = ps.first().ok_or("no matrices")?;
    let (k, kq) = (first.k, first.t.k_quant());
    if ps.iter().any(|p| p.k != k || p.t.k_quant() != kq) {
        return Err("matrices of one input must share k and activation blocks".into());
    }
    if !x.len().is_multiple_of(k) {
        return Err(format!(
            "activations of {} values are not rows of {k}",
            x.len()
        ));
    }
    let tokens = x.len() / k;
    if tokens == 0 {
        return Ok(vec![Vec::new(); ps.len()]);
    }
    let acts = if kq {
        ByBlock::Q8K(by_block(pool, x, k, super::quant::quantize_q8k))
    } else {
        ByBlock::Q8(by_block(pool, x, k, super::quant::quantize_q8))
    };
    // Each task (a matrix and a run of its row groups) accumulates one tile of tokens at a
    // time in its own buffer, then writes those rows of those tokens into the output.
    let mut outs: Vec<Vec<f32>> = ps
        .iter()
        .map(|p| Vec::with_capacity(p.rows * tokens))
        .collect();
    let mut tasks: Vec<(&Packed, usize, OutPtr)> = Vec::new();
    for (p, out) in ps.iter().zip(outs.iter_mut()) {
        let ptr = OutPtr(out.as_mut_ptr());
        for task in 0..p.rows.div_ceil(GROUP).div_ceil(GROUPS_PER_TASK) {
            tasks.push((p, task, ptr));
        }
    }
    pool.install(|| {
        tasks.into_par_iter().for_each(|(p, task, out)| {
            let tile = tile_tokens(p).min(tokens);
            SCRATCH.with_borrow_mut(|(isum, acc)| {
                if acc.len() < tile {
                    isum.resize(tile, [0; GROUP]);
                    acc.resize(tile, [0.0; GROUP]);
                }
                let groups = p.rows.div_ceil(GROUP);
                for g in task * GROUPS_PER_TASK..groups.min((task + 1) * GROUPS_PER_TASK) {
                    let recs = p.group(g);
                    let (r0, width) = (g * GROUP, GROUP.min(p.rows - g * GROUP));
                    for t0 in (0..tokens).step_by(tile) {
                        let n = tile.min(tokens - t0);
                        let (acc, isum) = (&mut acc[..n], &mut isum[..n]);
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: a Packed exists only where `new` found its path on this CPU.
                        unsafe {
                            use super::{
                                x86_amx as amx, x86_packed as k512, x86_packed_avx2 as k2,
                            };
                            match (&acts, p.isa) {
                                (ByBlock::Q8K(a), Isa::Amx) if p.t == WType::Q4K => {
                                    amx::q4k(recs, a, tokens, t0, acc, isum);
                                }
                                (ByBlock::Q8K(a), Isa::Avx512Vnni | Isa::Amx)
                                    if p.t == WType::Q4K =>
                                {
                                    k512::q4k(recs, a, tokens, t0, acc, isum);
                                }
                                (ByBlock::Q8K(a), Isa::Amx) => {
                                    amx::q6k(recs, a, tokens, t0, acc, isum);
                                }
                                (ByBlock::Q8K(a), Isa::Avx512Vnni) => {
                                    k512::q6k(recs, a, tokens, t0, acc, isum);
                                }
                                (ByBlock::Q8(a), Isa::Avx512Vnni | Isa::Amx) => {
                                    k512::q32(p.t, recs, a, tokens, t0, acc);
                                }
                                (ByBlock::Q8K(a), _) if p.t == WType::Q4K => {
                                    k2::q4k(recs, a, tokens, t0, acc, isum);
                                }
                                (ByBlock::Q8K(a), _) => k2::q6k(recs, a, tokens, t0, acc, isum),
                                (ByBlock::Q8(a), _) => k2::q32(p.t, recs, a, tokens, t0, acc),
                            }
                        }
                        for (t, row) in acc.iter().enumerate() {
                            // SAFETY: `out` has room for `rows × tokens` values; this cell run
                            // (token t0 + t, rows r0..r0 + width) is this task's alone.
                            unsafe {
                                let dst = out.0.add((t0 + t) * p.rows + r0);
                                std::ptr::copy_nonoverlapping(row.as_ptr(), dst, width);
                            }
                        }
                    }
                }
            });
        });
    });
    for (p, out) in ps.iter().zip(outs.iter_mut()) {
        // SAFETY: the tasks above cover every row group of every matrix and every tile of
        // tokens, so each of the `rows × tokens` values has been written.
        unsafe { out.set_len(p.rows * tokens) };
    }
    Ok(outs)
}

thread_local! {
    /// Each thread's tile of integer sums and float accumulators, kept between tasks (at
    /// decode a token runs some 20,000 tasks on R1's shapes, and an allocation for each
    /// cost about 2% of the step). No task calls back into the matmul, so the borrow is never
    /// taken twice.
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// A tile's integer sums and float accumulators.
type Scratch = (Vec<[i32; GROUP]>, Vec<[f32; GROUP]>);

/// A matrix's output buffer, shared by its tasks, each writing its own cells.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the tasks write disjoint cells, and the buffer outlives the parallel loop.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}
