//! `iexec-llm-bench MODEL.gguf [--prompt N] [--gen N] [--batch B] [--seed S]`: times the engine
//! the app uses, without tokenizer or template, and prints one JSON line.
//!
//! - `--batch 1` (the default): a prefill of N prompt tokens ([`Model::forward`], the app's
//!   call, in the app's pieces of [`engine::generate::PREFILL_CHUNK`] tokens), then N
//!   generated tokens one at a time (greedy).
//! - `--batch B`: B sequences, each with its own N-token prompt, prefilled in one
//!   [`Model::feed`], then N batched decode steps of B tokens each.
//! - `iexec-llm-bench --bandwidth`: the machine's read bandwidth (best of 5 passes over 1 GiB,
//!   one pass split among the threads), to set decode speeds against.
//! - `iexec-llm-bench --int8-peak`: the int8 multiply-adds per second that AVX-512 VNNI
//!   (`vpdpbusd`) gives on all the threads at once, to set prefill speeds against (with
//!   `prefill_macs_per_token` from a model run).
//! - `--hash`: the file's sha256 first, as the app does before it parses the model, so that
//!   `first_token_seconds` (process start to the first generated token) is the app's cold start.
//! - `--logits-of TOKENS.json OUT.f32`: feeds the token ids one at a time (the decode path)
//!   and writes the logits after each, little-endian f32, one row of n_vocab per token; used
//!   by `bench/accuracy.py`.
//!
//! Threads: `RAYON_NUM_THREADS` (and `IEXEC_LLM_THREADS`). Used by `bench/run.sh`, which runs
//! llama.cpp beside it.

use anyhow::{bail, Context, Result};
use engine::forward::{Model, Sequence};
use std::time::Instant;

fn main() -> Result<()> {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut n_prompt, mut n_gen, mut batch, mut seed, mut path) = (512usize, 128, 1, 1u64, None);
    let (mut hash, mut logits_of) = (false, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64> {
            Ok(it
                .next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()?)
        };
        match a.as_str() {
            "--bandwidth" => return bandwidth(),
            "--int8-peak" => return int8_peak(),
            "--prompt" => n_prompt = num("--prompt")? as usize,
            "--gen" => n_gen = num("--gen")? as usize,
            "--batch" => batch = num("--batch")? as usize,
            "--seed" => seed = num("--seed")?,
            "--hash" => hash = true,
            "--logits-of" => {
                let mut path = || it.next().context("--logits-of needs TOKENS.json OUT.f32");
                logits_of = Some((path()?.clone(), path()?.clone()));
            }
            p if path.is_none() => path = Some(p.to_string()),
            p => bail!("unexpected argument {p:?}"),
        }
    }
    let path = path.context(
        "usage: iexec-llm-bench MODEL.gguf [--prompt N] [--gen N] [--batch B] | --bandwidth",
    )?;
    if n_prompt == 0 || batch == 0 {
        bail!("--prompt and --batch must be at least 1");
    }
    let mut f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    let t = Instant::now();
    let digest = if hash {
        use sha2::Digest;
        use std::io::{Read, Seek};
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        f.rewind()?;
        Some(hex::encode(h.finalize()))
    } else {
        None
    };
    let hash_seconds = t.elapsed().as_secs_f64();
    if let Some((tokens, out)) = logits_of {
        return write_logits(f, &tokens, &out);
    }
    let t = Instant::now();
    let g = engine::gguf::read(&mut f)?;
    let read_per_token = weight_bytes_read_per_token(&g.content);
    let macs_per_token = prefill_macs_per_token(&g.content);
    let mut model = Model::load(g, &mut f, n_prompt + n_gen + 1)?;
    let load = t.elapsed().as_secs_f64();
    // Prompt tokens: a fixed pseudo-random sequence inside the vocabulary.
    let vocab = model.hparams.n_vocab as u64;
    let mut x = seed;
    let mut prompt = || -> Vec<u32> {
        (0..n_prompt)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % vocab) as u32
            })
            .collect()
    };
    let first_token;
    let (prefill, decode) = if batch == 1 {
        let prompt = prompt();
        let t = Instant::now();
        // In the app's pieces (`generate`), which also bound a prompt's scratch memory.
        let mut logits = Vec::new();
        for (i, piece) in prompt.chunks(engine::generate::PREFILL_CHUNK).enumerate() {
            logits = model.forward(piece, i * engine::generate::PREFILL_CHUNK)?;
        }
        let prefill = t.elapsed().as_secs_f64();
        first_token = started.elapsed().as_secs_f64();
        let t = Instant::now();
        for i in 0..n_gen {
            logits = model.forward(&[argmax(&logits)], n_prompt + i)?;
        }
        (prefill, t.elapsed().as_secs_f64())
    } else {
        let prompts: Vec<Vec<u32>> = (0..batch).map(|_| prompt()).collect();
        let mut seqs = (0..batch)
            .map(|_| model.sequence())
            .collect::<Result<Vec<Sequence>, _>>()?;
        let t = Instant::now();
        let mut feed: Vec<(&mut Sequence, &[u32])> = seqs
            .iter_mut()
            .zip(&prompts)
            .map(|(s, p)| (s, p.as_slice()))
            .collect();
        let mut logits = model.feed(&mut feed)?;
        drop(feed);
        let prefill = t.elapsed().as_secs_f64();
        first_token = started.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..n_gen {
            let next: Vec<[u32; 1]> = logits.iter().map(|l| [argmax(l)]).collect();
            let mut feed: Vec<(&mut Sequence, &[u32])> = seqs
                .iter_mut()
                .zip(&next)
                .map(|(s, t)| (s, t.as_slice()))
                .collect();
            logits = model.feed(&mut feed)?;
        }
        (prefill, t.elapsed().as_secs_f64())
    };
    let tokens = (batch * n_gen) as f64;
    println!(
        "{}",
        serde_json::json!({
            "sha256": digest,
            "hash_seconds": hash_seconds,
            "load_seconds": load,
            "first_token_seconds": first_token,
            "batch": batch,
            "prefill_tokens": batch * n_prompt,
            "prefill_tokens_per_second": (batch * n_prompt) as f64 / prefill,
            "decode_tokens": batch * n_gen,
            "decode_tokens_per_second": tokens / decode,
            "decode_step_seconds": decode / n_gen.max(1) as f64,
            "weight_bytes_read_per_step": read_per_token,
            "prefill_macs_per_token": macs_per_token,
            "peak_rss_bytes": engine::memory::peak_rss_bytes(),
        })
    );
    Ok(())
}

/// The logits after each of the token ids in the JSON array at `tokens`, fed one at a time.
fn write_logits(mut f: std::fs::File, tokens: &str, out: &str) -> Result<()> {
    use std::io::Write;
    let ids: Vec<u32> = serde_json::from_slice(
        &std::fs::read(tokens).with_context(|| format!("reading {tokens}"))?,
    )
    .with_context(|| format!("{tokens}: expected a JSON array of token ids"))?;
    if ids.is_empty() {
        bail!("{tokens} holds no token ids");
    }
    let g = engine::gguf::read(&mut f)?;
    let mut model = Model::load(g, &mut f, ids.len() + 1)?;
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {out}"))?,
    );
    for (pos, id) in ids.iter().enumerate() {
        for x in model.forward(&[*id], pos)? {
            w.write_all(&x.to_le_bytes())?;
        }
    }
    w.flush()?;
    println!("{}", serde_json::json!({ "tokens": ids.len(), "out": out }));
    Ok(())
}

fn argmax(logits: &[f32]) -> u32 {
    logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i as u32)
}

/// Bytes of weights one decode step reads: every tensor but the token embedding, of which it
/// reads one row (unless the embedding is also the output matrix).
fn weight_bytes_read_per_token(ct: &candle_core::quantized::gguf_file::Content) -> u64 {
    let tied = !ct.tensor_infos.contains_key("output.weight");
    ct.tensor_infos
        .iter()
        .filter(|(name, _)| tied || name.as_str() != "token_embd.weight")
        .map(|(_, t)| {
            let d = t.ggml_dtype;
            (t.shape.elem_count() / d.block_size() * d.type_size()) as u64
        })
        .sum()
}

/// Multiply-adds of a prompt token that is not the last: every matrix of the layers, one
/// multiply-add per weight (the output matrix is applied to the last token alone, and the
/// embedding is a lookup).
fn prefill_macs_per_token(ct: &candle_core::quantized::gguf_file::Content) -> u64 {
    ct.tensor_infos
        .iter()
        .filter(|(name, t)| {
            t.shape.dims().len() == 2
                && !matches!(name.as_str(), "token_embd.weight" | "output.weight")
        })
        .map(|(_, t)| t.shape.elem_count() as u64)
        .sum()
}

/// Int8 multiply-adds per second of AVX-512 VNNI on every thread of the pool at once: each
/// thread runs 12 independent chains of `vpdpbusd` (64 multiply-adds each) on registers, so
/// nothing but the instruction's throughput limits it; best of 5.
fn int8_peak() -> Result<()> {
    use rayon::prelude::*;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni") {
        const ITERS: u64 = 1 << 22;
        let threads = rayon::current_num_threads();
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            let sums: Vec<i32> = (0..threads)
                .into_par_iter()
                // SAFETY: the CPU has AVX-512 VNNI (and so F), checked above.
                .map(|i| unsafe { vnni_chains(ITERS, i as i32) })
                .collect();
            best = best.min(t.elapsed().as_secs_f64());
            std::hint::black_box(sums);
        }
        let macs = threads as u64 * ITERS * 12 * 64;
        println!(
            "{}",
            serde_json::json!({
                "threads": threads,
                "path": "avx512vnni",
                "int8_macs": macs,
                "int8_macs_per_second": macs as f64 / best,
            })
        );
        return Ok(());
    }
    bail!("this CPU has no AVX-512 VNNI, so no int8 peak is measured")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn vnni_chains(iters: u64, seed: i32) -> i32 {
    use std::arch::x86_64::*;
    let (a, b) = (
        _mm512_set1_epi32(seed | 0x0101),
        _mm512_set1_epi32(0x0102_0304),
    );
    let mut acc = [_mm512_setzero_si512(); 12];
    for _ in 0..iters {
        for c in acc.iter_mut() {
            *c = _mm512_dpbusd_epi32(*c, a, b);
        }
        // Keep the compiler from folding the chains into a multiplication.
        std::arch::asm!("", options(nomem, nostack, preserves_flags));
    }
    let s = acc
        .iter()
        .fold(_mm512_setzero_si512(), |s, c| _mm512_add_epi32(s, *c));
    _mm512_reduce_add_epi32(s)
}

/// Read bandwidth: 1 GiB, touched once, then summed by all threads at once, best of 5. The
/// buffer is read the way the packed weights are: anonymous memory advised `MADV_HUGEPAGE`,
/// with the widest loads the CPU has (AVX-512, else AVX2, chosen at run time). A plain loop
/// over 4 KiB pages reads ~40% below what one core of an Intel Xeon delivers (9.8 against
/// 16.4 GB/s), which would overstate every engine's share of it.
fn bandwidth() -> Result<()> {
    use rayon::prelude::*;
    const LEN: usize = 1 << 27; // u64s: 1 GiB
    let mut map = memmap2::MmapMut::map_anon(LEN * 8).context("cannot map 1 GiB")?;
    #[cfg(target_os = "linux")]
    {
        // Only a hint, as for the packed weights.
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    // SAFETY: the map is LEN * 8 bytes, page-aligned, zeroed, and any bits are a valid u64.
    let data: &mut [u64] = unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr().cast(), LEN) };
    data.par_iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = i as u64);
    let data: &[u64] = data;
    let threads = rayon::current_num_threads();
    // Whole 64-byte lines per thread, so that the SIMD sums need no tail.
    let chunk = LEN.div_ceil(threads).next_multiple_of(32);
    let mut best = f64::MAX;
    let mut check = 0u64;
    for _ in 0..5 {
        let t = Instant::now();
        let s: u64 = data
            .par_chunks(chunk)
            .map(sum_u64)
            .reduce(|| 0, u64::wrapping_add);
        best = best.min(t.elapsed().as_secs_f64());
        check = std::hint::black_box(s);
    }
    let want = (LEN as u64).wrapping_mul(LEN as u64 - 1) / 2;
    if check != want {
        bail!("bandwidth pass summed {check}, not {want}");
    }
    println!(
        "{}",
        serde_json::json!({
            "threads": threads,
            "read_bytes": LEN * 8,
            "read_bytes_per_second": (LEN * 8) as f64 / best,
        })
    );
    Ok(())
}

/// Wrapping sum of `c`, with the widest loads this CPU has.
fn sum_u64(c: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked above.
            return unsafe { sum_avx512(c) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked above.
            return unsafe { sum_avx2(c) };
        }
    }
    sum_plain(c)
}

fn sum_plain(c: &[u64]) -> u64 {
    // Four independent sums, so that the adds keep up with memory.
    let mut acc = [0u64; 4];
    let mut q = c.chunks_exact(4);
    for q in &mut q {
        for (a, v) in acc.iter_mut().zip(q) {
            *a = a.wrapping_add(*v);
        }
    }
    let tail = q.remainder().iter().fold(0u64, |a, b| a.wrapping_add(*b));
    acc.iter().fold(tail, |a, b| a.wrapping_add(*b))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_avx512(c: &[u64]) -> u64 {
    use std::arch::x86_64::*;
    let lines = c.chunks_exact(32);
    let tail = sum_plain(lines.remainder());
    let mut acc = [_mm512_setzero_si512(); 4];
    for l in lines {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: l holds 32 u64s; lane group j is 8 of them.
            let v = unsafe { _mm512_loadu_si512(l.as_ptr().add(8 * j).cast()) };
            *a = _mm512_add_epi64(*a, v);
        }
    }
    let s = _mm512_add_epi64(
        _mm512_add_epi64(acc[0], acc[1]),
        _mm512_add_epi64(acc[2], acc[3]),
    );
    tail.wrapping_add(_mm512_reduce_add_epi64(s) as u64)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_avx2(c: &[u64]) -> u64 {
    use std::arch::x86_64::*;
    let lines = c.chunks_exact(16);
    let tail = sum_plain(lines.remainder());
    let mut acc = [_mm256_setzero_si256(); 4];
    for l in lines {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: l holds 16 u64s; lane group j is 4 of them.
            let v = unsafe { _mm256_loadu_si256(l.as_ptr().add(4 * j).cast()) };
            *a = _mm256_add_epi64(*a, v);
        }
    }
    let mut out = [0u64; 4];
    let s = _mm256_add_epi64(
        _mm256_add_epi64(acc[0], acc[1]),
        _mm256_add_epi64(acc[2], acc[3]),
    );
    // SAFETY: out is 32 bytes.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), s) };
    out.iter().fold(tail, |a, b| a.wrapping_add(*b))
}
