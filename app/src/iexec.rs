//! The iExec runtime contract: where the prompt comes from and where results go.
//!
//! Inputs (iExec docs, "Application I/O"): the Cmd arguments (public), the requester secret
//! `IEXEC_REQUESTER_SECRET_1`, the protected dataset `$IEXEC_IN/$IEXEC_DATASET_FILENAME`, and
//! input files `IEXEC_INPUT_FILE_NAME_<n>` in `IEXEC_INPUT_FILES_FOLDER`. The last three are
//! confidential: their text is never logged and `result.json` holds only its sha256.
//!
//! Outputs, under `IEXEC_OUT`: `result.json` (the deterministic result, hashed by the
//! post-compute into `resultDigest`), `computed.json` pointing to it, and `metrics.json`
//! (timings, which vary from run to run and so stay out of the deterministic file).

use crate::error::Error;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest prompt file or secret accepted (1 MiB): far beyond any context window.
pub const MAX_PROMPT_BYTES: u64 = 1 << 20;

/// Where the prompt came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptSource {
    /// The Cmd arguments (public on chain).
    Args,
    /// `IEXEC_REQUESTER_SECRET_1`.
    RequesterSecret,
    /// The protected dataset file.
    Dataset,
    /// The first input file.
    InputFile,
}

impl PromptSource {
    /// Whether text from this source must stay confidential.
    pub fn confidential(self) -> bool {
        self != PromptSource::Args
    }
}

/// A snapshot of the environment variables the contract uses (tests build their own).
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Variables with UTF-8 values.
    pub vars: BTreeMap<String, String>,
    /// Names of variables whose values are not UTF-8.
    pub not_utf8: Vec<String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        let mut env = Env::default();
        for (k, v) in std::env::vars_os() {
            let Ok(k) = k.into_string() else { continue };
            match v.into_string() {
                Ok(v) => {
                    env.vars.insert(k, v);
                }
                Err(_) => env.not_utf8.push(k),
            }
        }
        env
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// `IEXEC_OUT`, when running under a worker.
    pub fn iexec_out(&self) -> Option<PathBuf> {
        self.get("IEXEC_OUT")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    }

    fn iexec_in(&self) -> PathBuf {
        PathBuf::from(
            self.get("IEXEC_IN")
                .filter(|s| !s.is_empty())
                .unwrap_or("/iexec_in"),
        )
    }
}

/// Finds the prompt: from the arguments or from exactly one confidential source.
///
/// # Errors
/// [`Error::Prompt`] when there is no prompt, it is empty, or more than one source gives one;
/// [`Error::Input`] when a confidential source cannot be read or is not UTF-8.
pub fn resolve_prompt(
    from_args: Option<String>,
    env: &Env,
) -> Result<(String, PromptSource), Error> {
    let mut found: Vec<(PromptSource, Result<String, Error>)> = Vec::new();
    if let Some(p) = from_args {
        found.push((PromptSource::Args, Ok(p)));
    }
    if let Some(secret) = env.get("IEXEC_REQUESTER_SECRET_1") {
        found.push((PromptSource::RequesterSecret, Ok(secret.to_string())));
    } else if env.not_utf8.iter().any(|k| k == "IEXEC_REQUESTER_SECRET_1") {
        found.push((
            PromptSource::RequesterSecret,
            Err(Error::Input(
                "IEXEC_REQUESTER_SECRET_1 is not valid UTF-8".into(),
            )),
        ));
    }
    if let Some(name) = env.get("IEXEC_DATASET_FILENAME").filter(|s| !s.is_empty()) {
        let path = env.iexec_in().join(name);
        found.push((
            PromptSource::Dataset,
            read_text(&path, "the protected dataset"),
        ));
    }
    let n_inputs: u32 = env
        .get("IEXEC_INPUT_FILES_NUMBER")
        .map(|n| {
            n.parse().map_err(|_| {
                Error::Input(format!("IEXEC_INPUT_FILES_NUMBER is not a number: {n:?}"))
            })
        })
        .transpose()?
        .unwrap_or(0);
    if n_inputs > 0 {
        let folder = env
            .get("IEXEC_INPUT_FILES_FOLDER")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| env.iexec_in());
        let text = match env.get("IEXEC_INPUT_FILE_NAME_1").filter(|s| !s.is_empty()) {
            Some(name) => read_text(&folder.join(name), "input file 1"),
            None => Err(Error::Input("IEXEC_INPUT_FILE_NAME_1 is not set".into())),
        };
        found.push((PromptSource::InputFile, text));
    }
    match found.len() {
        0 => Err(Error::Prompt(
            "no prompt: give prompt=... (or free text) as arguments, or a requester secret, a \
             protected dataset or an input file"
                .into(),
        )),
        1 => {
            let (source, text) = found.remove(0);
            let text = text?;
            if text.trim().is_empty() {
                return Err(Error::Prompt(format!(
                    "the prompt from {} is empty",
                    describe(source)
                )));
            }
            Ok((text, source))
        }
        _ => Err(Error::Prompt(format!(
            "the prompt is given by more than one source ({}); give exactly one",
            found
                .iter()
                .map(|(s, _)| describe(*s))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn describe(s: PromptSource) -> &'static str {
    match s {
        PromptSource::Args => "the arguments",
        PromptSource::RequesterSecret => "requester secret 1",
        PromptSource::Dataset => "the protected dataset",
        PromptSource::InputFile => "input file 1",
    }
}

/// Reads a confidential text file. One trailing newline is dropped (files usually end with
/// one); the rest is kept byte for byte. Errors name the file, never its content.
fn read_text(path: &Path, what: &str) -> Result<String, Error> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Input(format!("cannot read {what} at {}: {e}", path.display())))?;
    if meta.len() > MAX_PROMPT_BYTES {
        return Err(Error::Input(format!(
            "{what} is {} bytes; the limit is {MAX_PROMPT_BYTES}",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Input(format!("cannot read {what} at {}: {e}", path.display())))?;
    let mut text = String::from_utf8(bytes).map_err(|e| {
        Error::Input(format!(
            "{what} is not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// The output directory and the files the app writes in it.
#[derive(Debug, Clone)]
pub struct OutDir {
    dir: PathBuf,
}

/// File names, all well under the 31 characters the post-compute accepts.
pub const RESULT_FILE: &str = "result.json";
/// The computed file the worker reads.
pub const COMPUTED_FILE: &str = "computed.json";
/// Timings and memory, not covered by the result digest.
pub const METRICS_FILE: &str = "metrics.json";

impl OutDir {
    /// Creates the directory if needed and checks that it can be written, before any work
    /// is done.
    ///
    /// # Errors
    /// [`Error::Output`] naming the directory and the reason.
    pub fn open(dir: PathBuf) -> Result<Self, Error> {
        let fail = |e: std::io::Error| {
            Error::Output(format!(
                "cannot write to the output directory {}: {e}",
                dir.display()
            ))
        };
        std::fs::create_dir_all(&dir).map_err(fail)?;
        let probe = dir.join(".write-test");
        std::fs::write(&probe, b"").map_err(fail)?;
        std::fs::remove_file(&probe).map_err(fail)?;
        Ok(Self { dir })
    }

    /// Path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `value` as pretty JSON with a final newline.
    ///
    /// # Errors
    /// [`Error::Output`] if the file cannot be written.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), Error> {
        let mut bytes = serde_json::to_vec_pretty(value)
            .map_err(|e| Error::Output(format!("cannot serialize {name}: {e}")))?;
        bytes.push(b'\n');
        let path = self.path(name);
        std::fs::write(&path, bytes)
            .map_err(|e| Error::Output(format!("cannot write {}: {e}", path.display())))
    }

    /// Writes `computed.json`: the deterministic output path and, on failure, the message.
    ///
    /// # Errors
    /// [`Error::Output`] if the file cannot be written.
    pub fn write_computed(&self, error_message: Option<&str>) -> Result<(), Error> {
        let mut m = BTreeMap::new();
        m.insert(
            "deterministic-output-path",
            self.path(RESULT_FILE).to_string_lossy().into_owned(),
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

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            not_utf8: Vec::new(),
        }
    }

    #[test]
    fn finds_the_prompt_in_each_source() {
        let dir = std::env::temp_dir().join(format!("iexec-in-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data.txt"), "from dataset\n").unwrap();
        std::fs::write(dir.join("in.txt"), "from input").unwrap();
        let d = dir.to_str().unwrap();
        let cases = [
            (Some("hi"), env(&[]), "hi", PromptSource::Args),
            (
                None,
                env(&[("IEXEC_REQUESTER_SECRET_1", "s")]),
                "s",
                PromptSource::RequesterSecret,
            ),
            (
                None,
                env(&[("IEXEC_IN", d), ("IEXEC_DATASET_FILENAME", "data.txt")]),
                "from dataset",
                PromptSource::Dataset,
            ),
            (
                None,
                env(&[
                    ("IEXEC_INPUT_FILES_NUMBER", "1"),
                    ("IEXEC_INPUT_FILES_FOLDER", d),
                    ("IEXEC_INPUT_FILE_NAME_1", "in.txt"),
                ]),
                "from input",
                PromptSource::InputFile,
            ),
        ];
        for (args, env, want, source) in cases {
            let got = resolve_prompt(args.map(String::from), &env).unwrap();
            assert_eq!(got, (want.to_string(), source));
        }
        std::fs::write(dir.join("bad.txt"), b"ok \xff\xfe").unwrap();
        let e = resolve_prompt(
            None,
            &env(&[("IEXEC_IN", d), ("IEXEC_DATASET_FILENAME", "bad.txt")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "input: the protected dataset is not valid UTF-8 (at byte 3)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_missing_empty_or_ambiguous_prompts() {
        let cases = [
            (None, env(&[]), "no prompt"),
            (
                Some("  "),
                env(&[]),
                "the prompt from the arguments is empty",
            ),
            (
                None,
                env(&[("IEXEC_REQUESTER_SECRET_1", "")]),
                "requester secret 1 is empty",
            ),
            (
                Some("a"),
                env(&[("IEXEC_REQUESTER_SECRET_1", "b")]),
                "more than one source",
            ),
            (
                None,
                env(&[
                    ("IEXEC_IN", "/nonexistent"),
                    ("IEXEC_DATASET_FILENAME", "x"),
                ]),
                "cannot read the protected dataset",
            ),
            (
                None,
                env(&[("IEXEC_INPUT_FILES_NUMBER", "one")]),
                "not a number",
            ),
        ];
        for (args, env, want) in cases {
            let e = resolve_prompt(args.map(String::from), &env).unwrap_err();
            assert!(e.to_string().contains(want), "{e} does not contain {want}");
        }
    }
}
