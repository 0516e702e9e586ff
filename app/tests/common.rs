//! Shared helpers: the models (from `gguf_synth::testing`), running the binary.

use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use gguf_synth::testing::{smollm2, tiny_qwen2, SMOLLM2_SHA256};

pub fn sha256_file(p: &Path) -> String {
    app::run::sha256_file(p).unwrap()
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

/// A worker-like layout: `in/`, `out/`, and the variables pointing at them.
pub struct Worker {
    pub dir: PathBuf,
    pub env: Vec<(&'static str, OsString)>,
}

impl Worker {
    pub fn new(tag: &str) -> Self {
        let dir = tempdir(tag);
        std::fs::create_dir_all(dir.join("in")).unwrap();
        let env = vec![
            ("IEXEC_IN", dir.join("in").into_os_string()),
            ("IEXEC_OUT", dir.join("out").into_os_string()),
            (
                "IEXEC_TASK_ID",
                OsString::from(format!("0x{}", "ab".repeat(32))),
            ),
            ("IEXEC_INPUT_FILES_NUMBER", OsString::from("0")),
            ("IEXEC_DATASET_FILENAME", OsString::new()),
        ];
        Self { dir, env }
    }

    pub fn set(&mut self, k: &'static str, v: impl Into<OsString>) -> &mut Self {
        self.env.retain(|(x, _)| *x != k);
        self.env.push((k, v.into()));
        self
    }

    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// Runs the app on the small model with the worker's environment.
    pub fn run(&self, extra: &[&str]) -> Run {
        let model = smollm2();
        let mut args = vec![
            "--model",
            model.to_str().unwrap(),
            "--model-sha256",
            SMOLLM2_SHA256,
        ];
        args.extend_from_slice(extra);
        let env: Vec<(&str, &OsStr)> = self.env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        let o = run_app(&args, &env);
        Run {
            code: o.status.code(),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
            out: self.out(),
        }
    }
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub out: PathBuf,
}

impl Run {
    pub fn result(&self) -> Value {
        read_json(&self.out.join("result.json"))
    }
    pub fn computed(&self) -> Value {
        read_json(&self.out.join("computed.json"))
    }
    /// The app failed cleanly: exit 0 (a worker publishes the result only then),
    /// `computed.json` with an error message naming the problem, an error `result.json` of
    /// the given kind, and an `error:` line on stderr.
    pub fn assert_error(&self, kind: &str, message: &str) {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        let c = self.computed();
        let msg = c["error-message"].as_str().unwrap();
        assert!(
            msg.contains(message),
            "error-message {msg:?} lacks {message:?}"
        );
        assert_eq!(c["deterministic-output-path"], "/iexec_out/result.json");
        let r = self.result();
        assert_eq!(r["status"], "error");
        assert_eq!(r["error"]["kind"], kind, "{r}");
        assert!(
            self.stderr.contains(&format!("error: {msg}")),
            "stderr: {}",
            self.stderr
        );
    }
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(files_under(&p));
        } else {
            v.push(p);
        }
    }
    v
}

/// The prompt is in no log and no output file. The answer is the one place where the model's
/// own words go, and a model may quote its prompt there, so `answer` and `reasoning` are left
/// out of the check (they are the requester's result; iExec encrypts results for the
/// beneficiary when asked); the prompt itself is never written, not even there.
pub fn assert_secret_nowhere(run: &Run, secret: &str) {
    let needle = "TANGERINE";
    assert!(secret.contains(needle));
    assert!(!run.stdout.contains(needle), "stdout leaks the prompt");
    assert!(!run.stderr.contains(needle), "stderr leaks the prompt");
    let files = files_under(&run.out);
    assert!(files.len() >= 3, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!text.contains(secret), "{} holds the prompt", f.display());
        let text = if f.ends_with("result.json") {
            let mut r: Value = serde_json::from_str(&text).unwrap();
            r["answer"] = Value::Null;
            r["reasoning"] = Value::Null;
            r.to_string()
        } else {
            text
        };
        assert!(!text.contains(needle), "{} leaks the prompt", f.display());
    }
}
