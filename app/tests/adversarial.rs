//! The app under hostile inputs. One property for all of them: whatever the input, the
//! process ends, under a 6 GiB address-space cap (an iExec TDX worker's memory), with exit
//! status 0, a `computed.json` and a complete `result.json` (an answer or an error record
//! that names the problem). Each case is also held to its own reason.
//!
//! No case asserts a duration: the run is stopped and the test fails if it has not ended
//! [`HANG_GUARD`] after its time budget (the app stops at its deadline; the guard only tells a
//! hang from a slow machine).

use crate::common::*;
use serde_json::Value;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An iExec TDX worker's memory.
const MEMORY_CAP: u64 = 6 << 30;
/// How long past its time budget a run may go before it counts as hung.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Limits for one run of the binary.
#[derive(Clone, Copy, Default)]
struct Limits {
    /// Largest file the process may write (RLIMIT_FSIZE), SIGXFSZ ignored: writes past it
    /// fail as on a full disk.
    file_size: Option<u64>,
}

fn run_limited(w: &Worker, args: &[&str], budget: u64, limits: Limits) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iexec-llm"));
    c.env_clear().args(args);
    for (k, v) in &w.env {
        c.env(k, v);
    }
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let cap = |r, v| {
                let l = libc::rlimit {
                    rlim_cur: v,
                    rlim_max: v,
                };
                libc::setrlimit(r, &l)
            };
            cap(libc::RLIMIT_AS, MEMORY_CAP);
            if let Some(f) = limits.file_size {
                cap(libc::RLIMIT_FSIZE, f);
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    let mut child = c.spawn().unwrap();
    let give_up = Instant::now() + Duration::from_secs(budget) + HANG_GUARD;
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || std::io::read_to_string(&mut so).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(&mut se).unwrap_or_default());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("{args:?}: still running {HANG_GUARD:?} after its {budget} s budget");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        out: w.out(),
    }
}

/// The property: exit 0, `computed.json`, a complete `result.json` of `kind` (`None`: an
/// answer) whose message names the problem.
fn assert_ends_with_a_result(run: &Run, what: &str, kind: Option<&str>, message: &str) {
    assert_eq!(run.code, Some(0), "{what}: stderr: {}", run.stderr);
    let c = run.computed();
    assert_eq!(
        c["deterministic-output-path"], "/iexec_out/result.json",
        "{what}"
    );
    let r: Value = run.result();
    assert_eq!(r["schema"], "iexec-llm/result/v1", "{what}");
    match kind {
        None => assert_eq!(r["status"], "ok", "{what}: {r}"),
        Some(k) => {
            assert_eq!(r["status"], "error", "{what}: {r}");
            assert_eq!(r["error"]["kind"], k, "{what}: {r}");
            let m = r["error"]["message"].as_str().unwrap();
            assert!(m.contains(message), "{what}: {m:?} lacks {message:?}");
            assert_eq!(c["error-message"], m, "{what}");
        }
    }
}

/// The tiny synthetic Qwen2 with another chat template, and its sha256.
fn qwen2_with_template(dir: &Path, name: &str, template: &str) -> (PathBuf, String) {
    let p = dir.join(format!("{name}.gguf"));
    gguf_synth::write(&gguf_synth::Spec::tiny_qwen2(), 0, template, &p, |_| {}).unwrap();
    let sha = sha256_file(&p);
    (p, sha)
}

/// A GGUF whose metadata holds one array of `n` one-byte values: `n` bytes on disk, 32 per
/// value once read naively.
fn gguf_with_big_array(path: &Path, n: u64) -> String {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(b"GGUF").unwrap();
    f.write_all(&3u32.to_le_bytes()).unwrap();
    f.write_all(&0u64.to_le_bytes()).unwrap();
    f.write_all(&1u64.to_le_bytes()).unwrap();
    let key = b"general.junk";
    f.write_all(&(key.len() as u64).to_le_bytes()).unwrap();
    f.write_all(key).unwrap();
    f.write_all(&9u32.to_le_bytes()).unwrap(); // array
    f.write_all(&0u32.to_le_bytes()).unwrap(); // of u8
    f.write_all(&n.to_le_bytes()).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..k]).unwrap();
        left -= k as u64;
    }
    drop(f);
    sha256_file(path)
}

#[test]
fn every_hostile_input_ends_with_a_complete_result_under_the_memory_cap() {
    let scratch = tempdir("hostile-models");
    let smol = smollm2();
    let smol = smol.to_str().unwrap();
    let long_prompt = "the quick brown fox jumps over the lazy dog ".repeat(450); // ~4,000 tokens
    let longer_prompt = "the quick brown fox jumps over the lazy dog ".repeat(880); // ~7,900
    let (forever, forever_sha) = qwen2_with_template(
        &scratch,
        "forever",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    );
    let (doubling, doubling_sha) = qwen2_with_template(
        &scratch,
        "doubling",
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}\
         {% endfor %}{{ ns.s }}{{ messages[0].content }}",
    );
    let (huge, huge_sha) = qwen2_with_template(&scratch, "huge", "{{ 'x' * 100000000 }}");
    let big_array = scratch.join("array.gguf");
    let big_array_sha = gguf_with_big_array(&big_array, 100 << 20);

    type Case<'a> = (
        &'a str,
        Vec<String>,
        Vec<(&'static str, OsString)>,
        u64,
        Option<&'a str>,
        &'a str,
    );
    let model = |path: &str, sha: &str| -> Vec<String> {
        vec![
            "--model".into(),
            path.into(),
            "--model-sha256".into(),
            sha.into(),
        ]
    };
    let with = |mut m: Vec<String>, rest: &[&str]| {
        m.extend(rest.iter().map(|s| s.to_string()));
        m
    };
    let smol_args = |rest: &[&str]| with(model(smol, SMOLLM2_SHA256), rest);
    let cases: Vec<Case<'_>> = vec![
        (
            "a 4,000-token prompt with time_budget=2",
            smol_args(&["time_budget=2", "context=8192", &long_prompt]),
            vec![],
            2,
            Some("time-budget"),
            "cannot be read within time_budget=2 s",
        ),
        (
            "a 7,900-token prompt with time_budget=5",
            smol_args(&["time_budget=5", "context=8192", &longer_prompt]),
            vec![],
            5,
            Some("time-budget"),
            "cannot be read within time_budget=5 s",
        ),
        (
            "100 MiB of one-byte metadata values",
            with(model(big_array.to_str().unwrap(), &big_array_sha), &["hi"]),
            vec![],
            270,
            Some("malformed-gguf"),
            "more than 4194304 metadata values",
        ),
        (
            "a chat template that never ends",
            with(model(forever.to_str().unwrap(), &forever_sha), &["hi"]),
            vec![],
            270,
            Some("chat-template"),
            "more than 1000000 instructions",
        ),
        (
            "a chat template whose string doubles until memory is gone",
            with(model(doubling.to_str().unwrap(), &doubling_sha), &["hi"]),
            vec![],
            270,
            Some("chat-template"),
            "the template process died",
        ),
        (
            "a chat template writing 100 MB",
            with(model(huge.to_str().unwrap(), &huge_sha), &["hi"]),
            vec![],
            270,
            Some("chat-template"),
            "bytes of output",
        ),
        (
            "a dataset named by an absolute path",
            smol_args(&[]),
            vec![("IEXEC_DATASET_FILENAME", "/proc/self/environ".into())],
            270,
            Some("input"),
            "must be a plain file name",
        ),
        (
            "a dataset that never ends (/dev/zero)",
            smol_args(&[]),
            vec![
                ("IEXEC_IN", "/dev".into()),
                ("IEXEC_DATASET_FILENAME", "zero".into()),
            ],
            270,
            Some("input"),
            "is not a regular file",
        ),
        (
            "a temperature of 1e-300 (greedy)",
            smol_args(&["temperature=1e-300", "max_tokens=8", "hi"]),
            vec![],
            270,
            None,
            "",
        ),
    ];
    for (what, args, env, budget, kind, message) in &cases {
        let mut w = Worker::new("hostile");
        for (k, v) in env {
            w.set(k, v.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_limited(&w, &args, *budget, Limits::default());
        assert_ends_with_a_result(&run, what, *kind, message);
    }

    // A FIFO as the dataset is refused without waiting for a writer.
    let mut w = Worker::new("fifo");
    let fifo = w.dir.join("in/fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    w.set("IEXEC_DATASET_FILENAME", "fifo");
    let run = run_limited(&w, &args_of(&smol_args(&[])), 270, Limits::default());
    assert_ends_with_a_result(
        &run,
        "a FIFO dataset",
        Some("input"),
        "is not a regular file",
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

fn args_of(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_tiny_temperature_is_greedy_and_the_environment_never_reaches_the_result() {
    let smol = smollm2();
    let base = [
        "--model",
        smol.to_str().unwrap(),
        "--model-sha256",
        SMOLLM2_SHA256,
        "max_tokens=12",
        "seed=3",
    ];
    let result = |extra: &[&str], env: &[(&'static str, &str)]| {
        let mut w = Worker::new("tiny-t");
        for (k, v) in env {
            w.set(k, *v);
        }
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let run = run_limited(&w, &args, 270, Limits::default());
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let mut r = run.result();
        r["parameters"]["temperature"] = Value::Null;
        r
    };
    let greedy = result(&["temperature=0", "hi"], &[]);
    for t in ["1e-300", "1e-5"] {
        let arg = format!("temperature={t}");
        assert_eq!(result(&[&arg, "hi"], &[]), greedy, "temperature={t}");
    }
    // A failing task's result.json is the same bytes with RUST_BACKTRACE set.
    let failing = [
        "context=16",
        "a prompt longer than sixteen tokens once the template adds its own",
    ];
    let plain = result(&failing, &[]);
    assert_eq!(plain["error"]["kind"], "prompt-too-long");
    assert_eq!(result(&failing, &[("RUST_BACKTRACE", "1")]), plain);
}

#[test]
fn a_full_disk_leaves_the_old_result_or_none_and_says_so() {
    let smol = smollm2();
    let args = [
        "--model",
        smol.to_str().unwrap(),
        "--model-sha256",
        SMOLLM2_SHA256,
        "max_tokens=4",
        "hi",
    ];
    // No room for result.json: no result.json, no computed.json, exit 2 (nothing to publish).
    let w = Worker::new("full");
    let run = run_limited(
        &w,
        &args,
        270,
        Limits {
            file_size: Some(200),
        },
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(!w.out().join("result.json").exists());
    assert!(!w.out().join("computed.json").exists());
    assert!(
        run.stderr.contains("error: output: cannot write"),
        "{}",
        run.stderr
    );
    // A complete result from before stays whole.
    std::fs::write(w.out().join("result.json"), b"{\"earlier\": true}\n").unwrap();
    let run = run_limited(
        &w,
        &args,
        270,
        Limits {
            file_size: Some(200),
        },
    );
    assert_eq!(run.code, Some(2));
    assert_eq!(
        std::fs::read(w.out().join("result.json")).unwrap(),
        b"{\"earlier\": true}\n"
    );
    let leftovers: Vec<_> = std::fs::read_dir(w.out())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["result.json"], "temporary files left behind");
}
