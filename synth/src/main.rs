//! `gguf-synth PRESET OUT.gguf [--seed N] [--template FILE] [--tokenizer-from GGUF]`: writes
//! a seeded synthetic model. Presets: `tiny-qwen2` (tests), `r1-1.5b`
//! (DeepSeek-R1-Distill-Qwen-1.5B shapes, Q4_K_M), `tiny-real-tokenizer` (a one-layer Qwen2
//! carrying the tokenizer and chat template of `--tokenizer-from`, whose data may be cut).

use anyhow::{bail, Context, Result};
use std::io::Write;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut seed, mut template, mut pos) = (0u64, String::new(), Vec::new());
    let mut tokenizer_from = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => seed = it.next().context("--seed needs a value")?.parse()?,
            "--template" => {
                let f = it.next().context("--template needs a file")?;
                template = std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?;
            }
            "--tokenizer-from" => {
                tokenizer_from = Some(it.next().context("--tokenizer-from needs a file")?.clone())
            }
            "-h" | "--help" => {
                println!(
                    "usage: gguf-synth tiny-qwen2|r1-1.5b OUT.gguf [--seed N] [--template FILE]"
                );
                return Ok(());
            }
            _ => pos.push(a.clone()),
        }
    }
    let [preset, out] = pos.as_slice() else {
        bail!("usage: gguf-synth tiny-qwen2|r1-1.5b OUT.gguf [--seed N] [--template FILE]");
    };
    if preset == "tiny-real-tokenizer" {
        let src = tokenizer_from.context("tiny-real-tokenizer needs --tokenizer-from GGUF")?;
        let mut f = std::fs::File::open(&src).with_context(|| format!("opening {src}"))?;
        let ct = candle_core::quantized::gguf_file::Content::read(&mut f)?;
        let n = match ct.metadata.get("tokenizer.ggml.tokens") {
            Some(candle_core::quantized::gguf_file::Value::Array(t)) => t.len(),
            _ => bail!("{src} has no tokenizer.ggml.tokens"),
        };
        let spec = gguf_synth::Spec::tiny_qwen2_for_vocab(n);
        gguf_synth::write_with_tokenizer(&spec, seed, &ct.metadata, std::path::Path::new(out))?;
        eprintln!("wrote {out}");
        return Ok(());
    }
    let spec = match preset.as_str() {
        "tiny-qwen2" => gguf_synth::Spec::tiny_qwen2(),
        "r1-1.5b" => gguf_synth::Spec::deepseek_r1_1_5b(),
        p => bail!("unknown preset {p:?} (tiny-qwen2, r1-1.5b)"),
    };
    let mut n = 0usize;
    gguf_synth::write(&spec, seed, &template, std::path::Path::new(out), |name| {
        n += 1;
        if n.is_multiple_of(16) {
            eprint!("\rwriting {out}: tensor {n} ({name})        ");
            let _ = std::io::stderr().flush();
        }
    })?;
    eprintln!("\rwrote {out}                                        ");
    Ok(())
}
