//! Shared helpers: where the models are, the recorded llama.cpp fixture, running the binary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The small real model, fetched by `scripts/fetch-small-model.sh` (the test command runs it).
/// `SMOLLM2_GGUF` overrides the path.
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

/// The tiny synthetic Qwen2 model, written once per test run by the seeded generator; its
/// sha256 must be the one the llama.cpp fixture was recorded from.
pub fn tiny_qwen2() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("iexec-llm-synth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tiny-qwen2.gguf");
        let template = std::fs::read_to_string(fixture("deepseek-r1-distill-qwen.jinja")).unwrap();
        gguf_synth::write(&gguf_synth::Spec::tiny_qwen2(), 0, &template, &path, |_| {}).unwrap();
        path
    })
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// llama.cpp's outputs, recorded by `reference/make-fixtures.sh`.
pub fn reference() -> &'static Value {
    static REF: OnceLock<Value> = OnceLock::new();
    REF.get_or_init(|| {
        let text = std::fs::read_to_string(fixture("llama_cpp_reference.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

pub fn sha256_file(p: &Path) -> String {
    app::run::sha256_file(p).unwrap()
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// A fresh temporary directory.
pub fn tempdir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "iexec-llm-test-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the binary with a clean environment plus `env`, and these arguments.
pub fn run_app(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iexec-llm"));
    c.env_clear().args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

pub fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}
