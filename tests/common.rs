//! What the workspace tests share: the static app, the small model, the image spec.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use oci_image::ImageSpec;
use std::path::{Path, PathBuf};

pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn smollm2() -> PathBuf {
    let p = std::env::var_os("SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models").join(SMOLLM2));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/test.sh",
        p.display()
    );
    p
}

/// The statically linked app, built by scripts/test.sh as the flake builds it.
pub fn static_app() -> PathBuf {
    let p = std::env::var_os("STATIC_APP")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/x86_64-unknown-linux-gnu/release/iexec-llm"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/test.sh",
        p.display()
    );
    let bytes = std::fs::read(&p).unwrap();
    let needle = b"/lib64/ld-linux-x86-64.so";
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle),
        "{} asks for a dynamic loader: it is not static",
        p.display()
    );
    p
}

pub fn tempdir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "e2e-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn entrypoint_args() -> Vec<String> {
    [
        "--model",
        &format!("/models/{SMOLLM2}"),
        "--model-sha256",
        SMOLLM2_SHA256,
    ]
    .map(String::from)
    .to_vec()
}

pub fn spec(binary: &Path, models: Vec<(PathBuf, String)>) -> ImageSpec {
    ImageSpec {
        reference: "test".into(),
        app_version: "0.1.0".into(),
        binary: binary.to_path_buf(),
        binary_path: "/app/iexec-llm".into(),
        entrypoint_args: entrypoint_args(),
        models,
        env: vec!["PATH=/app".into()],
        working_dir: "/".into(),
        source_date_epoch: 1,
    }
}
