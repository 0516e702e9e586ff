//! Protected data as real iExec users make it: zips written by `@iexec/dataprotector`
//! 2.0.0-beta.27 and 0.5.3 (`createZipFromObject`, run by node in the test setup), read by the
//! app as the worker hands them over, and compared with what the official reader
//! (`@iexec/dataprotector-deserializer` 0.1.1) decodes from the same files.

use crate::common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The dataset's file name under a worker: the dataset's address.
const DATASET: &str = "0x9c7a6e1f2b3d4c5e6f708192a3b4c5d6e7f80910";

/// The zips and the official reader's values (`tests/npm/protected-data.mjs`), made once.
fn made() -> &'static (PathBuf, Value) {
    static MADE: OnceLock<(PathBuf, Value)> = OnceLock::new();
    MADE.get_or_init(|| {
        let npm = gguf_synth::testing::workspace().join("tests/npm");
        assert!(
            npm.join("node_modules/@iexec/dataprotector").is_dir(),
            "{} has no node_modules: run scripts/test.sh (it runs npm ci there)",
            npm.display()
        );
        let out = tempdir("protected-data");
        let o = std::process::Command::new("node")
            .arg(npm.join("protected-data.mjs"))
            .arg(&out)
            .output()
            .expect("node (Node.js 20) must be installed");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let cases = read_json(&out.join("cases.json"));
        (out, cases)
    })
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Runs the app with `zip` as the protected dataset.
fn run_with(zip: &[u8], args: &[&str]) -> Run {
    let mut w = Worker::new("dp");
    std::fs::write(w.dir.join("in").join(DATASET), zip).unwrap();
    w.set("IEXEC_DATASET_FILENAME", DATASET);
    w.run(args)
}

fn case(name: &str) -> (Vec<u8>, Value) {
    let (dir, cases) = made();
    let c = &cases[name];
    let bytes = std::fs::read(dir.join(c["file"].as_str().unwrap())).unwrap();
    (bytes, c["fields"].clone())
}

/// `text` appears in no log and no output file (but the model's own answer).
fn assert_nowhere(run: &Run, text: &str) {
    assert!(!run.stdout.contains(text), "stdout holds the prompt");
    assert!(!run.stderr.contains(text), "stderr holds the prompt");
    for f in files_under(&run.out) {
        let mut body = std::fs::read_to_string(&f).unwrap();
        if f.ends_with("result.json") {
            let mut r: Value = serde_json::from_str(&body).unwrap();
            r["answer"] = Value::Null;
            r["reasoning"] = Value::Null;
            body = r.to_string();
        }
        assert!(!body.contains(text), "{} holds the prompt", f.display());
    }
}

#[test]
fn real_protected_data_is_answered_as_the_official_reader_reads_it() {
    for name in ["v2-prompt", "v053-prompt", "v2-unicode", "v2-valid-utf8"] {
        let (zip, official) = case(name);
        let prompt = official["prompt"].as_str().unwrap();
        let run = run_with(&zip, &["max_tokens=4", "temperature=0"]);
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        let r = run.result();
        assert_eq!(r["status"], "ok", "{name}: {r}");
        assert_eq!(r["prompt"]["source"], "protected-data", "{name}");
        assert_eq!(
            r["prompt"]["sha256"],
            sha(prompt),
            "{name}: not the decoded prompt"
        );
        assert_eq!(
            r["prompt"]["fields"],
            serde_json::json!(["prompt"]),
            "{name}"
        );
        assert_nowhere(&run, prompt);
    }
    // The zip whose bytes are valid UTF-8 was once answered as a text prompt: the zip itself.
    let (zip, _) = case("v2-valid-utf8");
    assert!(std::str::from_utf8(&zip).is_ok());
}

#[test]
fn confidential_parameters_come_from_the_protected_data() {
    for (name, params) in [
        (
            "v2-full",
            serde_json::json!({"max_tokens": 16, "temperature": 0.0, "top_p": 0.5,
                               "seed": 12345678901234567890u64, "template": "chat"}),
        ),
        (
            "v053-full",
            serde_json::json!({"max_tokens": 16, "seed": 7}),
        ),
    ] {
        let (zip, official) = case(name);
        let run = run_with(&zip, &[]);
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        let r = run.result();
        assert_eq!(r["status"], "ok", "{name}: {r}");
        let p = official["prompt"].as_str().unwrap();
        let s = official["system"].as_str().unwrap();
        assert_eq!(r["prompt"]["sha256"], sha(p), "{name}");
        assert_eq!(r["prompt"]["system_sha256"], sha(s), "{name}");
        for (k, v) in params.as_object().unwrap() {
            assert_eq!(&r["parameters"][k], v, "{name}: {k}");
            // The official reader's value, for the numbers it returns as numbers.
            if let Some(o) = official[k].as_f64() {
                assert_eq!(r["parameters"][k].as_f64().unwrap(), o, "{name}: {k}");
            }
        }
        // The seed the official reader returns (a bigint as text, or a number).
        let seed = match &official["seed"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        assert_eq!(seed, r["parameters"]["seed"].to_string(), "{name}");
        let mut fields: Vec<&str> = official
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort();
        assert_eq!(r["prompt"]["fields"], serde_json::json!(fields), "{name}");
        assert_nowhere(&run, p);
        assert_nowhere(&run, s);
    }
    // A parameter both in the (public) arguments and in the protected data is refused.
    let (zip, _) = case("v2-full");
    run_with(&zip, &["max_tokens=4"]).assert_error(
        "invalid-parameter",
        "parameter \"max_tokens\" is given both in the arguments and in the protected data",
    );
}

/// A stored zip entry's central-directory uncompressed size, set to `size`.
fn declare_size(zip: &mut [u8], size: u32) {
    let at = zip.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    zip[at + 24..at + 28].copy_from_slice(&size.to_le_bytes());
}

fn many_entries(n: usize) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..n {
        z.start_file(
            if i == 0 {
                "prompt".into()
            } else {
                format!("k{i}")
            },
            opts,
        )
        .unwrap();
        z.write_all(b"hello").unwrap();
    }
    z.finish().unwrap().into_inner()
}

#[test]
fn bad_protected_data_gets_a_clear_error_naming_the_problem() {
    let (full, _) = case("v2-full");
    let mut bomb = case("v2-prompt").0;
    declare_size(&mut bomb, u32::MAX - 15);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("no-prompt", case("no-prompt").0, "no field \"prompt\""),
        (
            "prompt-number",
            case("prompt-number").0,
            "field prompt is not a string",
        ),
        (
            "prompt-bool",
            case("prompt-bool").0,
            "field prompt is not text",
        ),
        (
            "prompt-bytes",
            case("prompt-bytes").0,
            "field prompt is not text",
        ),
        (
            "nested",
            case("nested").0,
            "unknown field \"options/max_tokens\"",
        ),
        (
            "unknown-field",
            case("unknown-field").0,
            "unknown field \"max_token\"",
        ),
        ("escape", case("escape").0, "is not a plain relative path"),
        (
            "max-tokens-string",
            case("max-tokens-string").0,
            "field max_tokens is 11 bytes",
        ),
        ("truncated", full[..full.len() / 2].to_vec(), "not a zip"),
        ("4 GiB declared", bomb, "declares 4294967280 bytes"),
        (
            "10,000 entries",
            many_entries(10_000),
            "10000 entries, more than the 64",
        ),
    ];
    for (what, zip, message) in cases {
        let run = run_with(&zip, &["max_tokens=4"]);
        let r = run.result();
        assert_eq!(r["error"]["kind"], "input", "{what}: {r}");
        run.assert_error("input", message);
    }
}

#[test]
fn a_plain_text_dataset_is_still_a_plain_prompt() {
    let run = run_with(b"What is 2 + 2?\n", &["max_tokens=4"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let r = run.result();
    assert_eq!(r["prompt"]["source"], "dataset");
    assert_eq!(r["prompt"]["sha256"], sha("What is 2 + 2?"));
    assert!(r["prompt"].get("fields").is_none());
}
