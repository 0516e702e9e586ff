//! Our forward pass for the llama/qwen2 family (a decoder-only transformer), on [`crate::kernels`]:
//! - weights memory-mapped (memmap2): on a SIMD path each matrix is copied once, at load, into
//!   an interleaved layout ([`Packed`]) and its pages of the map are given back to the kernel;
//!   the scalar path (the oracle) reads the matrices in place in their GGUF block layout. The
//!   token embedding stays quantized either way, and rows are dequantized on lookup;
//! - an f16 KV cache sized for the context but allocated zeroed, so that only the positions
//!   reached take memory, one per sequence ([`KvCache`]): the
//!   decoder keeps one for [`Decoder::forward`], and [`Decoder::forward_many`] runs several
//!   sequences through the same matrix products (a batched decode step reads each weight
//!   once for all of them);
//! - every float operation outside the kernels (norms, RoPE, attention, SwiGLU) in a fixed
//!   order on one thread per output (head or row), so logits are bit-identical at any thread
//!   count and on every SIMD path.
//!
//! RoPE follows the GGUF conventions: llama rotates adjacent pairs, qwen2 the two halves
//! (NEOX); qwen2 adds the Q/K/V biases.

use crate::hparams::{Arch, Hparams};
use crate::kernels::packed::{matmul_packed, matmul_packed_many, Packed};
use crate::kernels::{self, Isa, WType};
use crate::Error;
use candle_core::quantized::gguf_file::{Content, TensorInfo};
use candle_core::quantized::GgmlDType;
use half::f16;

/// A matrix in the mapped file, and its interleaved copy where the SIMD kernels run.
struct QMat {
    t: WType,
    off: usize,
    rows: usize,
    k: usize,
    packed: Option<Packed>,
}

impl QMat {
    fn row_bytes(&self) -> usize {
        self.k / self.t.block_len() * self.t.block_bytes()
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    wq: QMat,
    wk: QMat,
    wv: QMat,
    wo: QMat,
    bias: Option<[Vec<f32>; 3]>,
    ffn_norm: Vec<f32>,
    gate: QMat,
    up: QMat,
    down: QMat,
}

/// One sequence's keys and values, f16: `[layer][position][kv head × head_dim]`.
#[derive(Default)]
pub struct KvCache {
    k: CacheArray,
    v: CacheArray,
}

/// One array of a KV cache: f16 values in zeroed anonymous memory of its own (zero bits are
/// f16 zero). The kernel backs a page of it only when a position in it is first written, so
/// a sequence holds the positions it has reached, not the whole context. It is advised
/// `MADV_NOHUGEPAGE` before anything is written: the cache is layer-major, a token writes one
/// row in each layer's block, and on a host whose transparent huge pages are `always` that
/// first write would back a whole 2 MiB of every block (R1 at 4,096 positions: all of it).
#[derive(Default)]
struct CacheArray {
    map: Option<memmap2::MmapMut>,
    len: usize,
}

impl CacheArray {
    fn zeroed(len: usize) -> Result<Self, Error> {
        if len == 0 {
            return Ok(Self::default());
        }
        let bytes = len
            .checked_mul(size_of::<f16>())
            .ok_or_else(|| Error::Inference("a KV cache larger than memory".into()))?;
        let map = memmap2::MmapMut::map_anon(bytes).map_err(|e| {
            Error::Inference(format!("cannot allocate {bytes} bytes for a KV cache: {e}"))
        })?;
        #[cfg(target_os = "linux")]
        {
            // Advice only: a kernel that refuses it (THP compiled out) leaves plain pages.
            let _ = map.advise(memmap2::Advice::NoHugePage);
        }
        Ok(Self {
            map: Some(map),
            len,
        })
    }
}

impl std::ops::Deref for CacheArray {
    type Target = [f16];
    fn deref(&self) -> &[f16] {
        match &self.map {
            None => &[],
            // SAFETY: the map holds `len` f16 values (2 bytes each, page-aligned, any bits a
            // valid f16), and lives as long as `self`.
            Some(m) => unsafe { std::slice::from_raw_parts(m.as_ptr().cast::<f16>(), self.len) },
        }
    }
}

impl std::ops::DerefMut for CacheArray {
    fn deref_mut(&mut self) -> &mut [f16] {
        match &mut self.map {
            None => &mut [],
            // SAFETY: as in `deref`, borrowed mutably through `self`.
            Some(m) => unsafe {
                std::slice::from_raw_parts_mut(m.as_mut_ptr().cast::<f16>(), self.len)
            },
        }
    }
}

/// Tokens of one sequence fed at positions `pos..pos + tokens.len()`, with its cache.
pub struct Span<'a> {
    /// The sequence's cache, from [`Decoder::new_cache`].
    pub cache: &'a mut KvCache,
    /// Its tokens (at least one).
    pub tokens: &'a [u32],
    /// The position of the first of them.
    pub pos: usize,
}

/// The model and its KV cache.
pub struct Decoder {
    map: memmap2::Mmap,
    arch: Arch,
    n_embd: usize,
    n_head: usize,
    n_head_kv: usize,
    head_dim: usize,
    eps: f32,
    embd: QMat,
    /// The embedding is the output matrix (and is looked up in its packed copy, if any).
    tied: bool,
    output: QMat,
    output_norm: Vec<f32>,
    layers: Vec<Layer>,
    /// The cache [`Decoder::forward`] feeds.
    cache: KvCache,
    n_layer: usize,
    context: usize,
    /// cos and sin per position and frequency.
    rope: Vec<(f32, f32)>,
    isa: Isa,
    pool: rayon::ThreadPool,
}

fn wtype(g: GgmlDType) -> Option<WType> {
    match g {
        GgmlDType::Q4_0 => Some(WType::Q4_0),
        GgmlDType::Q4_1 => Some(WType::Q4_1),
        GgmlDType::Q8_0 => Some(WType::Q8_0),
        GgmlDType::Q4K => Some(WType::Q4K),
        GgmlDType::Q6K => Some(WType::Q6K),
        _ => None,
    }
}

/// Why our engine cannot run a model (its matrices use a type our kernels lack), if so.
pub fn unsupported(ct: &Content) -> Option<String> {
    ct.tensor_infos
        .iter()
        .filter(|(_, t)| t.shape.dims().len() == 2)
        .find(|(_, t)| wtype(t.ggml_dtype).is_none())
        .map(|(n, t)| format!("{n} is {:?}", t.ggml_dtype))
}

/// Reads tensors out of the mapped file by name, checking each against the file's length.
struct Tensors<'a> {
    ct: &'a Content,
    map: &'a [u8],
    base: usize,
}

impl Tensors<'_> {
    fn info(&self, name: &str) -> Result<&TensorInfo, Error> {
        self.ct
            .tensor_infos
            .get(name)
            .ok_or_else(|| Error::Model(format!("missing tensor {name}")))
    }

    /// A matrix, left in place in its GGUF block layout.
    fn mat(&self, name: &str) -> Result<QMat, Error> {
        let t = self.info(name)?;
        let dims = t.shape.dims();
        let wt = wtype(t.ggml_dtype)
            .ok_or_else(|| Error::Model(format!("{name}: type {:?}", t.ggml_dtype)))?;
        let (rows, k) = (dims[0], dims[1]);
        if k % wt.block_len() != 0 {
            return Err(Error::Model(format!(
                "{name}: {k} columns, blocks of {}",
                wt.block_len()
            )));
        }
        let m = QMat {
            t: wt,
            off: self.base + t.offset as usize,
            rows,
            k,
            packed: None,
        };
        if m.off + rows * m.row_bytes() > self.map.len() {
            return Err(Error::Model(format!(
                "{name} runs past the end of the file"
            )));
        }
        Ok(m)
    }

    /// A vector (norm weights, biases), widened to f32.
    fn vector(&self, name: &str) -> Result<Vec<f32>, Error> {
        let t = self.info(name)?;
        let n = t.shape.elem_count();
        let off = self.base + t.offset as usize;
        let bytes = |w: usize| {
            self.map
                .get(off..off + n * w)
                .ok_or_else(|| Error::Model(format!("{name} runs past the end of the file")))
        };
        match t.ggml_dtype {
            GgmlDType::F32 => Ok(bytes(4)?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            GgmlDType::F16 => Ok(bytes(2)?
                .chunks_exact(2)
                .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect()),
            other => Err(Error::Model(format!("{name}: vector of type {other:?}"))),
        }
    }

    /// Block `i`'s tensors (qwen2 adds the Q/K/V biases).
    fn layer(&self, i: usize, arch: Arch) -> Result<Layer, Error> {
        let p = |s: &str| format!("blk.{i}.{s}");
        Ok(Layer {
            attn_norm: self.vector(&p("attn_norm.weight"))?,
            wq: self.mat(&p("attn_q.weight"))?,
            wk: self.mat(&p("attn_k.weight"))?,
            wv: self.mat(&p("attn_v.weight"))?,
            wo: self.mat(&p("attn_output.weight"))?,
            bias: if arch == Arch::Qwen2 {
                Some([
                    self.vector(&p("attn_q.bias"))?,
                    self.vector(&p("attn_k.bias"))?,
                    self.vector(&p("attn_v.bias"))?,
                ])
            } else {
                None
            },
            ffn_norm: self.vector(&p("ffn_norm.weight"))?,
            gate: self.mat(&p("ffn_gate.weight"))?,
            up: self.mat(&p("ffn_up.weight"))?,
            down: self.mat(&p("ffn_down.weight"))?,
        })
    }

    /// A float of the architecture's metadata, or the default when absent.
    fn meta_f32(&self, arch: Arch, key: &str, default: f32) -> f32 {
        self.ct
            .metadata
            .get(&format!("{}.{key}", arch.name()))
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(default)
    }
}

/// cos and sin of every position and frequency of the rotary embedding.
fn rope_table(context: usize, head_dim: usize, theta: f32) -> Vec<(f32, f32)> {
    let half_dim = head_dim / 2;
    let mut rope = Vec::with_capacity(context * half_dim);
    for pos in 0..context {
        for i in 0..half_dim {
            let freq = 1.0 / theta.powf(2.0 * i as f32 / head_dim as f32);
            let angle = pos as f32 * freq;
            rope.push((angle.cos(), angle.sin()));
        }
    }
    rope
}

impl Decoder {
    /// Maps `file` and builds the model for `context` positions.
    ///
    /// # Errors
    /// [`Error::Model`] for a tensor of a type the kernels lack or a vector that is not f32/f16;
    /// [`Error::ModelFile`] if the file cannot be mapped; a kernel path error from
    /// `IEXEC_LLM_SIMD`.
    pub fn load(
        ct: &Content,
        hp: &Hparams,
        file: &std::fs::File,
        context: usize,
    ) -> Result<Self, Error> {
        // SAFETY: the file was opened read-only and checked against its pinned sha256; the
        // map is only read. A concurrent writer to the model file is outside the threat model
        // (the image's file system is read-only under the worker).
        let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| Error::ModelFile {
            path: "model".into(),
            reason: format!("cannot map it: {e}"),
        })?;
        let ts = Tensors {
            ct,
            map: &map,
            base: ct.tensor_data_offset as usize,
        };
        let default_eps = if hp.arch == Arch::Qwen2 { 1e-6 } else { 1e-5 };
        let eps = ts.meta_f32(hp.arch, "attention.layer_norm_rms_epsilon", default_eps);
        let theta = ts.meta_f32(hp.arch, "rope.freq_base", 10_000.0);
        let head_dim = hp.n_embd / hp.n_head;
        let mut layers = (0..hp.n_layer)
            .map(|i| ts.layer(i, hp.arch))
            .collect::<Result<Vec<_>, _>>()?;
        let embd = ts.mat("token_embd.weight")?;
        // Tied embeddings: the output matrix is the embedding's tensor. It is packed like any
        // other matrix (every decode step reads all of it), and the embedding lookup then reads
        // its rows back out of the packed copy, so the weights are held once.
        let tied = !ct.tensor_infos.contains_key("output.weight");
        let mut output = ts.mat(if tied {
            "token_embd.weight"
        } else {
            "output.weight"
        })?;
        let output_norm = ts.vector("output_norm.weight")?;
        let isa = Isa::select().map_err(Error::Inference)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads())
            .build()
            .map_err(|e| Error::Inference(format!("thread pool: {e}")))?;
        if isa.packs() {
            let mats = layers
                .iter_mut()
                .flat_map(|l| {
                    [
                        &mut l.wq,
                        &mut l.wk,
                        &mut l.wv,
                        &mut l.wo,
                        &mut l.gate,
                        &mut l.up,
                        &mut l.down,
                    ]
                })
                .chain([&mut output]);
            // Each slice of a matrix lets go of its pages as it is packed, but a fault on the
            // next slice maps the whole large folio around it again, pages before the slice
            // included (SmolLM2: 9.9 MiB of the file stayed mapped, 72 runs at MiB
            // boundaries, and up to 15 MiB while packing). So after each matrix the whole map
            // lets go: nothing but the embedding rows of an untied model is read from it from
            // here on, and those page back in on their own.
            for m in mats {
                pack(&map, &pool, isa, m)?;
                // SAFETY: as in `pack`: the map is private and read-only.
                unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) }
                    .map_err(|e| Error::Inference(format!("madvise: {e}")))?;
            }
        }
        let mut d = Decoder {
            arch: hp.arch,
            n_embd: hp.n_embd,
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            head_dim,
            eps,
            output_norm,
            embd,
            tied,
            output,
            layers,
            cache: KvCache::default(),
            n_layer: hp.n_layer,
            context,
            rope: rope_table(context, head_dim, theta),
            isa,
            pool,
            map,
        };
        d.cache = d.new_cache()?;
        Ok(d)
    }

    /// An empty cache for one more sequence of this model's context ([`CacheArray`]: zeroed,
    /// resident only where a position has been written, never in huge pages).
    ///
    /// # Errors
    /// [`Error::Inference`] when the memory cannot be mapped.
    pub fn new_cache(&self) -> Result<KvCache, Error> {
        let len = self.n_layer * self.context * self.n_head_kv * self.head_dim;
        Ok(KvCache {
            k: CacheArray::zeroed(len)?,
            v: CacheArray::zeroed(len)?,
        })
    }

    fn bytes(&self, m: &QMat) -> &[u8] {
        &self.map[m.off..m.off + m.rows * m.row_bytes()]
    }

    fn matmul(&self, m: &QMat, x: &[f32]) -> Result<Vec<f32>, Error> {
        match &m.packed {
            Some(p) => matmul_packed(&self.pool, p, x),
            None => kernels::matmul_pool(&self.pool, self.isa, m.t, self.bytes(m), m.rows, m.k, x),
        }
        .map_err(Error::Inference)
    }

    /// Several matrices of one input: in one pass of the pool where all are interleaved.
    fn matmuls<const N: usize>(&self, ms: [&QMat; N], x: &[f32]) -> Result<[Vec<f32>; N], Error> {
        let packed: Option<Vec<&Packed>> = ms.iter().map(|m| m.packed.as_ref()).collect();
        let outs = match packed {
            Some(ps)
                if ps
                    .iter()
                    .all(|p| p.wtype().k_quant() == ps[0].wtype().k_quant()) =>
            {
                matmul_packed_many(&self.pool, &ps, x).map_err(Error::Inference)?
            }
            _ => ms
                .iter()
                .map(|m| self.matmul(m, x))
                .collect::<Result<Vec<_>, _>>()?,
        };
        outs.try_into()
            .map_err(|_| Error::Inference("matrix count".into()))
    }

    fn rms_norm(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(self.n_embd) {
            let ss: f32 = row.iter().map(|v| v * v).sum::<f32>() / self.n_embd as f32;
            let scale = 1.0 / (ss + self.eps).sqrt();
            out.extend(row.iter().zip(w).map(|(v, w)| v * scale * w));
        }
        out
    }

    fn rope(&self, x: &mut [f32], heads: usize, pos: usize) {
        let hd = self.head_dim;
        let table = &self.rope[pos * hd / 2..(pos + 1) * hd / 2];
        for h in x.chunks_exact_mut(hd).take(heads) {
            for (i, (c, s)) in table.iter().enumerate() {
                let (a, b) = match self.arch {
                    Arch::Llama => (2 * i, 2 * i + 1),
                    Arch::Qwen2 => (i, i + hd / 2),
                };
                let (x0, x1) = (h[a], h[b]);
                h[a] = x0 * c - x1 * s;
                h[b] = x0 * s + x1 * c;
            }
        }
    }

    /// Feeds `tokens` at positions `pos..` of the decoder's own cache and returns the logits
    /// after the last one.
    ///
    /// # Errors
    /// [`Error::Inference`] for positions past the context or a kernel failure.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, Error> {
        let mut cache = std::mem::take(&mut self.cache);
        let out = self.forward_many(&mut [Span {
            cache: &mut cache,
            tokens,
            pos,
        }]);
        self.cache = cache;
        out?.pop()
            .ok_or_else(|| Error::Inference("no logits".into()))
    }

    /// Feeds several sequences at once and returns, for each, the logits after its last
    /// token. Their rows go through each matrix product together; norms, RoPE, cache writes
    /// and attention are per row and per sequence, in the order a single call uses, so each
    /// sequence's logits are the bits it gets alone.
    ///
    /// # Errors
    /// [`Error::Inference`] for an empty span, positions past the context, a cache of another
    /// shape, or a kernel failure.
    pub fn forward_many(&self, spans: &mut [Span<'_>]) -> Result<Vec<Vec<f32>>, Error> {
        // A decode step (a few rows) runs whole on a thread of the pool: each matrix product,
        // attention and SwiGLU inside then starts on that thread instead of waking a worker
        // and putting the caller to sleep, about 150 hand-offs per token, and with one thread
        // nothing is handed off at all. Measured on SmolLM2 (2 cores, `iexec-llm-bench
        // --prompt 512 --gen 64`): decode 78 -> 117 tok/s on one thread, 125 -> 171 on two.
        // A prompt's rows lose by it (prefill 655 -> 555 tok/s on two threads), so they go
        // as before.
        let rows: usize = spans.iter().map(|s| s.tokens.len()).sum();
        if rows <= 16 {
            self.pool.install(|| self.step(spans))
        } else {
            let out = self.step(spans);
            release_free_heap();
            out
        }
    }

    fn step(&self, spans: &mut [Span<'_>]) -> Result<Vec<Vec<f32>>, Error> {
        let (e, hd) = (self.n_embd, self.head_dim);
        let kvd = self.n_head_kv * hd;
        let cache_len = self.n_layer * self.context * kvd;
        let mut starts = Vec::with_capacity(spans.len());
        let mut n = 0usize;
        for s in spans.iter() {
            if s.tokens.is_empty() || s.pos.saturating_add(s.tokens.len()) > self.context {
                return Err(Error::Inference("past the context".into()));
            }
            if s.cache.k.len() != cache_len || s.cache.v.len() != cache_len {
                return Err(Error::Inference(
                    "a KV cache of another model's shape".into(),
                ));
            }
            starts.push(n);
            n += s.tokens.len();
        }
        if n == 0 {
            return Err(Error::Inference("nothing to feed".into()));
        }
        // (row, position) of every row, sequence after sequence.
        let rows: Vec<(usize, usize)> = spans
            .iter()
            .flat_map(|s| s.tokens.iter().enumerate().map(|(i, _)| s.pos + i))
            .enumerate()
            .collect();
        let mut x = Vec::with_capacity(n * e);
        let erb = self.embd.row_bytes();
        for &t in spans.iter().flat_map(|s| s.tokens) {
            let packed = match &self.output.packed {
                Some(p) if self.tied => p.row(t as usize),
                _ => None,
            };
            let off = self.embd.off + t as usize * erb;
            let row = packed.as_deref().unwrap_or(&self.map[off..off + erb]);
            x.extend(kernels::scalar::dequantize(self.embd.t, row));
        }
        for l in 0..self.layers.len() {
            let layer = &self.layers[l];
            let h = self.rms_norm(&x, &layer.attn_norm);
            let [mut q, mut k, mut v] = self.matmuls([&layer.wq, &layer.wk, &layer.wv], &h)?;
            if let Some([bq, bk, bv]) = &layer.bias {
                for (m, b) in [(&mut q, bq), (&mut k, bk), (&mut v, bv)] {
                    for row in m.chunks_exact_mut(b.len()) {
                        row.iter_mut().zip(b).for_each(|(x, b)| *x += b);
                    }
                }
            }
            for &(i, pos) in &rows {
                self.rope(&mut q[i * e..(i + 1) * e], self.n_head, pos);
                self.rope(&mut k[i * kvd..(i + 1) * kvd], self.n_head_kv, pos);
            }
            let base = l * self.context * kvd;
            for (s, &start) in spans.iter_mut().zip(&starts) {
                for i in 0..s.tokens.len() {
                    let (row, at) = ((start + i) * kvd, base + (s.pos + i) * kvd);
                    for (c, v) in s.cache.k[at..at + kvd].iter_mut().zip(&k[row..]) {
                        *c = f16::from_f32(*v);
                    }
                    for (c, v) in s.cache.v[at..at + kvd].iter_mut().zip(&v[row..]) {
                        *c = f16::from_f32(*v);
                    }
                }
            }
            let attn = self.attention(&q, l, spans, &starts, n);
            let o = self.matmul(&self.layers[l].wo, &attn)?;
            x.iter_mut().zip(&o).for_each(|(x, o)| *x += o);
            let layer = &self.layers[l];
            let h = self.rms_norm(&x, &layer.ffn_norm);
            let [mut act, u] = self.matmuls([&layer.gate, &layer.up], &h)?;
            drop(h);
            // SwiGLU in place in the gate's buffer (a prompt's activations are the largest
            // scratch), then the up projection is freed before the down projection runs.
            let silu = |(g, u): (&mut f32, &f32)| *g = *g / (1.0 + (-*g).exp()) * u;
            if n < 8 {
                act.iter_mut().zip(&u).for_each(silu);
            } else {
                use rayon::prelude::*;
                self.pool
                    .install(|| act.par_iter_mut().zip(&u).for_each(silu));
            }
            drop(u);
            let d = self.matmul(&layer.down, &act)?;
            x.iter_mut().zip(&d).for_each(|(x, d)| *x += d);
        }
        // The last row of each sequence, through the output norm and matrix together.
        let mut last = Vec::with_capacity(spans.len() * e);
        for (s, &start) in spans.iter().zip(&starts) {
            let r = start + s.tokens.len() - 1;
            last.extend_from_slice(&x[r * e..(r + 1) * e]);
        }
        let last = self.rms_norm(&last, &self.output_norm);
        let logits = self.matmul(&self.output, &last)?;
        let vocab = logits.len() / spans.len();
        Ok(logits.chunks_exact(vocab).map(<[f32]>::to_vec).collect())
    }

    /// Causal attention of the `n` query rows of `spans` (sequence after sequence, starting at
    /// `starts`) over each sequence's cache of layer `l`. The query heads that share a KV
    /// head are computed together, so each key and value is read and widened once for all of
    /// them; each head's scores, softmax and sum are still its own, in one fixed order, so the
    /// bits do not depend on how heads are grouped. Tasks are (sequence, KV head, a run of its
    /// query heads), shared among the pool's threads, the runs as long as the threads' balance
    /// allows.
    fn attention(
        &self,
        q: &[f32],
        l: usize,
        spans: &[Span<'_>],
        starts: &[usize],
        n: usize,
    ) -> Vec<f32> {
        use rayon::prelude::*;
        let (e, hd) = (self.n_embd, self.head_dim);
        let kvd = self.n_head_kv * hd;
        let group = self.n_head / self.n_head_kv;
        let scale = 1.0 / (hd as f32).sqrt();
        let base = l * self.context * kvd;
        let isa = self.isa;
        // (sequence, KV head, first query head of the run, one past its last)
        let task = |&(s, kvh, h0, h1): &(usize, usize, usize, usize)| -> Vec<f32> {
            let (span, start) = (&spans[s], starts[s]);
            let (kc, vc, pos) = (&span.cache.k, &span.cache.v, span.pos);
            let g = h1 - h0;
            // This KV head's keys (values) from position 0, one every kvd values.
            let (ks, vs) = (&kc[base + kvh * hd..], &vc[base + kvh * hd..]);
            let m = span.tokens.len();
            let mut out = vec![0f32; m * g * hd];
            let mut scores = Vec::with_capacity(g * (pos + m));
            for i in 0..m {
                let r = start + i;
                // The run's query rows lie side by side in q.
                let qs = &q[r * e + h0 * hd..r * e + h1 * hd];
                let len = pos + i + 1;
                scores.clear();
                scores.resize(g * len, 0f32);
                kernels::scores_f16(isa, qs, hd, ks, kvd, len, scale, &mut scores);
                // Each head's softmax, the weights divided by their sum in place.
                for row in scores.chunks_exact_mut(len) {
                    let max = row.iter().fold(f32::NEG_INFINITY, |m, s| m.max(*s));
                    let mut sum = 0f32;
                    for s in row.iter_mut() {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    row.iter_mut().for_each(|s| *s /= sum);
                }
                let o = &mut out[i * g * hd..(i + 1) * g * hd];
                kernels::weighted_sum_f16(isa, &scores, hd, vs, kvd, len, o);
            }
            out
        };
        // The run length: the divisor of the group size whose tasks finish soonest when
        // shared among the threads (in units of one head's work), the longest on a tie.
        let whole = spans.len() * self.n_head_kv;
        let threads = self.pool.current_num_threads().max(1);
        let run = (1..=group)
            .filter(|d| group.is_multiple_of(*d))
            .min_by_key(|&d| {
                (
                    (whole * (group / d)).div_ceil(threads) * d,
                    std::cmp::Reverse(d),
                )
            })
            .unwrap_or(1);
        let tasks: Vec<(usize, usize, usize, usize)> = (0..spans.len())
            .flat_map(|s| {
                (0..self.n_head_kv).flat_map(move |kvh| {
                    (0..group).step_by(run).map(move |g0| {
                        (
                            s,
                            kvh,
                            kvh * group + g0,
                            kvh * group + (g0 + run).min(group),
                        )
                    })
                })
            })
            .collect();
        let outs: Vec<Vec<f32>> = self.pool.install(|| tasks.par_iter().map(task).collect());
        let mut attn = vec![0f32; n * e];
        for (&(s, _, h0, h1), out) in tasks.iter().zip(&outs) {
            let w = (h1 - h0) * hd;
            for i in 0..spans[s].tokens.len() {
                let r = starts[s] + i;
                attn[r * e + h0 * hd..r * e + h1 * hd].copy_from_slice(&out[i * w..(i + 1) * w]);
            }
        }
        attn
    }
}

/// Interleaves a matrix for the SIMD kernels, then lets the kernel drop its mapped
/// pages from memory (the file stays mapped: a later read, such as an embedding row of tied
/// weights, pages it back in), so the weights are held once.
fn pack(
    map: &memmap2::Mmap,
    pool: &rayon::ThreadPool,
    isa: Isa,
    m: &mut QMat,
) -> Result<(), Error> {
    let len = m.rows * m.row_bytes();
    let mut failed = None;
    let p = Packed::new_releasing(pool, isa, m.t, &map[m.off..m.off + len], m.rows, m.k, |r| {
        // SAFETY: the map is private and read-only, so MADV_DONTNEED only drops clean
        // pages; reading them again reads the file, which the task never writes.
        let done = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, m.off + r.start, r.len())
        };
        if let Err(e) = done {
            failed.get_or_insert(e);
        }
    })
    .map_err(Error::Inference)?;
    if let Some(e) = failed {
        return Err(Error::Inference(format!("madvise: {e}")));
    }
    m.packed = Some(p);
    Ok(())
}

/// Hands the allocator's free heap pages back to the kernel. A prompt's rows need scratch
/// (activations of every row through each matrix: SmolLM2 with 128 rows, 6.8 MB of heap) that
/// glibc keeps mapped once freed, because the metadata arrays freed at load raise its mmap
/// threshold above the scratch's sizes; it would then stay resident for the whole decode.
/// Measured on SmolLM2, 128-row chunks: 4.5 MB of the heap given back, against the
/// page faults when the next chunk needs it again (3,331 more faults for a 512-token prompt,
/// a few ms of its 1.2-2.4 s).
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim takes no pointer, touches only free chunks, and is
        // thread-safe (it locks each arena).
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Threads: `IEXEC_LLM_THREADS`, else `RAYON_NUM_THREADS`, else every core.
fn threads() -> usize {
    ["IEXEC_LLM_THREADS", "RAYON_NUM_THREADS"]
        .iter()
        .find_map(|v| {
            std::env::var(v)
                .ok()?
                .parse()
                .ok()
                .filter(|t: &usize| *t > 0)
        })
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The VmFlags of the mapping of /proc/self/smaps that holds `addr`.
    fn vm_flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or_default();
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    inside = (a..b).contains(&addr);
                    continue;
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return flags.to_string();
                }
            }
        }
        panic!("no mapping holds {addr:#x}")
    }

    /// Without transparent huge pages in the kernel there is nothing to advise (madvise
    /// refuses MADV_NOHUGEPAGE); every machine this project runs on has them.
    #[test]
    fn a_cache_array_is_advised_away_from_huge_pages() {
        if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
            eprintln!("no transparent huge pages in this kernel");
            return;
        }
        // A map of its own, advised before its first write; it reads as f16 zeros.
        let mut a = CacheArray::zeroed(32 << 20).expect("64 MiB");
        let middle = a.as_ptr() as usize + (32 << 20);
        assert!(
            vm_flags(middle).split_whitespace().any(|f| f == "nh"),
            "{}",
            vm_flags(middle)
        );
        assert_eq!(a.len(), 32 << 20);
        assert!(a.iter().step_by(4096).all(|x| x.to_bits() == 0));
        a[5] = f16::from_f32(1.5);
        assert_eq!(a[5].to_f32(), 1.5);
        assert!(CacheArray::zeroed(0).expect("empty").is_empty());
    }
}
