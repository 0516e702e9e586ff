//! The chat template comes from the model file and runs code (Jinja): a loop that never ends,
//! or strings that double until memory is gone, would kill the task before it writes a
//! result. minijinja's fuel and the engine's output cap bound most of it; what they cannot
//! bound (memory held by a template's own values) is bounded here, by rendering in a child
//! process of this same binary with limits of its own:
//!
//! - address space [`CHILD_MEMORY`] and CPU time [`CHILD_SECONDS`] (`setrlimit` in the child),
//!   and the same wall-clock limit enforced by the parent, which kills a child past it;
//! - an empty environment: the child never sees a requester secret, and only the template,
//!   the BOS/EOS names and whether a system message is present reach it (placeholders stand
//!   for the user's and system's text, which stay in the parent).
//!
//! The child is this binary with [`CHILD_ARG`] as its only argument: it reads one JSON request
//! on stdin and writes one JSON answer on stdout.

use engine::template::{render_marked, MAX_TEMPLATE_OUTPUT};
use engine::Error;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The argument that makes the binary the template child.
pub const CHILD_ARG: &str = "--render-chat-template-in-child";
/// Address space the child may use.
pub const CHILD_MEMORY: u64 = 1 << 30;
/// Seconds the child may run (CPU and wall clock).
pub const CHILD_SECONDS: u64 = 30;
/// Largest request: a template of a few KiB, 16 MiB at most.
const MAX_REQUEST: u64 = 16 << 20;

fn failed(why: impl std::fmt::Display) -> Error {
    Error::Template(format!("cannot render: {why}"))
}

/// Why [`render`] gave no text.
#[derive(Debug)]
pub enum Failed {
    /// The task's deadline came before the template finished (no child is started past it):
    /// the time budget's failure, not the template's.
    Deadline,
    /// The template failed, or the child ran past its own memory or time.
    Template(Error),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Failed::Template(e)
    }
}

/// Renders as [`render_marked`] does, in a child process with bounded memory and time; the
/// child is stopped at `deadline` (the task's) if that comes before its own limit.
///
/// # Errors
/// [`Failed::Deadline`] when `deadline` has passed or stops the child;
/// [`Failed::Template`] when the template fails, or the child runs out of memory or of its
/// own [`CHILD_SECONDS`].
pub fn render(
    template: &str,
    bos: &str,
    eos: &str,
    system: bool,
    deadline: Instant,
) -> Result<String, Failed> {
    if Instant::now() >= deadline {
        return Err(Failed::Deadline);
    }
    let exe =
        std::env::current_exe().map_err(|e| failed(format!("no path to this binary: {e}")))?;
    let mut child = Command::new(exe)
        .arg(CHILD_ARG)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("cannot start the template process: {e}")))?;
    let request = json!({ "template": template, "bos": bos, "eos": eos, "system": system });
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| failed("no pipe to the child"))?;
    let writer = std::thread::spawn(move || stdin.write_all(request.to_string().as_bytes()));
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| failed("no pipe from the child"))?;
    // JSON escaping at most multiplies the output by six.
    let limit = (MAX_TEMPLATE_OUTPUT as u64) * 6 + 4096;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        (&mut stdout).take(limit).read_to_end(&mut out).map(|_| out)
    });
    let cap = Instant::now() + Duration::from_secs(CHILD_SECONDS);
    let stop = deadline.min(cap);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < stop => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(if deadline < cap {
                    Failed::Deadline
                } else {
                    failed(format!("the template ran for more than {CHILD_SECONDS} s")).into()
                });
            }
            Err(e) => return Err(failed(e).into()),
        }
    };
    let _ = writer.join();
    let out = reader
        .join()
        .map_err(|_| failed("the reader thread failed"))?
        .map_err(failed)?;
    if !status.success() {
        return Err(failed(format!(
            "the template process died ({status}): more than {} MiB or {CHILD_SECONDS} s of CPU",
            CHILD_MEMORY >> 20
        ))
        .into());
    }
    let answer: Value =
        serde_json::from_slice(&out).map_err(|e| failed(format!("bad answer: {e}")))?;
    match (answer["ok"].as_str(), answer["error"].as_str()) {
        (Some(text), _) => Ok(text.to_string()),
        (None, Some(e)) => Err(Error::Template(e.to_string()).into()),
        _ => Err(failed("bad answer").into()),
    }
}

/// The child: limits itself, renders one request, answers. Returns the exit status.
pub fn child() -> u8 {
    limit(libc::RLIMIT_AS, CHILD_MEMORY);
    limit(libc::RLIMIT_CPU, CHILD_SECONDS);
    let mut input = Vec::new();
    if std::io::stdin()
        .take(MAX_REQUEST)
        .read_to_end(&mut input)
        .is_err()
    {
        return 2;
    }
    let answer = match serde_json::from_slice::<Value>(&input) {
        Err(e) => json!({ "error": format!("chat template: bad request: {e}") }),
        Ok(r) => match render_marked(
            r["template"].as_str().unwrap_or_default(),
            r["bos"].as_str().unwrap_or_default(),
            r["eos"].as_str().unwrap_or_default(),
            r["system"].as_bool().unwrap_or(false),
        ) {
            Ok(text) => json!({ "ok": text }),
            Err(e) => json!({ "error": e.to_string().trim_start_matches("chat template: ") }),
        },
    };
    let mut so = std::io::stdout().lock();
    match so
        .write_all(answer.to_string().as_bytes())
        .and_then(|_| so.flush())
    {
        Ok(()) => 0,
        Err(_) => 2,
    }
}

fn limit(resource: libc::__rlimit_resource_t, value: u64) {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limits.
    unsafe {
        libc::setrlimit(resource, &lim);
    }
}
