//! `verifier replay`: re-derive a result, bit for bit. The engine gives the same bytes on any
//! thread count and any SIMD path, and the image is reproducible, so a requester who knows
//! their prompt can run the measured binary on the measured model with the parameters the
//! result states, and compare.
//!
//! 1. The layout is checked against its measurement (as `verifier measure`); the binary and
//!    the model are taken **from the layout**, by their measured sha256, never from the PATH.
//! 2. `result.json` must state that binary and a measured model.
//! 3. The prompt given must have the sha256 `result.json` states (a different prompt is
//!    refused before anything runs); so must the system prompt, when there is one.
//! 4. The binary runs directly, in a fresh output directory, with the environment a worker
//!    gives (the prompt from the same kind of source) and the parameters `result.json` states.
//!    A result that stopped on its time budget is replayed with `max_tokens` = its completion
//!    tokens and no time limit to speak of: the stop was the worker's clock. One that stopped
//!    before its first token (an empty answer, or a `time-budget` error while or before its
//!    prompt was read) has no text to replay: it is replayed for one token, which reads the
//!    prompt as the original did, and what it claims besides the text is compared (its text
//!    must be what no token gives, and its only error the clock's).
//! 5. Every deterministic claim is compared: status, answer, reasoning, finish reason, token
//!    counts, parameters, the prompt's record, model, binary, error; the report names the first
//!    field that differs (and for text, the first byte), never the text itself.

use crate::error::Error;
use crate::iexec::archive::ResultArchive;
use crate::image::measure::{compare, measure, Measured};
use crate::report::{Check, Report};
use oci_image::Measurement;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the prompt comes from.
#[derive(Debug, Clone)]
pub enum PromptInput {
    /// The prompt's text.
    Text(Vec<u8>),
    /// A DataProtector zip, as the worker handed it to the app.
    ProtectedData(Vec<u8>),
}

/// What a replay needs besides the result.
pub struct Inputs<'a> {
    /// The result (opened, decrypted).
    pub archive: &'a ResultArchive,
    /// The image layout directory.
    pub layout: &'a Path,
    /// Its expected measurement.
    pub expected: &'a Measurement,
    /// The prompt.
    pub prompt: PromptInput,
    /// The system prompt, when the result has one (not needed for protected data).
    pub system: Option<Vec<u8>>,
    /// A scratch directory (emptied and filled).
    pub work: &'a Path,
    /// Engine settings for the run (`IEXEC_LLM_SIMD`, `IEXEC_LLM_THREADS`, `IEXEC_LLM_ENGINE`):
    /// they choose a kernel path or a thread count, never the bytes.
    pub engine_env: Vec<(String, String)>,
    /// How to run the binary.
    pub runner: Runner,
}

/// How the measured binary is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Runner {
    /// Under runc when this process may (root, `runc` and `umoci` on PATH), else directly.
    #[default]
    Auto,
    /// The binary extracted from the layout, run as a child process with a cleared
    /// environment.
    Direct,
    /// The layout unpacked by umoci and run by runc, as a worker runs it: the image's
    /// entrypoint, `/iexec_in` and `/iexec_out` bound in, the worker's variables.
    Runc,
}

impl Runner {
    /// `Auto` made concrete on this machine.
    pub fn resolve(self) -> Runner {
        match self {
            Runner::Auto if runc_possible() => Runner::Runc,
            Runner::Auto => Runner::Direct,
            r => r,
        }
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn runc_possible() -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    });
    root && on_path("runc") && on_path("umoci")
}

/// The outcome.
pub struct Replay {
    /// Every check, in order.
    pub report: Report,
    /// A line for the verdict: `identical`, or what differs first.
    pub summary: String,
    /// Whether the original stopped on its time budget.
    pub stopped_on_time: bool,
    /// How the binary ran: `under runc` or `directly`; empty when it did not run.
    pub ran: String,
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// `text` as the app reads it from a file (one trailing newline dropped), when that is the
/// stated digest; else `text` as is.
fn as_stated(text: &[u8], stated: &str) -> Vec<u8> {
    let trimmed = text
        .strip_suffix(b"\n")
        .map(|t| t.strip_suffix(b"\r").unwrap_or(t));
    match trimmed {
        Some(t) if sha(text) != stated && sha(t) == stated => t.to_vec(),
        _ => text.to_vec(),
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Runs the replay.
///
/// # Errors
/// [`Error`] when the inputs cannot be used at all: no `result.json`, an unreadable layout,
/// a prompt of another digest, a missing system prompt.
pub fn replay(i: &Inputs<'_>) -> Result<Replay, Error> {
    let mut report = Report::default();
    let original: Value = i
        .archive
        .files
        .get("result.json")
        .map(|b| serde_json::from_slice(b))
        .transpose()
        .map_err(|e| Error::malformed("result.json", e))?
        .ok_or_else(|| Error::malformed("result", "no result.json"))?;

    // Step 1: the layout is the measured image.
    let (measured, mut m) = measure(i.layout, Some(&i.expected.reference))?;
    compare(&measured, i.expected, &mut m);
    let layout_ok = m.passed();
    report.checks.extend(m.checks.into_iter().map(|mut c| {
        c.name = format!("layout: {}", c.name);
        c
    }));

    // Step 2: the result states the measured binary and model.
    let binary = str_at(&original, &["app", "binary_sha256"]).unwrap_or("absent");
    let model = str_at(&original, &["model", "sha256"]).unwrap_or("absent");
    report.checks.push(Check::equal(
        "result.json's binary is the measured one",
        &i.expected.app.sha256,
        binary,
    ));
    let model_known = i.expected.models.iter().any(|x| x.sha256 == model);
    report.checks.push(Check {
        name: "result.json's model is a measured one".into(),
        pass: model_known,
        expected: "a model of measurement.json".into(),
        found: model.into(),
    });
    if !(layout_ok && binary == i.expected.app.sha256 && model_known) {
        return Ok(Replay {
            report,
            summary: "not run: the layout, binary or model is not the measured one".into(),
            stopped_on_time: false,
            ran: String::new(),
        });
    }

    // Step 3: the prompt is the one the result states. Where the clock stopped the original,
    // the replay sets its own length; it always sets its own time.
    let clock = if original["finish_reason"].is_null()
        && str_at(&original, &["status"]) == Some("error")
        && str_at(&original, &["error", "kind"]) == Some("time-budget")
    {
        Clock::BeforePrompt
    } else if str_at(&original, &["finish_reason"]) == Some("time") {
        match original["usage"]["completion_tokens"].as_u64() {
            Some(0) => Clock::BeforeFirstToken,
            Some(n) => Clock::After(n),
            None => {
                return Err(Error::malformed(
                    "result.json",
                    "usage.completion_tokens is not a count of tokens",
                ))
            }
        }
    } else {
        Clock::NotStopped
    };
    let stopped_on_time = clock != Clock::NotStopped;
    let own = own_settings(clock);
    let given = prompt_env(i, &original, &own)?;

    // Step 4: run the measured binary on the measured model.
    let runner = i.runner.resolve();
    let replayed = run(i, &measured, &original, model, given, &own, runner)?;

    // Step 5: compare every deterministic claim.
    let (checks, summary) = claims(&original, &replayed, clock);
    report.checks.extend(checks);
    let ran = if runner == Runner::Runc {
        "under runc"
    } else {
        "directly"
    };
    Ok(Replay {
        report,
        summary: format!("{summary} (ran {ran})"),
        stopped_on_time,
        ran: ran.into(),
    })
}

/// Whether the original stopped on the worker's clock, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// It did not: replayed with its own parameters.
    NotStopped,
    /// After this many tokens (at least one): replayed to that length.
    After(u64),
    /// Before its first token: replayed for one token, to read the prompt as it did.
    BeforeFirstToken,
    /// Before its prompt was read (a `time-budget` error, no finish reason): replayed for one
    /// token, to check what it recorded of the prompt.
    BeforePrompt,
}

/// The parameters a replay sets itself, whatever the original was given: no time limit to
/// speak of (the worker's clock is not replayed), and the original's length where its clock
/// stopped it.
fn own_settings(clock: Clock) -> Vec<(&'static str, String)> {
    let mut own = vec![("time_budget", "86400".to_string())];
    match clock {
        Clock::NotStopped => {}
        Clock::After(n) => own.push(("max_tokens", n.to_string())),
        Clock::BeforeFirstToken | Clock::BeforePrompt => own.push(("max_tokens", "1".into())),
    }
    own
}

/// Environment variables, as bytes (a prompt need not be UTF-8 to be refused cleanly).
type WorkerEnv = Vec<(String, Vec<u8>)>;

/// How the replay hands the prompt over: the worker's variables, the arguments that carry it,
/// and the fields of the protected dataset (the app reads those parameters there, not from
/// the arguments).
struct Given {
    env: WorkerEnv,
    args: Vec<String>,
    in_data: Vec<String>,
}

/// The worker variables that carry the prompt to the app as the original run got it, the
/// arguments that do (a prompt from the arguments), and the dataset's fields; after checking
/// its digest.
fn prompt_env(i: &Inputs<'_>, original: &Value, own: &[(&str, String)]) -> Result<Given, Error> {
    let source = str_at(original, &["prompt", "source"]).unwrap_or("absent");
    let stated = str_at(original, &["prompt", "sha256"]).unwrap_or("absent");
    let refuse = |why: String| Error::malformed("prompt", why);
    let input = i.work.join("iexec_in");
    std::fs::create_dir_all(&input).map_err(|e| Error::io(&input, e))?;
    let mut env: WorkerEnv = Vec::new();
    let mut args = Vec::new();
    let mut in_data = Vec::new();
    match (&i.prompt, source) {
        (PromptInput::ProtectedData(zip), "protected-data") => {
            let (files, dirs) = crate::iexec::archive::read_zip(zip)?;
            let field = files
                .get("prompt")
                .ok_or_else(|| refuse("the protected data has no field \"prompt\"".into()))?;
            let text = protected_text(field);
            if sha(&text) != stated {
                return Err(refuse(format!(
                    "the protected data's prompt has sha256 {}, result.json states {stated}",
                    sha(&text)
                )));
            }
            in_data = files.keys().cloned().collect();
            let zip = with_own_settings(zip, files, dirs, own)?;
            std::fs::write(input.join("dataset"), zip).map_err(|e| Error::io(&input, e))?;
            env.push(("IEXEC_DATASET_FILENAME".into(), b"dataset".to_vec()));
        }
        (PromptInput::Text(t), "args" | "requester-secret" | "dataset" | "input-file") => {
            let text = as_stated(t, stated);
            if sha(&text) != stated {
                return Err(refuse(format!(
                    "the prompt given has sha256 {}, result.json states {stated}: not the prompt of this result",
                    sha(&text)
                )));
            }
            match source {
                "args" => args.push(format!(
                    "prompt={}",
                    String::from_utf8(text).map_err(|_| refuse("not UTF-8".into()))?
                )),
                "requester-secret" => env.push(("IEXEC_REQUESTER_SECRET_1".into(), text)),
                "dataset" => {
                    std::fs::write(input.join("dataset"), &text)
                        .map_err(|e| Error::io(&input, e))?;
                    env.push(("IEXEC_DATASET_FILENAME".into(), b"dataset".to_vec()));
                }
                _ => {
                    std::fs::write(input.join("input-1"), &text)
                        .map_err(|e| Error::io(&input, e))?;
                    env.push(("IEXEC_INPUT_FILES_NUMBER".into(), b"1".to_vec()));
                    env.push(("IEXEC_INPUT_FILE_NAME_1".into(), b"input-1".to_vec()));
                    let folder = input.as_os_str().as_encoded_bytes().to_vec();
                    env.push(("IEXEC_INPUT_FILES_FOLDER".into(), folder));
                }
            }
        }
        (_, s) => {
            return Err(refuse(format!(
                "result.json's prompt came from {s:?}: give it as {}",
                if s == "protected-data" {
                    "--protected-data ZIP"
                } else {
                    "--prompt-file F or --prompt-env VAR"
                }
            )))
        }
    }
    if let Some(stated) = str_at(original, &["prompt", "system_sha256"]) {
        if source != "protected-data" {
            let s = i.system.as_deref().ok_or_else(|| {
                refuse(
                    "result.json has a system prompt: give it (--system-file F; for \
                     check-result, --replay-system-file F)"
                        .into(),
                )
            })?;
            let s = as_stated(s, stated);
            if sha(&s) != stated {
                return Err(refuse(format!(
                    "the system prompt given has sha256 {}, result.json states {stated}",
                    sha(&s)
                )));
            }
            args.push(format!(
                "system={}",
                String::from_utf8(s)
                    .map_err(|_| refuse("the system prompt is not UTF-8".into()))?
            ));
        }
    }
    Ok(Given { env, args, in_data })
}

/// The requester's dataset, as the app is to read it in the replay: unchanged, or, where it
/// carries a parameter the replay sets itself ([`own_settings`]), rewritten with that field
/// as decimal text (both DataProtector formats read an integer so). The app refuses a
/// parameter given both in the arguments and in the data, so these cannot be passed as
/// arguments; every other field keeps its bytes.
fn with_own_settings(
    zip: &[u8],
    mut files: std::collections::BTreeMap<String, Vec<u8>>,
    dirs: std::collections::BTreeSet<String>,
    own: &[(&str, String)],
) -> Result<Vec<u8>, Error> {
    let mut changed = false;
    for (k, v) in own {
        if let Some(f) = files.get_mut(*k) {
            *f = v.clone().into_bytes();
            changed = true;
        }
    }
    if !changed {
        return Ok(zip.to_vec());
    }
    crate::bundle::deterministic_zip(&files, &dirs, Some("prompt"))
}

/// A DataProtector string field: borsh when its length prefix fits, else raw UTF-8.
fn protected_text(v: &[u8]) -> Vec<u8> {
    let borsh = v.get(..4).and_then(|p| {
        let n = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize;
        v.get(4..4usize.checked_add(n)?)
    });
    borsh.unwrap_or(v).to_vec()
}

/// Step 4: extracts the binary and the model by content and runs the binary.
fn run(
    i: &Inputs<'_>,
    measured: &Measured,
    original: &Value,
    model: &str,
    given: Given,
    own: &[(&str, String)],
    runner: Runner,
) -> Result<Value, Error> {
    // The parameters, except those the dataset holds (the app reads them there, the replay's
    // own settings rewritten) and the replay's own settings, given after them. What the
    // dataset holds is read from the zip itself, not from the fields result.json names (those
    // are compared with the replay's record).
    let Given {
        env,
        mut args,
        in_data,
    } = given;
    let from_data = |k: &str| in_data.iter().any(|f| f == k);
    if let Some(p) = original["parameters"].as_object() {
        for (k, v) in p {
            if from_data(k) || own.iter().any(|(o, _)| o == k) {
                continue;
            }
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                return Err(Error::malformed(
                    "result.json",
                    format!(
                        "parameter name {:?} is not one a task passes (a-z and _)",
                        crate::report::printable(k)
                    ),
                ));
            }
            let v = match v {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            args.push(format!("{k}={v}"));
        }
    }
    for (k, v) in own {
        if !from_data(k) {
            args.push(format!("{k}={v}"));
        }
    }
    let out = i.work.join("iexec_out");
    let _ = std::fs::remove_dir_all(&out);
    let engine: Vec<(&String, &String)> = i
        .engine_env
        .iter()
        .filter(|(k, _)| k.starts_with("IEXEC_LLM_"))
        .map(|(k, v)| (k, v))
        .collect();
    if runner == Runner::Runc {
        return run_runc(i, model, env, &args, &engine, &out);
    }
    let bin = i.work.join("iexec-llm");
    // The app records the file's own name; it must be one plain name to be used here.
    let name = str_at(original, &["model", "file"]).unwrap_or("model.gguf");
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::malformed(
            "result.json",
            "model.file is not a plain file name",
        ));
    }
    let model_file = i.work.join(name);
    crate::image::extract::extract(i.layout, &measured.layers, &i.expected.app.sha256, &bin)?;
    crate::image::extract::extract(i.layout, &measured.layers, model, &model_file)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(&bin, e))?;
    let mut c = Command::new(&bin);
    c.env_clear()
        .arg("--model")
        .arg(&model_file)
        .arg("--model-sha256")
        .arg(model)
        .args(&args)
        .env("IEXEC_IN", i.work.join("iexec_in"))
        .env("IEXEC_OUT", &out)
        .env("IEXEC_INPUT_FILES_NUMBER", "0");
    for (k, v) in env {
        use std::os::unix::ffi::OsStringExt;
        c.env(k, std::ffi::OsString::from_vec(v));
    }
    // The kernel path and thread count may be chosen; they never change the bytes.
    for (k, v) in &engine {
        c.env(k, v);
    }
    let o = c.output().map_err(|e| Error::io(&bin, e))?;
    read_result(&out, o.status.code())
}

fn read_result(out: &Path, code: Option<i32>) -> Result<Value, Error> {
    let path = out.join("result.json");
    let bytes = crate::iexec::archive::read_regular(&path, 64 << 20).map_err(|e| {
        Error::malformed(
            "replay",
            format!("the binary wrote no result.json ({e}; exit {code:?})"),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::malformed("replayed result.json", e))
}

/// Step 4 under runc: umoci unpacks the layout (the measured one), the bundle's process is
/// the image's entrypoint with the stated parameters, the worker's variables, `/iexec_in`
/// (read-only) and `/iexec_out` bound in.
fn run_runc(
    i: &Inputs<'_>,
    model: &str,
    env: WorkerEnv,
    args: &[String],
    engine: &[(&String, &String)],
    out: &Path,
) -> Result<Value, Error> {
    let bundle = i.work.join("bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    let tool = |c: &mut Command, what: &str| -> Result<(), Error> {
        let o = c
            .output()
            .map_err(|e| Error::malformed("replay", format!("{what}: {e}")))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(Error::malformed(
                "replay",
                format!(
                    "{what} failed ({:?}): {}",
                    o.status.code(),
                    crate::report::printable(String::from_utf8_lossy(&o.stderr).trim())
                ),
            ))
        }
    };
    let image = format!("{}:{}", i.layout.display(), i.expected.reference);
    tool(
        Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle),
        "umoci unpack",
    )?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let cfg_path = bundle.join("config.json");
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?)
            .map_err(|e| Error::malformed("runc config.json", e))?;
    let host_in = i.work.join("iexec_in");
    // The image's entrypoint, as a worker runs it, then the stated parameters.
    let mut process_args: Vec<String> = cfg["process"]["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if !process_args.iter().any(|a| a == model) {
        let path = i
            .expected
            .models
            .iter()
            .find(|m| m.sha256 == model)
            .map(|m| m.path.clone())
            .unwrap_or_default();
        process_args.extend([
            "--model".into(),
            path,
            "--model-sha256".into(),
            model.into(),
        ]);
    }
    process_args.extend(args.iter().cloned());
    let mut vars = vec![
        "PATH=/app".to_string(),
        "IEXEC_IN=/iexec_in".into(),
        "IEXEC_OUT=/iexec_out".into(),
    ];
    let mut has_files = false;
    for (k, v) in env {
        let v = if v == host_in.as_os_str().as_encoded_bytes() {
            b"/iexec_in".to_vec()
        } else {
            v
        };
        has_files |= k == "IEXEC_INPUT_FILES_NUMBER";
        let v = String::from_utf8(v)
            .map_err(|_| Error::malformed("prompt", "not UTF-8: a worker passes text"))?;
        vars.push(format!("{k}={v}"));
    }
    if !has_files {
        vars.push("IEXEC_INPUT_FILES_NUMBER=0".into());
    }
    vars.extend(engine.iter().map(|(k, v)| format!("{k}={v}")));
    let p = &mut cfg["process"];
    p["args"] = process_args.into();
    p["env"] = vars.into();
    p["terminal"] = false.into();
    p["rlimits"] = Value::Array(Vec::new());
    let bind = |src: &Path, dst: &str, mode: &str| {
        serde_json::json!({"destination": dst, "type": "bind",
                           "source": src, "options": ["rbind", mode]})
    };
    let Some(mounts) = cfg["mounts"].as_array_mut() else {
        return Err(Error::malformed("runc config.json", "no mounts"));
    };
    mounts.push(bind(&host_in, "/iexec_in", "ro"));
    mounts.push(bind(out, "/iexec_out", "rw"));
    let bytes = serde_json::to_vec(&cfg).map_err(|e| Error::malformed("runc config.json", e))?;
    std::fs::write(&cfg_path, bytes).map_err(|e| Error::io(&cfg_path, e))?;
    // One container per replay: two replays of one process (threads of a library user, or of
    // a test binary) must not share a name, or one's `runc delete` stops the other.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("verifier-replay-{}-{n}", std::process::id());
    let o = Command::new("runc")
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output();
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    let o = o.map_err(|e| Error::malformed("replay", format!("runc run: {e}")))?;
    let _ = std::fs::remove_dir_all(&bundle);
    read_result(out, o.status.code())
}

/// Step 5: the deterministic claims, compared; and the summary line.
fn claims(original: &Value, replayed: &Value, clock: Clock) -> (Vec<Check>, String) {
    let mut checks = Vec::new();
    let mut first: Option<String> = None;
    let mut compare = |name: &str, a: &Value, b: &Value| {
        let same = a == b;
        let found = if same {
            "identical".to_string()
        } else {
            match (a.as_str(), b.as_str()) {
                (Some(x), Some(y)) => {
                    let at = x.bytes().zip(y.bytes()).take_while(|(p, q)| p == q).count();
                    format!("differs from byte {at} ({} and {} bytes)", x.len(), y.len())
                }
                _ => format!("{} (replayed {})", short(a), short(b)),
            }
        };
        if !same && first.is_none() {
            first = Some(format!("{name} {found}"));
        }
        // Text (the answer, the reasoning) is described by its length, never shown.
        let expected = match a.as_str() {
            _ if same => found.clone(),
            Some(x) => format!("the original's {} bytes", x.len()),
            None => short(a),
        };
        checks.push(Check {
            name: format!("replayed {name}"),
            pass: same,
            expected,
            found,
        });
    };
    for key in ["schema", "model", "app"] {
        compare(key, &original[key], &replayed[key]);
    }
    let mut prompt_record = replayed["prompt"].clone();
    if matches!(clock, Clock::BeforeFirstToken | Clock::BeforePrompt) {
        // Nothing was generated: the original's text must be what no token gives, its only
        // error the clock's, and the replay (which had the time) must have read the prompt and
        // gone on. The prompt record says whether the answer opens `<think>`.
        let opens_think = original["prompt"]
            .get("think")
            .is_some_and(|t| !t.is_null());
        // A template may open `<think>` on a model the app does not call a reasoning model
        // (no `think` recorded): its empty reasoning is then "" too, which hides nothing.
        let none = match (&original["reasoning"], opens_think, clock) {
            (_, true, Clock::BeforeFirstToken) => Value::from(""),
            (r, false, Clock::BeforeFirstToken) if r == "" => Value::from(""),
            _ => Value::Null,
        };
        compare("answer (none)", &original["answer"], &Value::from(""));
        compare("reasoning (none)", &original["reasoning"], &none);
        let stopped = |v: &Value| match (v["status"].as_str(), v["error"]["kind"].as_str()) {
            (Some("ok"), None) if v["error"].is_null() => Value::from("ok"),
            (Some("error"), Some("time-budget"))
                if v["error"].as_object().is_some_and(|e| {
                    e.len() == 2 && e.get("message").is_some_and(Value::is_string)
                }) =>
            {
                Value::from("error: time-budget")
            }
            // Never one of the two above: the error record as it is.
            (s, _) => Value::from(format!(
                "status {} with error {}",
                s.unwrap_or("absent"),
                short(&v["error"])
            )),
        };
        let by_the_clock = stopped(original);
        let fine = match (clock, by_the_clock.as_str()) {
            (Clock::BeforeFirstToken, Some("ok")) | (_, Some("error: time-budget")) => {
                by_the_clock.clone()
            }
            (Clock::BeforeFirstToken, _) => Value::from("ok, or error: time-budget"),
            _ => Value::from("error: time-budget"),
        };
        compare("status and error (the clock's)", &fine, &by_the_clock);
        compare("status (replay)", &Value::from("ok"), &stopped(replayed));
        let first_token = match replayed["finish_reason"].as_str() {
            Some("length" | "eos") => replayed["finish_reason"].clone(),
            _ => Value::from("length or eos"),
        };
        compare(
            "finish_reason (replay)",
            &first_token,
            &replayed["finish_reason"],
        );
        if clock == Clock::BeforeFirstToken {
            compare(
                "usage (the prompt's tokens, none generated)",
                &original["usage"],
                &serde_json::json!({"prompt_tokens": replayed["usage"]["prompt_tokens"],
                                    "completion_tokens": 0}),
            );
        } else {
            // The prompt was never tokenized: no count, and no word on `<think>` yet.
            compare(
                "usage (none)",
                &original["usage"],
                &serde_json::json!({"prompt_tokens": 0, "completion_tokens": 0}),
            );
            if let Some(r) = prompt_record.as_object_mut() {
                r.remove("think");
            }
            // Only a chat template is rendered before the prompt is read.
            compare(
                "parameters.template (a template was rendered)",
                &original["parameters"]["template"],
                &Value::from("chat"),
            );
        }
    } else {
        for key in ["status", "answer", "reasoning", "error"] {
            compare(key, &original[key], &replayed[key]);
        }
        let finish = if clock == Clock::NotStopped {
            original["finish_reason"].clone()
        } else {
            Value::from("length")
        };
        compare("finish_reason", &finish, &replayed["finish_reason"]);
        compare("usage", &original["usage"], &replayed["usage"]);
    }
    let mut params = original["parameters"].clone();
    let mut again = replayed["parameters"].clone();
    for p in [&mut params, &mut again] {
        if let Some(m) = p.as_object_mut() {
            m.remove("time_budget");
            if clock != Clock::NotStopped {
                m.remove("max_tokens");
            }
        }
    }
    compare("parameters (but time_budget)", &params, &again);
    // What is not replayed must still be a value the app takes: a time budget in its range,
    // and, where the clock stopped the original, a length it had not reached.
    let int = |v: &Value| v.as_u64();
    let budget = &original["parameters"]["time_budget"];
    let budget_ok = int(budget).is_some_and(|b| (1..=86400).contains(&b));
    compare(
        "parameters.time_budget (1 to 86400 s)",
        &(if budget_ok {
            budget.clone()
        } else {
            Value::from("1 to 86400")
        }),
        budget,
    );
    if clock != Clock::NotStopped {
        let max = &original["parameters"]["max_tokens"];
        let done = int(&original["usage"]["completion_tokens"]).unwrap_or(0);
        let max_ok = int(max).is_some_and(|m| m > done && m <= 32768);
        compare(
            "parameters.max_tokens (more than were generated)",
            &(if max_ok {
                max.clone()
            } else {
                Value::from(format!("{} to 32768", done + 1))
            }),
            max,
        );
    }
    compare("prompt record", &original["prompt"], &prompt_record);
    let summary = match (first, clock) {
        (Some(d), _) => format!("differs: {d}"),
        (None, Clock::NotStopped) => "identical".into(),
        (None, Clock::After(_)) => {
            "identical (the original stopped on the worker's clock: replayed to its length)".into()
        }
        (None, Clock::BeforeFirstToken) => "identical as far as the original went (it stopped \
             on the worker's clock before its first token, so it has no text to replay: its \
             prompt record, prompt tokens, parameters, model and binary are the replay's)"
            .into(),
        (None, Clock::BeforePrompt) => "identical as far as the original went (it stopped on \
             the worker's clock before its prompt was read, so it has no text to replay: its \
             prompt's digests, parameters, model and binary are the replay's)"
            .into(),
    };
    (checks, summary)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}… ({} bytes)",
            s.chars().take(100).collect::<String>(),
            s.len()
        )
    } else {
        s
    }
}

/// A fresh scratch directory for a replay.
///
/// # Errors
/// [`Error::Io`] if it cannot be made.
pub fn scratch() -> Result<PathBuf, Error> {
    fresh_private_dir("verifier-replay")
}

/// A new directory under the temporary directory, mode 0700, that did not exist before (a
/// path someone else made first is never used).
///
/// # Errors
/// [`Error::Io`] if none can be made.
pub fn fresh_private_dir(prefix: &str) -> Result<PathBuf, Error> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let mut last = None;
    for n in 0..64u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let d = base.join(format!("{prefix}-{}-{nanos}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&d) {
            Ok(()) => return Ok(d),
            Err(e) => last = Some((d, e)),
        }
    }
    let (d, e) = last.unwrap_or_else(|| (base.clone(), std::io::Error::other("no attempt")));
    Err(Error::io(&d, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// What the app writes for a task that stopped on the clock before its first token, and
    /// what its one-token replay writes.
    fn stopped_before_first_token(think: Option<&str>) -> (Value, Value) {
        let prompt = match think {
            Some(t) => json!({"source": "requester-secret", "sha256": "ab", "system_sha256": null,
                              "think": t}),
            None => json!({"source": "requester-secret", "sha256": "ab", "system_sha256": null}),
        };
        let reasoning = think.map(|_| "");
        let original = json!({
            "schema": "iexec-llm/result/v1", "status": "ok", "answer": "",
            "reasoning": reasoning, "finish_reason": "time",
            "usage": {"prompt_tokens": 30, "completion_tokens": 0},
            "parameters": {"max_tokens": 512, "temperature": 0.0, "seed": 1, "time_budget": 3,
                           "template": "chat"},
            "prompt": prompt, "model": {"file": "m.gguf", "sha256": "cd"},
            "app": {"version": "0.1.0", "binary_sha256": "ef"}, "error": null,
        });
        let mut replayed = original.clone();
        replayed["answer"] = if think.is_some() { "" } else { "Hello" }.into();
        replayed["reasoning"] = think.map(|_| "Hmm").into();
        replayed["finish_reason"] = "length".into();
        replayed["usage"]["completion_tokens"] = 1.into();
        replayed["parameters"]["max_tokens"] = 1.into();
        replayed["parameters"]["time_budget"] = 86400.into();
        (original, replayed)
    }

    fn failures(c: &[Check]) -> Vec<&str> {
        c.iter()
            .filter(|c| !c.pass)
            .map(|c| c.name.as_str())
            .collect()
    }

    #[test]
    fn a_result_stopped_before_its_first_token_is_checked_on_what_it_claims() {
        for think in [None, Some("template"), Some("forced")] {
            let (original, replayed) = stopped_before_first_token(think);
            let (c, summary) = claims(&original, &replayed, Clock::BeforeFirstToken);
            assert_eq!(failures(&c), Vec::<&str>::new(), "{think:?}");
            assert!(summary.contains("before its first token"), "{summary}");
            // The prompt was not read in time: an error of the clock's kind, still no text.
            let mut e = original.clone();
            e["status"] = "error".into();
            e["error"] = json!({"kind": "time-budget", "message": "the prompt's 30 tokens …"});
            let (c, _) = claims(&e, &replayed, Clock::BeforeFirstToken);
            assert_eq!(failures(&c), Vec::<&str>::new(), "{think:?}");
            // The replay's one token may end the answer.
            let mut eos = replayed.clone();
            eos["finish_reason"] = "eos".into();
            eos["usage"]["completion_tokens"] = 0.into();
            let (c, _) = claims(&original, &eos, Clock::BeforeFirstToken);
            assert_eq!(failures(&c), Vec::<&str>::new(), "{think:?}");
        }
        // A template that opens `<think>` on a model not known to reason: its empty
        // reasoning is "" with no `think` recorded.
        let (mut original, replayed) = stopped_before_first_token(None);
        original["reasoning"] = "".into();
        let (c, _) = claims(&original, &replayed, Clock::BeforeFirstToken);
        assert_eq!(failures(&c), Vec::<&str>::new());
    }

    #[test]
    fn a_result_stopped_before_its_first_token_cannot_carry_text_or_another_error() {
        type Tamper = fn(&mut Value, &mut Value);
        let cases: &[(&str, Option<&str>, Tamper, &str)] = &[
            (
                "an answer",
                None,
                |o, _| o["answer"] = "Paris.".into(),
                "replayed answer (none)",
            ),
            (
                "reasoning on a model that does not think",
                None,
                |o, _| o["reasoning"] = "I think".into(),
                "replayed reasoning (none)",
            ),
            (
                "an error message that is not text",
                None,
                |o, _| {
                    o["status"] = "error".into();
                    o["error"] = json!({"kind": "time-budget", "message": 3});
                },
                "replayed status and error (the clock's)",
            ),
            (
                "an error with more than its kind and message",
                None,
                |o, _| {
                    o["status"] = "error".into();
                    o["error"] = json!({"kind": "time-budget", "message": "x", "note": "y"});
                },
                "replayed status and error (the clock's)",
            ),
            (
                "a usage with more than its counts",
                None,
                |o, _| o["usage"]["cached_tokens"] = 3.into(),
                "replayed usage (the prompt's tokens, none generated)",
            ),
            (
                "some tokens counted",
                None,
                |o, _| o["usage"]["completion_tokens"] = 2.into(),
                "replayed usage (the prompt's tokens, none generated)",
            ),
            (
                "a time budget the app does not take",
                None,
                |o, _| o["parameters"]["time_budget"] = "lots".into(),
                "replayed parameters.time_budget (1 to 86400 s)",
            ),
            (
                "a time budget of none",
                None,
                |o, _| o["parameters"]["time_budget"] = 0.into(),
                "replayed parameters.time_budget (1 to 86400 s)",
            ),
            (
                "a length that is not a count",
                None,
                |o, _| o["parameters"]["max_tokens"] = "x".into(),
                "replayed parameters.max_tokens (more than were generated)",
            ),
            (
                "a length of none",
                None,
                |o, _| o["parameters"]["max_tokens"] = 0.into(),
                "replayed parameters.max_tokens (more than were generated)",
            ),
            (
                "a replay that ended otherwise",
                None,
                |_, r| r["finish_reason"] = "time".into(),
                "replayed finish_reason (replay)",
            ),
            (
                "reasoning text",
                Some("template"),
                |o, _| o["reasoning"] = "I think".into(),
                "replayed reasoning (none)",
            ),
            (
                "no reasoning on a model that thinks",
                Some("forced"),
                |o, _| o["reasoning"] = Value::Null,
                "replayed reasoning (none)",
            ),
            (
                "an error that is not the clock's",
                None,
                |o, _| {
                    o["status"] = "error".into();
                    o["error"] = json!({"kind": "model-file", "message": "x"});
                },
                "replayed status and error (the clock's)",
            ),
            (
                "an error beside status ok",
                None,
                |o, _| o["error"] = json!({"kind": "time-budget", "message": "x"}),
                "replayed status and error (the clock's)",
            ),
            (
                "a time-budget error with no kind",
                None,
                |o, _| {
                    o["status"] = "error".into();
                    o["error"] = json!({"message": "time-budget"});
                },
                "replayed status and error (the clock's)",
            ),
            (
                "another prompt length",
                None,
                |o, _| o["usage"]["prompt_tokens"] = 31.into(),
                "replayed usage (the prompt's tokens, none generated)",
            ),
            (
                "a prompt the replay could not read",
                None,
                |_, r| {
                    r["status"] = "error".into();
                    r["error"] = json!({"kind": "prompt-too-long", "message": "x"});
                    r["finish_reason"] = Value::Null;
                },
                "replayed status (replay)",
            ),
            (
                "another system prompt",
                None,
                |o, _| o["prompt"]["system_sha256"] = "00".into(),
                "replayed prompt record",
            ),
            (
                "another temperature",
                None,
                |o, _| o["parameters"]["temperature"] = 0.5.into(),
                "replayed parameters (but time_budget)",
            ),
            (
                "another model",
                None,
                |o, _| o["model"]["sha256"] = "00".into(),
                "replayed model",
            ),
        ];
        for (what, think, tamper, named) in cases {
            let (mut original, mut replayed) = stopped_before_first_token(*think);
            tamper(&mut original, &mut replayed);
            let (c, summary) = claims(&original, &replayed, Clock::BeforeFirstToken);
            assert!(failures(&c).contains(named), "{what}: {:?}", failures(&c));
            assert!(summary.starts_with("differs: "), "{what}: {summary}");
        }
    }

    /// What the app writes when the clock ran out before the prompt was read (the chat
    /// template not rendered in time).
    fn stopped_before_the_prompt(think: Option<&str>) -> (Value, Value) {
        let (mut original, replayed) = stopped_before_first_token(think);
        original["finish_reason"] = Value::Null;
        original["reasoning"] = Value::Null;
        original["usage"]["prompt_tokens"] = 0.into();
        original["status"] = "error".into();
        original["error"] = json!({"kind": "time-budget", "message": "the prompt cannot be read"});
        if let Some(r) = original["prompt"].as_object_mut() {
            r.remove("think");
        }
        (original, replayed)
    }

    #[test]
    fn a_result_stopped_before_its_prompt_was_read_is_checked_on_what_it_claims() {
        for think in [None, Some("template")] {
            let (original, replayed) = stopped_before_the_prompt(think);
            let (c, summary) = claims(&original, &replayed, Clock::BeforePrompt);
            assert_eq!(failures(&c), Vec::<&str>::new(), "{think:?}");
            assert!(summary.contains("before its prompt was read"), "{summary}");
        }
        type Tamper = fn(&mut Value);
        let cases: &[(&str, Tamper, &str)] = &[
            (
                "an answer",
                |o| o["answer"] = "Paris.".into(),
                "replayed answer (none)",
            ),
            (
                "reasoning",
                |o| o["reasoning"] = "".into(),
                "replayed reasoning (none)",
            ),
            (
                "a prompt count",
                |o| o["usage"]["prompt_tokens"] = 30.into(),
                "replayed usage (none)",
            ),
            (
                "a think record it cannot have made",
                |o| o["prompt"]["think"] = "forced".into(),
                "replayed prompt record",
            ),
            (
                "another prompt",
                |o| o["prompt"]["sha256"] = "00".into(),
                "replayed prompt record",
            ),
            (
                "no template to render",
                |o| o["parameters"]["template"] = "raw".into(),
                "replayed parameters.template (a template was rendered)",
            ),
            (
                "a length it could not have reached",
                |o| o["parameters"]["max_tokens"] = 0.into(),
                "replayed parameters.max_tokens (more than were generated)",
            ),
        ];
        for (what, tamper, named) in cases {
            let (mut original, replayed) = stopped_before_the_prompt(Some("template"));
            tamper(&mut original);
            let (c, summary) = claims(&original, &replayed, Clock::BeforePrompt);
            assert!(failures(&c).contains(named), "{what}: {:?}", failures(&c));
            assert!(summary.starts_with("differs: "), "{what}: {summary}");
        }
    }

    #[test]
    fn a_result_with_tokens_is_never_judged_as_one_without() {
        // The same pair judged as a result that stopped after its tokens: the replay's text
        // and token counts are compared, so it fails.
        let (original, replayed) = stopped_before_first_token(None);
        let (c, _) = claims(&original, &replayed, Clock::After(1));
        let f = failures(&c);
        assert!(f.contains(&"replayed answer"), "{f:?}");
        assert!(f.contains(&"replayed usage"), "{f:?}");
    }
}
