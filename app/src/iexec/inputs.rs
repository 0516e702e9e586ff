//! Where the prompt comes from: the arguments, or exactly one of the requester secret, the
//! dataset (plain text, or a DataProtector zip that may also carry the system prompt and
//! parameters) and input file 1.
//!
//! Files are taken only by a plain name inside their folder (`IEXEC_DATASET_FILENAME` in
//! `IEXEC_IN`, `IEXEC_INPUT_FILE_NAME_1` in `IEXEC_INPUT_FILES_FOLDER`): no `/`, no `..`, so
//! `/etc/hostname` or `/proc/self/environ` can never become a prompt. Only regular files are
//! read (a FIFO would hang, `/dev/zero` would never end, a link could point anywhere), with a
//! hard byte limit. Bulk tasks (`IEXEC_BULK_SLICE_SIZE` > 0) are refused: this app answers
//! one prompt per task, and must not answer one while the datasets go unused.

use super::protected::{self, Protected};
use super::{Env, PromptSource, MAX_DATASET_BYTES, MAX_PROMPT_BYTES, MAX_SECRET_BYTES};
use crate::error::Error;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The prompt and what came with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The prompt text.
    pub prompt: String,
    /// Its source.
    pub source: PromptSource,
    /// A system prompt from the protected data, if it has one.
    pub system: Option<String>,
    /// Parameters from the protected data (`key`, `value` text).
    pub params: Vec<(String, String)>,
    /// The protected data's fields, when the prompt came from one.
    pub fields: Option<Vec<String>>,
}

impl Input {
    fn plain(prompt: String, source: PromptSource) -> Self {
        Input {
            prompt,
            source,
            system: None,
            params: Vec::new(),
            fields: None,
        }
    }
}

/// Finds the prompt: from the arguments or from exactly one other source.
///
/// # Errors
/// [`Error::Prompt`] when there is no prompt, it is empty, or more than one source gives one;
/// [`Error::Input`] when a source cannot be read, is not UTF-8, is over its limit, is not a
/// plain file name, or the task is a bulk task.
pub fn resolve_prompt(from_args: Option<String>, env: &Env) -> Result<Input, Error> {
    refuse_bulk(env)?;
    let mut found: Vec<(PromptSource, Result<Input, Error>)> = Vec::new();
    if let Some(p) = from_args {
        found.push((PromptSource::Args, Ok(Input::plain(p, PromptSource::Args))));
    }
    if let Some(s) = secret(env) {
        found.push((PromptSource::RequesterSecret, s));
    }
    if let Some(name) = env.get("IEXEC_DATASET_FILENAME").filter(|s| !s.is_empty()) {
        found.push((PromptSource::Dataset, dataset(&env.iexec_in(), name)));
    }
    if let Some(f) = input_file(env)? {
        found.push((PromptSource::InputFile, f));
    }
    match found.len() {
        0 => Err(Error::Prompt(
            "no prompt: give prompt=... (or free text) as arguments, or a requester secret, a \
             protected dataset or an input file"
                .into(),
        )),
        1 => {
            let (source, input) = found.remove(0);
            let input = input?;
            if input.prompt.trim().is_empty() {
                return Err(Error::Prompt(format!(
                    "the prompt from {} is empty",
                    describe(source)
                )));
            }
            Ok(input)
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

fn refuse_bulk(env: &Env) -> Result<(), Error> {
    match env.get("IEXEC_BULK_SLICE_SIZE").map(str::trim) {
        None | Some("") | Some("0") => Ok(()),
        Some(n) => Err(Error::Input(format!(
            "a bulk task (IEXEC_BULK_SLICE_SIZE={n}) is not supported: this app answers one \
             prompt per task"
        ))),
    }
}

fn secret(env: &Env) -> Option<Result<Input, Error>> {
    const KEY: &str = "IEXEC_REQUESTER_SECRET_1";
    if let Some(s) = env.get(KEY) {
        if s.len() > MAX_SECRET_BYTES {
            return Some(Err(Error::Input(format!(
                "requester secret 1 is {} bytes; iExec's secret service keeps at most \
                 {MAX_SECRET_BYTES}: put a longer prompt in a protected dataset",
                s.len()
            ))));
        }
        return Some(Ok(Input::plain(
            s.to_string(),
            PromptSource::RequesterSecret,
        )));
    }
    env.not_utf8
        .iter()
        .any(|k| k == KEY)
        .then(|| Err(Error::Input(format!("{KEY} is not valid UTF-8"))))
}

fn dataset(dir: &Path, name: &str) -> Result<Input, Error> {
    let what = "the protected dataset";
    let path = dir.join(plain_name("IEXEC_DATASET_FILENAME", name)?);
    let bytes = read_regular(&path, MAX_DATASET_BYTES, what)?;
    if protected::is_zip(&bytes) {
        let Protected {
            prompt,
            system,
            params,
            fields,
        } = protected::read(&bytes)?;
        return Ok(Input {
            prompt,
            source: PromptSource::ProtectedData,
            system,
            params,
            fields: Some(fields),
        });
    }
    if bytes.len() as u64 > MAX_PROMPT_BYTES {
        return Err(Error::Input(format!(
            "{what} is {} bytes; the limit is {MAX_PROMPT_BYTES}",
            bytes.len()
        )));
    }
    Ok(Input::plain(text(bytes, what)?, PromptSource::Dataset))
}

fn input_file(env: &Env) -> Result<Option<Result<Input, Error>>, Error> {
    let n: u32 = env
        .get("IEXEC_INPUT_FILES_NUMBER")
        .map(|n| {
            n.parse().map_err(|_| {
                Error::Input(format!("IEXEC_INPUT_FILES_NUMBER is not a number: {n:?}"))
            })
        })
        .transpose()?
        .unwrap_or(0);
    if n == 0 {
        return Ok(None);
    }
    let folder = env
        .get("IEXEC_INPUT_FILES_FOLDER")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| env.iexec_in());
    let what = "input file 1";
    let read = match env.get("IEXEC_INPUT_FILE_NAME_1").filter(|s| !s.is_empty()) {
        None => Err(Error::Input("IEXEC_INPUT_FILE_NAME_1 is not set".into())),
        Some(name) => plain_name("IEXEC_INPUT_FILE_NAME_1", name)
            .and_then(|n| read_regular(&folder.join(n), MAX_PROMPT_BYTES, what))
            .and_then(|b| text(b, what))
            .map(|t| Input::plain(t, PromptSource::InputFile)),
    };
    Ok(Some(read))
}

fn describe(s: PromptSource) -> &'static str {
    match s {
        PromptSource::Args => "the arguments",
        PromptSource::RequesterSecret => "requester secret 1",
        PromptSource::Dataset | PromptSource::ProtectedData => "the protected dataset",
        PromptSource::InputFile => "input file 1",
    }
}

/// A file name with no directory part: not empty, no `/`, not `.` or `..`, no NUL.
fn plain_name<'a>(var: &str, name: &'a str) -> Result<&'a str, Error> {
    if name.contains('/') || name.contains('\0') || name == "." || name == ".." || name.len() > 255
    {
        return Err(Error::Input(format!(
            "{var} must be a plain file name inside its folder, not {name:?}"
        )));
    }
    Ok(name)
}

/// Reads a regular file, at most `limit` bytes. The file is checked before it is opened
/// (no link, no device, no FIFO), opened without following links and without blocking, and
/// checked again once open (the same file, still regular).
fn read_regular(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, Error> {
    let fail =
        |e: std::io::Error| Error::Input(format!("cannot read {what} at {}: {e}", path.display()));
    let before = std::fs::symlink_metadata(path).map_err(fail)?;
    if !before.file_type().is_file() {
        return Err(Error::Input(format!(
            "{what} at {} is not a regular file",
            path.display()
        )));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(fail)?;
    let after = f.metadata().map_err(fail)?;
    if !after.is_file() || after.ino() != before.ino() || after.dev() != before.dev() {
        return Err(Error::Input(format!(
            "{what} at {} changed while it was opened",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    f.take(limit + 1).read_to_end(&mut bytes).map_err(fail)?;
    if bytes.len() as u64 > limit {
        return Err(Error::Input(format!(
            "{what} is more than {limit} bytes, the limit"
        )));
    }
    Ok(bytes)
}

/// UTF-8 text; one trailing newline is dropped (files usually end with one), the rest is
/// kept byte for byte. Errors name the file, never its content.
fn text(bytes: Vec<u8>, what: &str) -> Result<String, Error> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
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
            assert_eq!((got.prompt.as_str(), got.source), (want, source));
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
        // A FIFO is refused before it is opened (opening it would wait for a writer).
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = resolve_prompt(
            None,
            &env(&[("IEXEC_IN", d), ("IEXEC_DATASET_FILENAME", "fifo")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("is not a regular file"), "{e}");
        // A link is not followed, wherever it points.
        std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).unwrap();
        let e = resolve_prompt(
            None,
            &env(&[("IEXEC_IN", d), ("IEXEC_DATASET_FILENAME", "link")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("is not a regular file"), "{e}");
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
            (
                None,
                env(&[
                    ("IEXEC_IN", "/etc"),
                    ("IEXEC_DATASET_FILENAME", "/etc/hostname"),
                ]),
                "must be a plain file name",
            ),
            (
                None,
                env(&[
                    ("IEXEC_IN", "/proc/self"),
                    ("IEXEC_DATASET_FILENAME", "../self/environ"),
                ]),
                "must be a plain file name",
            ),
            (
                None,
                env(&[("IEXEC_IN", "/dev"), ("IEXEC_DATASET_FILENAME", "zero")]),
                "is not a regular file",
            ),
            (
                None,
                env(&[
                    ("IEXEC_INPUT_FILES_NUMBER", "1"),
                    ("IEXEC_INPUT_FILES_FOLDER", "/tmp"),
                    ("IEXEC_INPUT_FILE_NAME_1", "/proc/self/environ"),
                ]),
                "must be a plain file name",
            ),
            (
                Some("hi"),
                env(&[("IEXEC_BULK_SLICE_SIZE", "2")]),
                "a bulk task (IEXEC_BULK_SLICE_SIZE=2) is not supported",
            ),
            (
                None,
                env(&[("IEXEC_REQUESTER_SECRET_1", &"x".repeat(4097))]),
                "requester secret 1 is 4097 bytes; iExec's secret service keeps at most 4096",
            ),
        ];
        for (args, env, want) in cases {
            let e = resolve_prompt(args.map(String::from), &env).unwrap_err();
            assert!(e.to_string().contains(want), "{e} does not contain {want}");
        }
    }
}
