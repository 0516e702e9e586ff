//! `verifier replay`: a task run by the image's binary, replayed by the verifier from the
//! image layout alone, on every kernel path and thread count; every tamper named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use verifier::iexec::archive::ResultArchive;
use verifier::replay::{replay, PromptInput, Replay, Runner};

const PROMPT: &str = "Write a short poem about the sea.";

/// An image, and a task run by its binary as a worker runs it (prompt in a requester secret).
struct Task {
    oci: PathBuf,
    expected: oci_image::Measurement,
    out: PathBuf,
}

/// An image holding the static app and SmolLM2, and its measurement.
fn image(tag: &str) -> (PathBuf, oci_image::Measurement) {
    let oci = tempdir(tag).join("oci");
    let expected = oci_image::build(
        &spec(&static_app(), vec![(smollm2(), SMOLLM2.into())]),
        &oci,
    )
    .unwrap();
    (oci, expected)
}

/// Runs the image's binary as a worker does, with these worker variables and, under
/// `IEXEC_IN`, these input files.
fn run_task(
    image: &(PathBuf, oci_image::Measurement),
    env: &[(&str, &str)],
    inputs: &[(&str, &[u8])],
    args: &[&str],
) -> Task {
    let dir = tempdir("task");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (name, bytes) in inputs {
        std::fs::write(input.join(name), bytes).unwrap();
    }
    let out = dir.join("out");
    let o = Command::new(static_app())
        .env_clear()
        .env("IEXEC_IN", &input)
        .env("IEXEC_OUT", &out)
        .env("IEXEC_INPUT_FILES_NUMBER", "0")
        .envs(env.iter().copied())
        .args([
            "--model",
            smollm2().to_str().unwrap(),
            "--model-sha256",
            SMOLLM2_SHA256,
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Task {
        oci: image.0.clone(),
        expected: image.1.clone(),
        out,
    }
}

/// A task with its prompt in a requester secret, on an image of its own.
fn task(tag: &str, prompt: &str, args: &[&str]) -> Task {
    run_task(
        &image(tag),
        &[("IEXEC_REQUESTER_SECRET_1", prompt)],
        &[],
        args,
    )
}

/// A task whose prompt (and parameters) come from a protected dataset, as a worker hands it
/// over (the file named by the dataset's address).
fn dataset_task(image: &(PathBuf, oci_image::Measurement), zip: &[u8], args: &[&str]) -> Task {
    let name = "0x9c7a6e1f2b3d4c5e6f708192a3b4c5d6e7f80910";
    run_task(
        image,
        &[("IEXEC_DATASET_FILENAME", name)],
        &[(name, zip)],
        args,
    )
}

fn run(t: &Task, prompt: &str, engine_env: &[(&str, &str)]) -> Result<Replay, String> {
    run_with(t, prompt, engine_env, Runner::Direct)
}

fn run_with(
    t: &Task,
    prompt: &str,
    engine_env: &[(&str, &str)],
    runner: Runner,
) -> Result<Replay, String> {
    replay_of(
        t,
        PromptInput::Text(prompt.as_bytes().to_vec()),
        engine_env,
        runner,
    )
}

fn replay_dataset(t: &Task, zip: &[u8]) -> Result<Replay, String> {
    replay_of(
        t,
        PromptInput::ProtectedData(zip.to_vec()),
        &[],
        Runner::Direct,
    )
}

fn replay_of(
    t: &Task,
    prompt: PromptInput,
    engine_env: &[(&str, &str)],
    runner: Runner,
) -> Result<Replay, String> {
    let archive = ResultArchive::open(&t.out, None).unwrap();
    let work = tempdir("replay-work");
    replay(&verifier::replay::Inputs {
        archive: &archive,
        layout: &t.oci,
        expected: &t.expected,
        prompt,
        system: None,
        work: &work,
        engine_env: engine_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        runner,
    })
    .map_err(|e| e.to_string())
}

fn edit(t: &Task, f: impl Fn(&mut Value)) {
    let p = t.out.join("result.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn a_result_replays_identically_on_every_kernel_path_and_thread_count() {
    let t = task(
        "replay",
        PROMPT,
        &["max_tokens=24", "temperature=0.7", "seed=5"],
    );
    let available = engine::kernels::Isa::available();
    // Every machine that runs this suite is x86-64 with AVX2 at least: scalar and one SIMD
    // path are compared on each of them, never scalar alone.
    assert!(available.len() >= 2, "only {available:?} here");
    let mut runs = 0;
    for isa in engine::kernels::Isa::ALL {
        let simd = isa.name();
        if !available.contains(&isa) {
            // A path this CPU lacks is refused by name, never replayed on another one.
            let r = run(&t, PROMPT, &[("IEXEC_LLM_SIMD", simd)]).unwrap();
            assert!(!r.report.passed(), "{simd} replayed on a CPU without it");
            let failures = format!("{:?}", r.report.failures().collect::<Vec<_>>());
            assert!(failures.contains("this CPU lacks it"), "{simd}: {failures}");
            continue;
        }
        for threads in ["1", "2", "3"] {
            let r = run(
                &t,
                PROMPT,
                &[("IEXEC_LLM_SIMD", simd), ("IEXEC_LLM_THREADS", threads)],
            )
            .unwrap();
            assert!(
                r.report.passed(),
                "{simd} {threads}: {:#?}",
                r.report.failures().collect::<Vec<_>>()
            );
            assert_eq!(r.summary, "identical (ran directly)", "{simd} {threads}");
            runs += 1;
        }
    }
    assert_eq!(runs, 3 * available.len());
}

#[test]
fn every_tampered_claim_is_named_and_another_prompt_is_refused() {
    let t = task(
        "tamper",
        PROMPT,
        &["max_tokens=24", "temperature=0.7", "seed=5"],
    );
    // Another prompt: refused before anything runs.
    let e = run(&t, "Write a short poem about the land.", &[])
        .err()
        .unwrap();
    assert!(e.contains("not the prompt of this result"), "{e}");

    let original = std::fs::read(t.out.join("result.json")).unwrap();
    type Tamper = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "answer",
            Box::new(|v| {
                v["answer"] = format!("{} (edited)", v["answer"].as_str().unwrap()).into()
            }),
            "differs: answer differs from byte",
        ),
        (
            "seed",
            Box::new(|v| v["parameters"]["seed"] = 6.into()),
            "differs: answer",
        ),
        (
            "temperature",
            Box::new(|v| v["parameters"]["temperature"] = 1.5.into()),
            "differs: answer",
        ),
        (
            "completion tokens",
            Box::new(|v| v["usage"]["completion_tokens"] = 23.into()),
            "differs: usage",
        ),
    ];
    for (what, f, want) in cases {
        std::fs::write(t.out.join("result.json"), &original).unwrap();
        edit(&t, f);
        let r = run(&t, PROMPT, &[]).unwrap();
        assert!(!r.report.passed(), "{what}");
        assert!(r.summary.starts_with(want), "{what}: {}", r.summary);
    }
    // A model digest that is not the measured one: not run at all.
    std::fs::write(t.out.join("result.json"), &original).unwrap();
    edit(&t, |v| v["model"]["sha256"] = "00".repeat(32).into());
    let r = run(&t, PROMPT, &[]).unwrap();
    assert!(r.summary.starts_with("not run"), "{}", r.summary);
    assert!(r
        .report
        .failures()
        .any(|c| c.name == "result.json's model is a measured one"));
    // Names from result.json that would reach the file system or the binary's options.
    std::fs::write(t.out.join("result.json"), &original).unwrap();
    edit(&t, |v| v["model"]["file"] = "../../escaped.gguf".into());
    let e = run(&t, PROMPT, &[]).err().unwrap();
    assert!(e.contains("model.file is not a plain file name"), "{e}");
    std::fs::write(t.out.join("result.json"), &original).unwrap();
    edit(&t, |v| v["parameters"]["--model"] = "/etc/passwd".into());
    let e = run(&t, PROMPT, &[]).err().unwrap();
    assert!(e.contains("is not one a task passes"), "{e}");
    // The answer's text is never in the report.
    let answer: Value = serde_json::from_slice(&original).unwrap();
    let text = answer["answer"].as_str().unwrap();
    std::fs::write(t.out.join("result.json"), &original).unwrap();
    edit(&t, |v| v["answer"] = "x".into());
    let r = run(&t, PROMPT, &[]).unwrap();
    assert!(!r.report.human().contains(text));
}

#[test]
fn a_result_stopped_by_the_workers_clock_replays_to_its_length() {
    // Time to load and read the prompt, not to count this far. On a loaded machine the
    // clock may stop it before its first token, or while it reads the prompt: each replays.
    let counting = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,";
    let dir_task = task(
        "clock",
        counting,
        &[
            "time_budget=4",
            "max_tokens=32768",
            "temperature=0",
            "template=raw",
        ],
    );
    let r: Value =
        serde_json::from_slice(&std::fs::read(dir_task.out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["finish_reason"], "time", "{r}");
    let replayed = run(&dir_task, counting, &[]).unwrap();
    assert!(
        replayed.report.passed(),
        "{:#?}",
        replayed.report.failures().collect::<Vec<_>>()
    );
    assert!(replayed.stopped_on_time);
    assert!(
        replayed.summary.contains("the worker's clock"),
        "{}",
        replayed.summary
    );
}

#[test]
fn a_result_stopped_before_its_first_token_replays_what_it_claims() {
    // What the app writes when the clock stops it after the prompt and before the first
    // token, made from an honest run of the same task: its text and completion count emptied.
    let t = task("clock-0", PROMPT, &["max_tokens=8", "temperature=0"]);
    let honest = std::fs::read(t.out.join("result.json")).unwrap();
    let stopped = |v: &mut Value| {
        v["finish_reason"] = "time".into();
        v["answer"] = "".into();
        v["reasoning"] = Value::Null;
        v["usage"]["completion_tokens"] = 0.into();
    };
    type Tamper = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Tamper, Option<&str>)> = vec![
        ("stopped after the prompt", Box::new(stopped), None),
        (
            "stopped while it read the prompt",
            Box::new(move |v| {
                stopped(v);
                v["status"] = "error".into();
                v["error"] = serde_json::json!({"kind": "time-budget",
                    "message": "the prompt cannot be read within time_budget=3 s"});
            }),
            None,
        ),
        (
            "stopped before it read the prompt",
            Box::new(move |v| {
                stopped(v);
                v["finish_reason"] = Value::Null;
                v["usage"]["prompt_tokens"] = 0.into();
                v["status"] = "error".into();
                v["error"] = serde_json::json!({"kind": "time-budget",
                    "message": "the prompt cannot be read within time_budget=3 s"});
            }),
            None,
        ),
        (
            "with the honest run's answer kept",
            Box::new(move |v| {
                let answer = v["answer"].clone();
                stopped(v);
                v["answer"] = answer;
            }),
            Some("differs: answer (none)"),
        ),
        (
            "with a prompt one token longer",
            Box::new(move |v| {
                stopped(v);
                v["usage"]["prompt_tokens"] =
                    (v["usage"]["prompt_tokens"].as_u64().unwrap() + 1).into();
            }),
            Some("differs: usage (the prompt's tokens, none generated)"),
        ),
        (
            "with an error the clock does not give",
            Box::new(move |v| {
                stopped(v);
                v["status"] = "error".into();
                v["error"] = serde_json::json!({"kind": "prompt-too-long", "message": "x"});
            }),
            Some("differs: status and error (the clock's)"),
        ),
    ];
    for (what, f, want) in cases {
        std::fs::write(t.out.join("result.json"), &honest).unwrap();
        edit(&t, f);
        let r = run(&t, PROMPT, &[]).unwrap();
        match want {
            None => {
                assert!(
                    r.report.passed(),
                    "{what}: {:#?}",
                    r.report.failures().collect::<Vec<_>>()
                );
                assert!(r.stopped_on_time, "{what}");
                assert!(
                    r.summary.contains("before its first token")
                        || r.summary.contains("before its prompt was read"),
                    "{what}: {}",
                    r.summary
                );
            }
            Some(want) => {
                assert!(!r.report.passed(), "{what}");
                assert!(r.summary.starts_with(want), "{what}: {}", r.summary);
            }
        }
    }
    // A count that is not one is refused before anything runs.
    std::fs::write(t.out.join("result.json"), &honest).unwrap();
    edit(&t, |v| {
        stopped(v);
        v["usage"]["completion_tokens"] = "0".into();
    });
    let e = run(&t, PROMPT, &[]).err().unwrap();
    assert!(e.contains("usage.completion_tokens is not a count"), "{e}");
}

/// Seals a task's output as a worker does, and writes its receipt and measurement beside it:
/// what `check-result` reads. Returns that folder.
fn sealed(t: &Task) -> PathBuf {
    let dir = t.out.parent().unwrap().to_path_buf();
    let receipt = e2e_tests::seal(
        &t.out,
        &e2e_tests::Task {
            task_id: &format!("0x{}", "5a".repeat(32)),
            worker: "0x000000000000000000000000000000000000c0de",
            enclave_key: &k256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap(),
            workerpool_key: &k256::ecdsa::SigningKey::from_slice(&[0x22; 32]).unwrap(),
            app_checksum: &format!(
                "0x{}",
                t.expected.manifest_digest.trim_start_matches("sha256:")
            ),
        },
    )
    .unwrap();
    std::fs::write(
        dir.join("receipt.json"),
        serde_json::to_vec(&receipt).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("measurement.json"),
        serde_json::to_vec(&t.expected).unwrap(),
    )
    .unwrap();
    dir
}

#[test]
fn check_result_adds_the_replay_to_its_verdict() {
    use clap::Parser;
    let t = task("check-replay", PROMPT, &["max_tokens=16", "seed=2"]);
    let dir = sealed(&t);
    std::fs::write(dir.join("prompt.txt"), PROMPT).unwrap();
    std::fs::write(dir.join("other.txt"), "Write a short poem about the land.").unwrap();
    let check = |prompt: &str| {
        let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
        verifier::cli::run(
            verifier::cli::Cli::try_parse_from([
                "verifier".to_string(),
                "check-result".into(),
                t.out.to_str().unwrap().into(),
                "--receipt".into(),
                p("receipt.json"),
                "--expected".into(),
                p("measurement.json"),
                "--image".into(),
                t.oci.to_str().unwrap().into(),
                "--replay-prompt-file".into(),
                p(prompt),
            ])
            .unwrap(),
        )
    };
    let v = check("prompt.txt").unwrap();
    assert!(v.passed, "{}", v.text);
    assert!(v.text.contains("replay: replayed answer"), "{}", v.text);
    assert!(v.text.contains("proven:  replay: "), "{}", v.text);
    // Another prompt: refused, naming why.
    let e = check("other.txt").err().unwrap().to_string();
    assert!(e.contains("not the prompt of this result"), "{e}");
    // The replay needs the layout.
    assert!(verifier::cli::Cli::try_parse_from([
        "verifier",
        "check-result",
        "r",
        "--receipt",
        "r.json",
        "--expected",
        "m.json",
        "--replay-prompt-file",
        "p.txt"
    ])
    .is_err());
}

#[test]
fn a_result_replays_identically_under_runc_as_a_worker_runs_it() {
    // As root (CI and our machines): the layout unpacked by umoci, the image's entrypoint run
    // by runc with /iexec_in and /iexec_out bound in.
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    if !root {
        eprintln!("replay under runc: not run: runc needs root here");
        return;
    }
    let t = task(
        "runc",
        PROMPT,
        &["max_tokens=12", "temperature=0.7", "seed=3"],
    );
    let r = run_with(&t, PROMPT, &[], Runner::Runc).unwrap();
    assert!(
        r.report.passed(),
        "{:#?}",
        r.report.failures().collect::<Vec<_>>()
    );
    assert_eq!(r.ran, "under runc");
    assert_eq!(r.summary, "identical (ran under runc)");
    assert_eq!(
        Runner::Auto.resolve(),
        Runner::Runc,
        "runc and umoci are installed here"
    );
    // The same tamper is caught there too.
    edit(&t, |v| v["parameters"]["seed"] = 4.into());
    let r = run_with(&t, PROMPT, &[], Runner::Runc).unwrap();
    assert!(r.summary.starts_with("differs: answer"), "{}", r.summary);
}

/// Zips made by the real DataProtector packages (`tests/npm/protected-data.mjs`), by case.
fn protected_data(case: &str) -> Vec<u8> {
    static MADE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = MADE.get_or_init(|| {
        let npm = root().join("tests/npm");
        assert!(
            npm.join("node_modules/@iexec/dataprotector").is_dir(),
            "{} has no node_modules: run scripts/test.sh (it runs npm ci there)",
            npm.display()
        );
        let out = tempdir("protected-data");
        let o = Command::new("node")
            .arg(npm.join("protected-data.mjs"))
            .arg(&out)
            .output()
            .expect("node (Node.js 20) must be installed");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    });
    std::fs::read(dir.join(format!("{case}.zip"))).unwrap()
}

#[test]
fn a_task_on_real_protected_data_replays_from_its_zip() {
    let image = image("dataset");
    for case in ["v2-full", "v053-full"] {
        // The prompt, the system prompt and parameters all come from the dataset.
        let zip = protected_data(case);
        let t = dataset_task(&image, &zip, &[]);
        let r: Value =
            serde_json::from_slice(&std::fs::read(t.out.join("result.json")).unwrap()).unwrap();
        assert_eq!(r["status"], "ok", "{case}: {r}");
        assert_eq!(r["prompt"]["source"], "protected-data", "{case}");
        let replayed = replay_dataset(&t, &zip).unwrap();
        assert!(
            replayed.report.passed(),
            "{case}: {:#?}",
            replayed.report.failures().collect::<Vec<_>>()
        );
        assert_eq!(replayed.summary, "identical (ran directly)", "{case}");
        // Another dataset with the same prompt and none of its system prompt or parameters:
        // it runs, and the replay names what differs.
        let other = replay_dataset(&t, &protected_data("v2-prompt")).unwrap();
        assert!(!other.report.passed(), "{case}: {}", other.summary);
        assert!(other.summary.starts_with("differs: "), "{}", other.summary);
        // A dataset with another prompt is refused before anything runs.
        let e = replay_dataset(&t, &protected_data("v2-unicode"))
            .err()
            .unwrap();
        assert!(e.contains("the protected data's prompt has sha256"), "{e}");
        // The prompt as text is not how this task got it.
        let e = run(&t, "What is the capital of France?", &[])
            .err()
            .unwrap();
        assert!(e.contains("--protected-data ZIP"), "{e}");
    }
}

#[test]
fn a_task_whose_dataset_sets_its_clock_replays_to_its_length() {
    // The dataset carries max_tokens and time_budget, which the app will not take again from
    // the arguments: the replay rewrites them in its copy of the zip.
    let image = image("dataset-clock");
    for case in ["v2-clock", "v053-clock"] {
        let zip = protected_data(case);
        let t = dataset_task(&image, &zip, &[]);
        let r: Value =
            serde_json::from_slice(&std::fs::read(t.out.join("result.json")).unwrap()).unwrap();
        assert_eq!(r["finish_reason"], "time", "{case}: {r}");
        let fields = r["prompt"]["fields"].to_string();
        assert!(
            fields.contains("max_tokens") && fields.contains("time_budget"),
            "{case}: {fields}"
        );
        let replayed = replay_dataset(&t, &zip).unwrap();
        assert!(
            replayed.report.passed(),
            "{case}: {:#?}",
            replayed.report.failures().collect::<Vec<_>>()
        );
        assert!(replayed.stopped_on_time, "{case}");
        assert!(
            replayed.summary.contains("the worker's clock"),
            "{case}: {}",
            replayed.summary
        );
        // Had the clock stopped it before its first token: replayed for one token, the
        // dataset's max_tokens rewritten to 1.
        edit(&t, |v| {
            v["answer"] = "".into();
            v["usage"]["completion_tokens"] = 0.into();
        });
        let replayed = replay_dataset(&t, &zip).unwrap();
        assert!(
            replayed.report.passed(),
            "{case}: {:#?}",
            replayed.report.failures().collect::<Vec<_>>()
        );
        assert!(
            replayed.summary.contains("before its first token"),
            "{case}: {}",
            replayed.summary
        );
    }
}

#[test]
fn check_result_replays_from_protected_data_and_with_a_system_prompt() {
    use clap::Parser;
    let check = |t: &Task, dir: &std::path::Path, replay: &[&str]| {
        let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
        let mut args = vec![
            "verifier".to_string(),
            "check-result".into(),
            t.out.to_str().unwrap().into(),
            "--receipt".into(),
            p("receipt.json"),
            "--expected".into(),
            p("measurement.json"),
            "--image".into(),
            t.oci.to_str().unwrap().into(),
        ];
        args.extend(replay.iter().map(|a| a.to_string()));
        verifier::cli::run(verifier::cli::Cli::try_parse_from(args).unwrap())
    };
    // A task on a real DataProtector zip, its system prompt and parameters from the data.
    let image = image("check-dataset");
    let zip = protected_data("v2-full");
    let t = dataset_task(&image, &zip, &[]);
    let dir = sealed(&t);
    std::fs::write(dir.join("dataset.zip"), &zip).unwrap();
    std::fs::write(dir.join("other.zip"), protected_data("v2-unicode")).unwrap();
    let zip_arg = dir.join("dataset.zip").to_str().unwrap().to_string();
    let v = check(&t, &dir, &["--replay-protected-data", &zip_arg]).unwrap();
    assert!(v.passed, "{}", v.text);
    assert!(v.text.contains("proven:  replay: "), "{}", v.text);
    let other = dir.join("other.zip").to_str().unwrap().to_string();
    let e = check(&t, &dir, &["--replay-protected-data", &other])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("the protected data's prompt has sha256"), "{e}");

    // A task with a system prompt in its arguments: the replay needs it, and only it.
    let system = "Answer in one word.";
    let t = task(
        "check-system",
        PROMPT,
        &[&format!("system={system}"), "max_tokens=8", "temperature=0"],
    );
    let dir = sealed(&t);
    for (f, text) in [
        ("prompt.txt", PROMPT),
        ("system.txt", system),
        ("other-system.txt", "Answer in two words."),
    ] {
        std::fs::write(dir.join(f), text).unwrap();
    }
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let v = check(
        &t,
        &dir,
        &[
            "--replay-prompt-file",
            &p("prompt.txt"),
            "--replay-system-file",
            &p("system.txt"),
        ],
    )
    .unwrap();
    assert!(v.passed, "{}", v.text);
    assert!(v.text.contains("proven:  replay: "), "{}", v.text);
    let e = check(&t, &dir, &["--replay-prompt-file", &p("prompt.txt")])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--replay-system-file"), "{e}");
    let e = check(
        &t,
        &dir,
        &[
            "--replay-prompt-file",
            &p("prompt.txt"),
            "--replay-system-file",
            &p("other-system.txt"),
        ],
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("the system prompt given has sha256"), "{e}");

    // One source for the replay's prompt, a system file only beside a prompt file, and the
    // layout only with a replay.
    let base = [
        "verifier",
        "check-result",
        "r",
        "--receipt",
        "r.json",
        "--expected",
        "m.json",
    ];
    for extra in [
        &[
            "--image",
            "oci",
            "--replay-prompt-file",
            "p",
            "--replay-protected-data",
            "z",
        ][..],
        &[
            "--image",
            "oci",
            "--replay-protected-data",
            "z",
            "--replay-system-file",
            "s",
        ],
        &["--image", "oci"],
        &["--replay-protected-data", "z"],
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        assert!(
            verifier::cli::Cli::try_parse_from(&args).is_err(),
            "{args:?} parsed"
        );
    }
    assert!(verifier::cli::Cli::try_parse_from(
        base.iter()
            .chain(&["--image", "oci", "--replay-protected-data", "z"])
            .copied()
            .collect::<Vec<_>>()
    )
    .is_ok());
}
