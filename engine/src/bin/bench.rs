//! `iexec-llm-bench MODEL.gguf [--prompt N] [--gen N] [--seed S]`: times the engine the app
//! uses, without tokenizer or template: a prefill of N prompt tokens, then N generated tokens
//! one at a time (greedy), and prints one JSON line with tokens/s. Threads: `RAYON_NUM_THREADS`.
//! Used by `bench/run.sh`, which runs llama.cpp's `llama-bench` beside it.

use anyhow::{bail, Context, Result};
use engine::forward::Model;
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut n_prompt, mut n_gen, mut seed, mut path) = (512usize, 128usize, 1u64, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64> {
            Ok(it
                .next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()?)
        };
        match a.as_str() {
            "--prompt" => n_prompt = num("--prompt")? as usize,
            "--gen" => n_gen = num("--gen")? as usize,
            "--seed" => seed = num("--seed")?,
            p if path.is_none() => path = Some(p.to_string()),
            p => bail!("unexpected argument {p:?}"),
        }
    }
    let path = path.context("usage: iexec-llm-bench MODEL.gguf [--prompt N] [--gen N]")?;
    let t = Instant::now();
    let mut f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    let g = engine::gguf::read(&mut f)?;
    let mut model = Model::load(g, &mut f, n_prompt + n_gen + 1)?;
    let load = t.elapsed().as_secs_f64();
    // Prompt tokens: a fixed pseudo-random sequence inside the vocabulary.
    let vocab = model.hparams.n_vocab as u64;
    let mut x = seed;
    let prompt: Vec<u32> = (0..n_prompt)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % vocab) as u32
        })
        .collect();
    let t = Instant::now();
    let mut logits = model.forward(&prompt, 0)?;
    let prefill = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..n_gen {
        let next = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32)
            .unwrap_or(0);
        logits = model.forward(&[next], n_prompt + i)?;
    }
    let decode = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "load_seconds": load,
            "prefill_tokens": n_prompt, "prefill_tokens_per_second": n_prompt as f64 / prefill,
            "decode_tokens": n_gen, "decode_tokens_per_second": n_gen as f64 / decode,
            "peak_rss_bytes": engine::memory::peak_rss_bytes(),
        })
    );
    Ok(())
}
