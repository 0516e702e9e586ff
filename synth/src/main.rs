//! `gguf-synth PRESET OUT.gguf [--seed N] [--template FILE]`: writes a seeded synthetic model.
//! Presets: `tiny-qwen2` (tests), `r1-1.5b` (DeepSeek-R1-Distill-Qwen-1.5B shapes, Q4_K_M).

use anyhow::{bail, Context, Result};
use std::io::Write;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut seed, mut template, mut pos) = (0u64, String::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => seed = it.next().context("--seed needs a value")?.parse()?,
            "--template" => {
                let f = it.next().context("--template needs a file")?;
                template = std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?;
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
