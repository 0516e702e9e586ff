//! The output directory. Every file is written whole or not at all: to a new temporary file
//! in the directory (created exclusively, never through a link), synced, then renamed over its
//! name. A link planted at `result.json` is replaced, its target untouched; a full disk
//! leaves the previous complete file, or none, and never a truncated one.
//!
//! `computed.json` is written last, so a worker that finds it finds a complete `result.json`.
//! Its `deterministic-output-path` is always `/iexec_out/result.json`: the path is read by
//! the post-compute, in whose container the output directory is mounted at `/iexec_out`
//! whatever directory the app itself was given (a worker sets `IEXEC_OUT=/iexec_out`; a
//! local run's `--out` is that same directory under another name). `verifier check-result`
//! reads it the same way.

use crate::error::Error;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where the post-compute sees the output directory.
pub const IEXEC_OUT: &str = "/iexec_out";
/// File names, all well under the 31 characters the post-compute accepts.
pub const RESULT_FILE: &str = "result.json";
/// The computed file the worker reads.
pub const COMPUTED_FILE: &str = "computed.json";
/// Timings and memory, not covered by the result digest.
pub const METRICS_FILE: &str = "metrics.json";

/// The output directory and the files the app writes in it.
#[derive(Debug, Clone)]
pub struct OutDir {
    dir: PathBuf,
}

impl OutDir {
    /// Creates the directory if needed and checks that a file can be created in it, before
    /// any work is done.
    ///
    /// # Errors
    /// [`Error::Output`] naming the directory and the reason.
    pub fn open(dir: PathBuf) -> Result<Self, Error> {
        let shown = dir.display().to_string();
        let fail = |e: std::io::Error| {
            Error::Output(format!("cannot write to the output directory {shown}: {e}"))
        };
        std::fs::create_dir_all(&dir).map_err(fail)?;
        let out = Self { dir };
        let (probe, f) = out.create_temp(".write-test").map_err(fail)?;
        drop(f);
        std::fs::remove_file(&probe).map_err(fail)?;
        Ok(out)
    }

    /// Path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new file `.NAME.<pid>.<n>` in the directory, created exclusively and without
    /// following links (a name that exists, link or not, is skipped).
    fn create_temp(&self, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
        let mut last = None;
        for n in 0..100 {
            let p = self.dir.join(format!(".{name}.{}.{n}", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&p)
            {
                Ok(f) => return Ok((p, f)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
    }

    /// Writes `bytes` as `name`, whole or not at all (module docs).
    ///
    /// # Errors
    /// [`Error::Output`] if the file cannot be written; the previous `name`, if any, is kept.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let target = self.path(name);
        let fail =
            |e: std::io::Error| Error::Output(format!("cannot write {}: {e}", target.display()));
        let (tmp, mut f) = self.create_temp(name).map_err(fail)?;
        let written = f
            .write_all(bytes)
            .and_then(|()| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &target));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(e));
        }
        Ok(())
    }

    /// Writes `value` as pretty JSON with a final newline.
    ///
    /// # Errors
    /// [`Error::Output`] if the file cannot be written.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), Error> {
        let mut bytes = serde_json::to_vec_pretty(value)
            .map_err(|e| Error::Output(format!("cannot serialize {name}: {e}")))?;
        bytes.push(b'\n');
        self.write_file(name, &bytes)
    }

    /// Writes `computed.json`: the deterministic output path and, on failure, the message.
    ///
    /// # Errors
    /// [`Error::Output`] if the file cannot be written.
    pub fn write_computed(&self, error_message: Option<&str>) -> Result<(), Error> {
        let mut m = BTreeMap::new();
        m.insert(
            "deterministic-output-path",
            format!("{IEXEC_OUT}/{RESULT_FILE}"),
        );
        if let Some(e) = error_message {
            m.insert("error-message", e.to_string());
        }
        self.write_json(COMPUTED_FILE, &m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("outdir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn planted_links_are_replaced_and_their_targets_untouched() {
        let d = dir("links");
        let victim = d.join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        std::os::unix::fs::symlink(&victim, d.join(RESULT_FILE)).unwrap();
        std::os::unix::fs::symlink(&victim, d.join(".write-test")).unwrap();
        let pid_probe = d.join(format!("..write-test.{}.0", std::process::id()));
        std::os::unix::fs::symlink(&victim, &pid_probe).unwrap();
        let out = OutDir::open(d.clone()).unwrap();
        out.write_file(RESULT_FILE, b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(std::fs::read(d.join(RESULT_FILE)).unwrap(), b"{}");
        assert!(!std::fs::symlink_metadata(d.join(RESULT_FILE))
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn computed_json_names_the_result_where_the_post_compute_sees_it() {
        let d = dir("computed");
        let out = OutDir::open(d.clone()).unwrap();
        out.write_computed(Some("boom")).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join(COMPUTED_FILE)).unwrap()).unwrap();
        assert_eq!(v["deterministic-output-path"], "/iexec_out/result.json");
        assert_eq!(v["error-message"], "boom");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
