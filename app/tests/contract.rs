//! The iExec runtime contract, end to end through the binary: a temporary `/iexec_in` and
//! `/iexec_out`, the environment a worker sets, and every bad input the app must refuse with a
//! clear error while still writing its outputs.

use crate::common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const SECRET: &str = "Confidential: the launch code is TANGERINE-42. Summarise it.";

#[test]
fn worker_run_with_a_requester_secret_writes_the_contract_files_and_leaks_nothing() {
    let mut w = Worker::new("secret");
    w.set("IEXEC_REQUESTER_SECRET_1", SECRET);
    let run = w.run(&["max_tokens=12", "temperature=0"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);

    let c = run.computed();
    // The path the post-compute reads, where it mounts this directory.
    assert_eq!(c["deterministic-output-path"], "/iexec_out/result.json");
    assert!(c.get("error-message").is_none());

    let r = run.result();
    assert_eq!(r["schema"], "iexec-llm/result/v1");
    assert_eq!(r["status"], "ok");
    assert_eq!(r["prompt"]["source"], "requester-secret");
    assert_eq!(
        r["prompt"]["sha256"],
        app::run::sha256_hex(SECRET.as_bytes())
    );
    assert_eq!(r["model"]["sha256"], SMOLLM2_SHA256);
    assert_eq!(r["model"]["architecture"], "llama");
    let exe = Path::new(env!("CARGO_BIN_EXE_iexec-llm"));
    assert_eq!(r["app"]["binary_sha256"], sha256_file(exe));
    assert_eq!(r["usage"]["completion_tokens"], 12);
    assert_eq!(r["finish_reason"], "length");
    assert_eq!(r["parameters"]["max_tokens"], 12);
    assert!(!r["answer"].as_str().unwrap().is_empty());
    assert!(r.get("error").unwrap().is_null());

    let m = read_json(&run.out.join("metrics.json"));
    for k in [
        "load_seconds",
        "prefill_tokens_per_second",
        "decode_tokens_per_second",
    ] {
        assert!(m[k].as_f64().unwrap() > 0.0, "{k}: {m}");
    }
    assert!(m["peak_rss_bytes"].as_u64().unwrap() > 50_000_000);

    // stdout: one JSON object per line, with digests only.
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|l| l["event"] == "model-verified"));
    assert!(lines.iter().any(|l| l["event"] == "result-written"));
    assert_secret_nowhere(&run, SECRET);
}

#[test]
fn dataset_and_input_file_prompts_never_reach_the_logs() {
    let mut w = Worker::new("dataset");
    std::fs::write(w.dir.join("in/prompt.txt"), format!("{SECRET}\n")).unwrap();
    w.set("IEXEC_DATASET_FILENAME", "prompt.txt");
    let run = w.run(&["max_tokens=4", "temperature=0"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.result()["prompt"]["source"], "dataset");
    assert_eq!(
        run.result()["prompt"]["sha256"],
        app::run::sha256_hex(SECRET.as_bytes())
    );
    assert_secret_nowhere(&run, SECRET);

    let mut w = Worker::new("input");
    std::fs::write(w.dir.join("in/q.txt"), SECRET).unwrap();
    let folder = w.dir.join("in");
    w.set("IEXEC_INPUT_FILES_NUMBER", "1")
        .set("IEXEC_INPUT_FILES_FOLDER", folder)
        .set("IEXEC_INPUT_FILE_NAME_1", "q.txt");
    let run = w.run(&["max_tokens=4", "temperature=0"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.result()["prompt"]["source"], "input-file");
    // Input files are public (their URLs are in the deal): said so, and still not logged.
    assert!(
        run.stdout.contains(r#""confidential":false"#),
        "{}",
        run.stdout
    );
    assert_secret_nowhere(&run, SECRET);
}

#[test]
fn same_inputs_and_seed_give_identical_result_bytes() {
    let args = [
        "max_tokens=16",
        "temperature=0.8",
        "seed=1234",
        "Name",
        "three",
        "colours.",
    ];
    let a = Worker::new("det-a").run(&args);
    let b = Worker::new("det-b").run(&args);
    assert_eq!(a.code, Some(0), "{}", a.stderr);
    let ra = std::fs::read(a.out.join("result.json")).unwrap();
    let rb = std::fs::read(b.out.join("result.json")).unwrap();
    assert_eq!(ra, rb);
    assert_eq!(a.result()["prompt"]["source"], "args");
    let c = Worker::new("det-c").run(&[
        "max_tokens=16",
        "temperature=0.8",
        "seed=99",
        "Name",
        "three",
        "colours.",
    ]);
    assert_ne!(
        std::fs::read(c.out.join("result.json")).unwrap(),
        ra,
        "the seed is ignored"
    );
}

#[test]
fn output_bytes_are_identical_at_any_thread_count_and_on_every_simd_path() {
    // Our engine: the same sampled answer, bit for bit, at 1, 2 and 3 threads and with each
    // kernel path this CPU has (IEXEC_LLM_SIMD forces one; scalar is the oracle).
    let args = [
        "max_tokens=12",
        "temperature=0.8",
        "seed=7",
        "Name three colours.",
    ];
    let mut runs = Vec::new();
    let paths: Vec<&str> = engine::kernels::Isa::available()
        .into_iter()
        .map(|i| i.name())
        .collect();
    assert!(paths.len() >= 2, "only {paths:?} on this CPU");
    for (simd, threads) in paths
        .iter()
        .map(|p| (*p, "2"))
        .chain([("", "1"), ("", "3")])
    {
        let mut w = Worker::new(&format!("bits-{simd}-{threads}"));
        w.set("IEXEC_LLM_ENGINE", "own")
            .set("IEXEC_LLM_SIMD", simd)
            .set("IEXEC_LLM_THREADS", threads);
        let r = w.run(&args);
        assert_eq!(r.code, Some(0), "{simd} {threads}: {}", r.stderr);
        runs.push((
            simd,
            threads,
            std::fs::read(r.out.join("result.json")).unwrap(),
        ));
    }
    for (simd, threads, bytes) in &runs[1..] {
        assert!(
            bytes == &runs[0].2,
            "simd {simd:?} threads {threads} differ from scalar"
        );
    }
    // A path the CPU lacks, or an unknown one, is refused by name.
    let mut w = Worker::new("bits-bad");
    w.set("IEXEC_LLM_ENGINE", "own")
        .set("IEXEC_LLM_SIMD", "neon");
    w.run(&args)
        .assert_error("inference", "IEXEC_LLM_SIMD=\"neon\"");
}

#[test]
fn reasoning_model_output_is_split_at_think() {
    // The synthetic Qwen2 carries DeepSeek-R1's template, so the prompt opens a <think> block:
    // everything generated is reasoning until </think> (random weights never close it).
    let w = Worker::new("r1");
    let model = tiny_qwen2();
    let sha = sha256_file(model);
    let env: Vec<(&str, &OsStr)> = w.env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let o = run_app(
        &[
            "--model",
            model.to_str().unwrap(),
            "--model-sha256",
            &sha,
            "max_tokens=8",
            "temperature=0",
            "hi",
        ],
        &env,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = read_json(&w.out().join("result.json"));
    assert_eq!(r["model"]["architecture"], "qwen2");
    assert!(r["reasoning"].is_string(), "{r}");
    assert_eq!(r["answer"], "");
    assert_eq!(r["usage"]["completion_tokens"], 8);
    // Its template opens <think> itself.
    assert_eq!(r["prompt"]["think"], "template", "{r}");

    // DeepSeek-R1's real tokenizer and template (converted before DeepSeek changed it): the
    // template ends with <｜Assistant｜>, so the app adds <think>\n and says so.
    let model = gguf_synth::testing::tiny_r1_real_tokenizer();
    let sha = sha256_file(model);
    let o = run_app(
        &[
            "--model",
            model.to_str().unwrap(),
            "--model-sha256",
            &sha,
            "max_tokens=4",
            "temperature=0",
            "hi",
        ],
        &env,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = read_json(&w.out().join("result.json"));
    assert_eq!(r["prompt"]["think"], "forced", "{r}");
    assert!(r["reasoning"].is_string(), "{r}");
    // The prompt: BOS, <｜User｜>, "hi", <｜Assistant｜>, <think>, "\n".
    assert_eq!(r["usage"]["prompt_tokens"], 6, "{r}");

    // A model of another family gets no rule, and result.json no field for it.
    let r = Worker::new("smol").run(&["max_tokens=2", "hi"]).result();
    assert!(r["prompt"].get("think").is_none(), "{r}");
}

#[test]
fn running_out_of_time_still_writes_the_partial_answer() {
    let w = Worker::new("budget");
    // Enough time to load and read the prompt, not to write 32768 tokens.
    let run = w.run(&[
        "time_budget=5",
        "max_tokens=32768",
        "context=4096",
        "temperature=0",
        "template=raw",
        "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let r = run.result();
    assert_eq!(r["status"], "ok");
    assert_eq!(r["finish_reason"], "time");
    assert!(run.computed().get("error-message").is_none());
}

#[test]
fn bad_inputs_get_a_clear_error_and_the_outputs_are_still_written() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], "prompt", "no prompt"),
        (&["prompt="], "prompt", "the prompt from the arguments is empty"),
        (&["foo=1", "hi"], "invalid-parameter", "unknown parameter \"foo\""),
        (&["max_tokens=many", "hi"], "invalid-parameter", "max_tokens must be an integer"),
        (&["temperature=9", "hi"], "invalid-parameter", "temperature must be a number from 0 to 2"),
        (&["top_p=-1", "hi"], "invalid-parameter", "top_p must be a number"),
        (&["seed=x", "hi"], "invalid-parameter", "seed must be an integer"),
        (&["context=16", "This prompt is much longer than sixteen tokens once the chat template is added around it."],
         "prompt-too-long", "the context holds 16"),
    ];
    for (args, kind, msg) in cases {
        let run = Worker::new("bad").run(args);
        run.assert_error(kind, msg);
    }
}

#[test]
fn confidential_inputs_that_are_not_utf8_are_refused_without_echoing_them() {
    let mut w = Worker::new("utf8-secret");
    w.set(
        "IEXEC_REQUESTER_SECRET_1",
        OsStr::from_bytes(b"TANGERINE \xff\xfe"),
    );
    let run = w.run(&[]);
    run.assert_error("input", "IEXEC_REQUESTER_SECRET_1 is not valid UTF-8");
    assert!(!run.stderr.contains("TANGERINE"));

    let mut w = Worker::new("utf8-file");
    std::fs::write(w.dir.join("in/d.bin"), b"TANGERINE \xc3\x28").unwrap();
    w.set("IEXEC_DATASET_FILENAME", "d.bin");
    let run = w.run(&[]);
    run.assert_error(
        "input",
        "the protected dataset is not valid UTF-8 (at byte 10)",
    );

    let mut w = Worker::new("two-sources");
    w.set("IEXEC_REQUESTER_SECRET_1", SECRET);
    let run = w.run(&["also a prompt"]);
    run.assert_error("prompt", "more than one source");
    assert_secret_nowhere(&run, SECRET);
}

#[test]
fn missing_unreadable_or_substituted_models_are_refused() {
    let w = Worker::new("model");
    let env: Vec<(&str, &OsStr)> = w.env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let check = |args: &[&str], kind: &str, msg: &str| {
        let o = run_app(args, &env);
        let run = Run {
            code: o.status.code(),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
            out: w.out(),
        };
        run.assert_error(kind, msg);
    };
    let missing = w.dir.join("nope.gguf");
    check(
        &["--model", missing.to_str().unwrap(), "hi"],
        "model-file",
        "No such file",
    );
    let dir = w.dir.join("in");
    check(
        &["--model", dir.to_str().unwrap(), "hi"],
        "model-file",
        "Is a directory",
    );
    let m = smollm2();
    let wrong = "00".repeat(32);
    check(
        &[
            "--model",
            m.to_str().unwrap(),
            "--model-sha256",
            &wrong,
            "hi",
        ],
        "model-digest",
        &format!("has sha256 {SMOLLM2_SHA256}, expected the pinned {wrong}"),
    );
    // The default pin is DeepSeek-R1's file: the small model is refused without --model-sha256.
    check(
        &["--model", m.to_str().unwrap(), "hi"],
        "model-digest",
        app::PINNED_MODEL_SHA256,
    );

    // A truncated file with the right digest gets past the pin and fails as malformed.
    let bytes = std::fs::read(tiny_qwen2()).unwrap();
    let cut = w.dir.join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let sha = sha256_file(&cut);
    check(
        &[
            "--model",
            cut.to_str().unwrap(),
            "--model-sha256",
            &sha,
            "hi",
        ],
        "malformed-gguf",
        "file is truncated",
    );

    // A budget the model cannot fit is refused before loading, with the figures; an
    // environment variable sets it too; the default 6 GiB refuses a 131072-token context only
    // when the model's KV cache for it would not fit (SmolLM2 is trained for 8192).
    let sha = SMOLLM2_SHA256;
    let ms = m.to_str().unwrap();
    check(
        &[
            "--model",
            ms,
            "--model-sha256",
            sha,
            "--memory-budget",
            "200MiB",
            "hi",
        ],
        "memory-budget",
        // Our engine (the default): weights with the interleaved layout's 1/32, no
        // expanded embedding, an f16 cache of 30 layers x 4096 x 3 heads x 64.
        "but the budget is 0.20 GiB: weights 0.09 GiB, expanded token embedding 0.00 GiB, \
         KV cache for context=4096 0.09 GiB",
    );
    let mut env2 = env.clone();
    env2.push(("IEXEC_LLM_MEMORY_BUDGET", OsStr::new("100MiB")));
    let o = run_app(&["--model", ms, "--model-sha256", sha, "hi"], &env2);
    Run {
        code: o.status.code(),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
        out: w.out(),
    }
    .assert_error("memory-budget", "but the budget is 0.10 GiB");
    let o = run_app(
        &[
            "--model",
            ms,
            "--model-sha256",
            sha,
            "--memory-budget",
            "6GB",
            "hi",
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown unit"));
}

#[test]
fn an_unwritable_output_directory_is_reported_and_nothing_runs() {
    let mut w = Worker::new("unwritable");
    let blocker = w.dir.join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    w.set("IEXEC_OUT", blocker.join("out"));
    let run = w.run(&["hi"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("error: output: cannot write to the output directory"),
        "{}",
        run.stderr
    );
}

#[test]
fn local_use_streams_the_answer_and_help_teaches() {
    let model = smollm2();
    let out = tempdir("local");
    let o = run_app(
        &[
            "--model",
            model.to_str().unwrap(),
            "--model-sha256",
            SMOLLM2_SHA256,
            "--out",
            out.to_str().unwrap(),
            "max_tokens=8",
            "temperature=0",
            "template=raw",
            "The capital of France is",
        ],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = read_json(&out.join("result.json"));
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert_eq!(stdout.trim_end_matches('\n'), r["answer"].as_str().unwrap());
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert!(
        stderr.contains("[model-verified]") && stderr.contains("[prefill]"),
        "{stderr}"
    );

    let help = run_app(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8(help.stdout).unwrap();
    for word in [
        "--model-sha256",
        "max_tokens=N",
        "IEXEC_REQUESTER_SECRET_1",
        "result.json",
        "EXIT STATUS",
        // The example's digest can be pasted: all 64 digits.
        SMOLLM2_SHA256,
        "public: its URL is in the deal's parameters",
    ] {
        assert!(text.contains(word), "--help lacks {word}");
    }
}
