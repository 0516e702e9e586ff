//! `verifier check-result` as a command: exit status 0 verified, 1 a check failed, 2 unusable
//! input; the checklist, the closing lines and `--json`. The result here is a small
//! hand-made one (no model run), signed in the test; the full flow with the real image, a
//! quote and every tamper is in tests/e2e.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use k256::ecdsa::SigningKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use verifier::iexec::chain::{address, eip191};
use verifier::iexec::{hash_concat, to_hex};

const TASK: &str = "0x1a58dd6018b30b022eb35be53ad9374eb630925458d14643a1dfd9c686b964d8";
const DEAL: &str = "0x26d758de1be51697c33fa606cd0c5243082a6e675a4463b106d71fde2893280f";
const WORKER: &str = "0x000000000000000000000000000000000000c0de";

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("check-result-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn result_json(answer: &str) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "schema": "iexec-llm/result/v1",
        "status": "ok",
        "answer": answer,
        "parameters": {"temperature": 0.6, "top_p": 0.95},
        "model": {"file": "m.gguf", "sha256": "22".repeat(32)},
        "app": {"version": "0.1.0", "binary_sha256": "11".repeat(32)},
        "attestation": {"method": "unavailable", "reason": "no TDX device in this test"},
    }))
    .unwrap()
}

fn sign(key: &SigningKey, h: &[u8; 32]) -> String {
    let (sig, rid) = key.sign_prehash_recoverable(&eip191(h)).unwrap();
    let mut b = sig.to_bytes().to_vec();
    b.push(27 + rid.to_byte());
    to_hex(&b)
}

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        z.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap().into_inner()
}

/// Writes result.zip, receipt.json and measurement.json for `answer`.
fn fixture(dir: &Path, answer: &str) {
    fixture_of(dir, &result_json(answer));
}

/// The same for a result.json's bytes, signed as the genuine one is.
fn fixture_of(dir: &Path, result: &[u8]) {
    let result = result.to_vec();
    let computed = br#"{"deterministic-output-path": "/iexec_out/result.json"}"#;
    std::fs::write(
        dir.join("result.zip"),
        zip(&[("computed.json", computed), ("result.json", &result)]),
    )
    .unwrap();
    let out = dir.join("unpacked");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("computed.json"), computed).unwrap();
    std::fs::write(out.join("result.json"), &result).unwrap();

    let digest = to_hex(&Sha256::digest(&result));
    let rh = to_hex(&hash_concat(&[TASK, &digest]).unwrap());
    let rs = to_hex(&hash_concat(&[WORKER, TASK, &digest]).unwrap());
    let ek = SigningKey::from_slice(&[0x11; 32]).unwrap();
    let wk = SigningKey::from_slice(&[0x22; 32]).unwrap();
    let challenge = address(ek.verifying_key());
    let receipt = json!({
        "schema": "iexec-llm/receipt/v1",
        "task_id": TASK, "deal_id": DEAL, "task_index": 0,
        "worker": WORKER,
        "enclave_challenge": challenge,
        "enclave_signature": sign(&ek, &hash_concat(&[&rh, &rs]).unwrap()),
        "result_digest": digest, "result_hash": rh, "result_seal": rs,
        "workerpool_authorization": {
            "signature": sign(&wk, &hash_concat(&[WORKER, TASK, &challenge]).unwrap()),
            "signer": address(wk.verifying_key()),
        },
        "app": {"checksum": format!("0x{}", "ab".repeat(32)),
                "multiaddr": format!("registry.example/llm:1@sha256:{}", "ab".repeat(32))},
    });
    std::fs::write(dir.join("receipt.json"), receipt.to_string()).unwrap();
    let m = oci_image::Measurement {
        schema: oci_image::measurement::SCHEMA.into(),
        reference: "t".into(),
        manifest_digest: format!("sha256:{}", "ab".repeat(32)),
        config_digest: format!("sha256:{}", "cd".repeat(32)),
        layers: vec![],
        entrypoint: vec![],
        app: oci_image::measurement::AppMeasurement {
            version: "0.1.0".into(),
            path: "/app/iexec-llm".into(),
            sha256: "11".repeat(32),
        },
        models: vec![oci_image::measurement::FileMeasurement {
            path: "/models/m.gguf".into(),
            sha256: "22".repeat(32),
        }],
    };
    std::fs::write(
        dir.join("measurement.json"),
        serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
}

fn verifier(dir: &Path, result: &str, extra: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_verifier"))
        .arg("check-result")
        .arg(dir.join(result))
        .arg("--receipt")
        .arg(dir.join("receipt.json"))
        .arg("--expected")
        .arg(dir.join("measurement.json"))
        .args(extra)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
fn a_sealed_result_verifies_from_the_zip_and_from_its_directory() {
    let d = tmp("ok");
    fixture(&d, "Paris.");
    for input in ["result.zip", "unpacked"] {
        let (code, out, err) = verifier(&d, input, &[]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("✓ task id = keccak256(deal id ‖ task index)"),
            "{out}"
        );
        assert!(
            out.contains("✓ app multiaddr pins the manifest digest"),
            "{out}"
        );
        assert!(out.contains("VERIFIED (19 checks)."), "{out}");
        assert!(out.contains("trusted: no verified quote in the result (unavailable: no TDX device in this test)"), "{out}");
    }
    let (code, out, _) = verifier(&d, "result.zip", &["--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["checks"].as_array().unwrap().len(), 19);
    assert_eq!(v["failed"].as_array().unwrap().len(), 0);
    assert_eq!(v["attestation"], "unavailable: no TDX device in this test");
    assert_eq!(
        v["result_digest"],
        to_hex(&Sha256::digest(result_json("Paris.")))
    );
    // A quote can be required.
    let (code, out, _) = verifier(&d, "result.zip", &["--require-quote"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ TDX quote in the result"), "{out}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn an_edited_answer_fails_the_digest_the_chain_recorded() {
    let d = tmp("edited");
    fixture(&d, "Paris.");
    // The same receipt, another answer in the archive.
    let result = result_json("Lyon.");
    std::fs::write(
        d.join("result.zip"),
        zip(&[
            (
                "computed.json",
                br#"{"deterministic-output-path": "/iexec_out/result.json"}"#,
            ),
            ("result.json", &result),
        ]),
    )
    .unwrap();
    let (code, out, _) = verifier(&d, "result.zip", &["--json"]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let failed: Vec<&str> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        // The signature is over the digest the chain recorded, which is the receipt's: only
        // its comparison with the file's fails.
        ["resultDigest on chain = recomputed"]
    );
    assert!(v["proven"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| !p.as_str().unwrap().contains("signed for task")));
    let (_, text, _) = verifier(&d, "result.zip", &[]);
    assert!(
        text.contains("NOT verified: 1 of 19 checks failed."),
        "{text}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn unusable_input_exits_2_with_a_reason() {
    let d = tmp("bad");
    fixture(&d, "Paris.");
    std::fs::write(d.join("garbage.zip"), b"not a zip at all").unwrap();
    let (code, _, err) = verifier(&d, "garbage.zip", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("not a zip"), "{err}");

    let (code, _, err) = verifier(&d, "missing.zip", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.zip"), "{err}");

    // An encrypted result without the beneficiary's key.
    std::fs::write(
        d.join("encrypted.zip"),
        zip(&[
            ("iexec_out.zip.aes", &[0u8; 48]),
            ("aes-key.rsa", &[0u8; 256]),
        ]),
    )
    .unwrap();
    let (code, _, err) = verifier(&d, "encrypted.zip", &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("give the beneficiary's RSA private key (--key)"),
        "{err}"
    );

    // A key file that is no RSA key.
    std::fs::write(d.join("key.pem"), b"-----BEGIN NOTHING-----").unwrap();
    let (code, _, err) = verifier(
        &d,
        "encrypted.zip",
        &["--key", d.join("key.pem").to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(err.contains("not an RSA private key"), "{err}");

    // A zip entry escaping the output directory.
    std::fs::write(d.join("escape.zip"), zip(&[("../result.json", b"{}")])).unwrap();
    let (code, _, err) = verifier(&d, "escape.zip", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("not a plain relative path"), "{err}");

    // A receipt of another schema, or with a short task id.
    let mut r: Value =
        serde_json::from_slice(&std::fs::read(d.join("receipt.json")).unwrap()).unwrap();
    r["task_id"] = "0x1234".into();
    std::fs::write(d.join("receipt.json"), r.to_string()).unwrap();
    let (code, _, err) = verifier(&d, "result.zip", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("task_id is 2 bytes, not 32"), "{err}");
    r["schema"] = "other".into();
    std::fs::write(d.join("receipt.json"), r.to_string()).unwrap();
    let (code, _, err) = verifier(&d, "result.zip", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("expected \"iexec-llm/receipt/v1\""), "{err}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn contract_signature_rules_apply_to_the_enclave_signature() {
    // v = 0/1 and high-s are refused as the contract (OpenZeppelin ECDSA) refuses them.
    let d = tmp("rules");
    fixture(&d, "Paris.");
    let mut r: Value =
        serde_json::from_slice(&std::fs::read(d.join("receipt.json")).unwrap()).unwrap();
    let sig = hex::decode(&r["enclave_signature"].as_str().unwrap()[2..]).unwrap();
    let mut low_v = sig.clone();
    low_v[64] -= 27;
    r["enclave_signature"] = to_hex(&low_v).into();
    std::fs::write(d.join("receipt.json"), r.to_string()).unwrap();
    let (code, out, _) = verifier(&d, "result.zip", &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("v = 0; the contract accepts 27 or 28")
            || out.contains("v = 1; the contract accepts 27 or 28"),
        "{out}"
    );
    // s -> n - s (and v flipped) recovers the same key off chain, but is refused.
    let n =
        hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap();
    let s = &sig[32..64];
    let mut high = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let v = n[i] as i16 - s[i] as i16 - borrow;
        borrow = i16::from(v < 0);
        high[i] = v.rem_euclid(256) as u8;
    }
    let mut high_s = sig.clone();
    high_s[32..64].copy_from_slice(&high);
    high_s[64] = if sig[64] == 27 { 28 } else { 27 };
    r["enclave_signature"] = to_hex(&high_s).into();
    std::fs::write(d.join("receipt.json"), r.to_string()).unwrap();
    let (code, out, _) = verifier(&d, "result.zip", &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("s is in the upper half of the curve order"),
        "{out}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// The fixture with a real dstack quote and its JSON event log (testdata E8) in the unpacked
/// result, recorded in result.json's attestation: the vector and the unpacked directory.
fn dstack_fixture(d: &Path) -> (Value, PathBuf) {
    let j: Value = serde_json::from_slice(&common::load("tdx/dstack/quote-report.json")).unwrap();
    fixture(d, "Paris.");
    let out = d.join("unpacked");
    let mut r: Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    r["attestation"] = json!({"method": "dstack", "reportdata_scheme": "iexec-llm/reportdata/v1",
        "report_data": hex::encode(verifier::check_result::report_data(&r)),
        "quote_file": "quote.bin", "event_log_file": "eventlog.json"});
    std::fs::write(
        out.join("result.json"),
        serde_json::to_vec_pretty(&r).unwrap(),
    )
    .unwrap();
    std::fs::write(out.join("quote.bin"), j["quote"].as_str().unwrap()).unwrap();
    std::fs::write(out.join("eventlog.json"), j["event_log"].as_str().unwrap()).unwrap();
    (j, out)
}

#[test]
fn a_dstack_quote_and_event_log_are_replayed_and_rtmr3_events_listed() {
    // A real dstack quote with its JSON event log (testdata E8). Its REPORTDATA is not ours,
    // so the binding fails and, without collateral, the quote is not verified; the event log
    // replays to its RTMRs and RTMR3's runtime events are listed by name.
    let d = tmp("dstack");
    let (j, out) = dstack_fixture(&d);
    let (code, stdout, _) = verifier(&d, "unpacked", &["--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    let get = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name}: {stdout}"))
    };
    assert_eq!(
        get("REPORTDATA recorded in result.json = recomputed from its claims")["pass"],
        true
    );
    assert_eq!(
        get("quote REPORTDATA = recomputed from result.json")["pass"],
        false
    );
    assert_eq!(get("quote verified with collateral")["pass"], false);
    for k in 0..4 {
        assert_eq!(
            get(&format!("event log replays to the quote's RTMR{k}"))["pass"],
            true,
            "RTMR{k}"
        );
    }
    let names: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"compose-hash"), "{names:?}");
    assert!(v["trusted"][0]
        .as_str()
        .unwrap()
        .starts_with("no verified quote in the result"));
    // One byte of a runtime event's payload changed: RTMR3 no longer replays.
    let log = j["event_log"].as_str().unwrap();
    let ev: Value = serde_json::from_str(log).unwrap();
    let payload = ev
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "compose-hash")
        .unwrap()["event_payload"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = format!(
        "{}{}",
        if payload.starts_with('0') { "1" } else { "0" },
        &payload[1..]
    );
    std::fs::write(out.join("eventlog.json"), log.replace(&payload, &flipped)).unwrap();
    let (_, stdout, _) = verifier(&d, "unpacked", &["--json"]);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let failed: Vec<&str> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&"event log replays to the quote's RTMR3"),
        "{failed:?}"
    );
    assert!(
        !failed.contains(&"event log replays to the quote's RTMR0"),
        "{failed:?}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// Finding 4: strings from result.json (status, model file name, error kind) once reached the
/// screen raw, so ANSI escapes in them could erase the ✗ lines and draw a fake VERIFIED.
#[test]
fn escapes_in_the_result_cannot_draw_on_the_screen() {
    let dir = tmp("spoof");
    let fake = "\u{1b}[1A\u{1b}[2K\r✓ task status: ok\nVERIFIED (19 checks).\u{202e}";
    let mut v: Value = serde_json::from_slice(&result_json("hi")).unwrap();
    v["status"] = fake.into();
    v["model"]["file"] = fake.into();
    v["error"] = json!({"kind": fake, "message": fake});
    fixture_of(&dir, &serde_json::to_vec_pretty(&v).unwrap());
    let (code, out, _) = verifier(&dir, "result.zip", &[]);
    assert_eq!(code, 1, "{out}");
    for bad in ['\u{1b}', '\r', '\u{202e}'] {
        assert!(!out.contains(bad), "{bad:?} reached the screen: {out:?}");
    }
    assert!(out.contains("\\u{1b}[1A"), "{out}");
    // Every line is one the verifier wrote: none starts with the forged text.
    assert!(!out.lines().any(|l| l.starts_with("VERIFIED")), "{out}");
    assert!(out.contains("NOT verified"), "{out}");
    // The JSON report keeps the values exactly (escaped as JSON), for machines.
    let (_, json_out, _) = verifier(&dir, "result.zip", &["--json"]);
    let j: Value = serde_json::from_str(&json_out).unwrap();
    assert!(j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["found"].as_str().is_some_and(|f| f.contains(fake))));
}

fn run(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_verifier"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

fn make_bundle(d: &Path, result: &str, extra: &[&str], out: &Path) {
    let mut args: Vec<std::ffi::OsString> = vec![
        "bundle".into(),
        d.join(result).into(),
        "--receipt".into(),
        d.join("receipt.json").into(),
        "--expected".into(),
        d.join("measurement.json").into(),
        "--out".into(),
        out.into(),
    ];
    args.extend(extra.iter().map(Into::into));
    let a: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_os_str()).collect();
    let (code, o, e) = run(&a);
    assert_eq!(code, 0, "{o}{e}");
}

fn check_bundle(b: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "check-result".as_ref(),
        b.as_os_str(),
        "--bundle".as_ref(),
        "--json".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let (code, out, err) = run(&args);
    assert!(code < 2, "{out}{err}");
    (code, serde_json::from_str(&out).unwrap())
}

fn failed_names(v: &Value) -> Vec<String> {
    v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// The bundle's members, in order, and a bundle rebuilt from them (members' order kept).
fn members(b: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(b)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut v = Vec::new();
            f.read_to_end(&mut v).unwrap();
            (f.name().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
fn an_evidence_bundle_verifies_alone_and_every_member_is_checked() {
    let d = tmp("bundle");
    fixture(&d, "Paris.");
    let b1 = d.join("evidence.zip");
    let b2 = d.join("again.zip");
    make_bundle(&d, "result.zip", &[], &b1);
    make_bundle(&d, "result.zip", &[], &b2);
    let bytes = std::fs::read(&b1).unwrap();
    assert_eq!(bytes, std::fs::read(&b2).unwrap(), "deterministic");
    // From the directory: the same verdict.
    let b3 = d.join("from-dir.zip");
    make_bundle(&d, "unpacked", &[], &b3);

    // Alone: the bundle is moved to an empty directory and every other file removed.
    let alone = tmp("bundle-alone");
    let moved = alone.join("evidence.zip");
    std::fs::copy(&b1, &moved).unwrap();
    std::fs::copy(&b3, alone.join("from-dir.zip")).unwrap();
    std::fs::remove_dir_all(&d).unwrap();
    let (code, v) = check_bundle(&moved, &[]);
    assert_eq!(code, 0, "{v:#}");
    let n = v["checks"].as_array().unwrap().len();
    assert_eq!(
        n,
        19 + 1 + 3,
        "the result's 19, the members' list and 3 sha256"
    );
    assert!(v["trusted"].as_array().unwrap().iter().any(|t| t
        .as_str()
        .unwrap()
        .starts_with("the image measurement is the bundle's own")));
    let (code, v2) = check_bundle(&alone.join("from-dir.zip"), &[]);
    assert_eq!(code, 0, "{v2:#}");
    assert_eq!(v2["result_digest"], v["result_digest"]);

    let write = |name: &str, m: &[(String, Vec<u8>)]| {
        let files: Vec<(&str, &[u8])> = m.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let p = alone.join(name);
        std::fs::write(&p, zip(&files)).unwrap();
        p
    };
    let original = members(&bytes);
    assert_eq!(original[0].0, "manifest.json");
    // Each member changed by one byte: its own sha256 check fails.
    for i in 1..original.len() {
        let mut m = original.clone();
        let name = m[i].0.clone();
        let last = m[i].1.len() - 1;
        m[i].1[last] ^= 1;
        let (code, v) = check_bundle(&write("t.zip", &m), &[]);
        assert_eq!(code, 1, "{name}");
        let f = failed_names(&v);
        assert!(
            f.contains(&format!("bundle: {name} sha256 = manifest")),
            "{name}: {f:?}"
        );
    }
    // The receipt changed and the manifest updated to match: the chain checks fail.
    let mut m = original.clone();
    let r = m.iter().position(|(n, _)| n == "receipt.json").unwrap();
    let mut receipt: Value = serde_json::from_slice(&m[r].1).unwrap();
    receipt["result_digest"] = format!("0x{}", "00".repeat(32)).into();
    m[r].1 = receipt.to_string().into_bytes();
    let mut manifest: Value = serde_json::from_slice(&m[0].1).unwrap();
    for mem in manifest["members"].as_array_mut().unwrap() {
        if mem["name"] == "receipt.json" {
            mem["sha256"] = hex::encode(Sha256::digest(&m[r].1)).into();
            mem["size"] = m[r].1.len().into();
        }
    }
    m[0].1 = manifest.to_string().into_bytes();
    let (code, v) = check_bundle(&write("t.zip", &m), &[]);
    assert_eq!(code, 1);
    let f = failed_names(&v);
    assert!(
        f.contains(&"resultDigest on chain = recomputed".to_string()),
        "{f:?}"
    );
    assert!(!f.iter().any(|n| n.starts_with("bundle:")), "{f:?}");
    // A member the manifest does not list, and one it lists twice.
    let mut m = original.clone();
    m.push(("extra.json".into(), b"{}".to_vec()));
    let (code, v) = check_bundle(&write("t.zip", &m), &[]);
    assert_eq!(code, 1);
    assert!(failed_names(&v).contains(&"bundle: members are exactly the manifest's".to_string()));
    let mut m = original.clone();
    let mut manifest: Value = serde_json::from_slice(&m[0].1).unwrap();
    let first = manifest["members"][0].clone();
    manifest["members"].as_array_mut().unwrap().push(first);
    m[0].1 = manifest.to_string().into_bytes();
    let (code, v) = check_bundle(&write("t.zip", &m), &[]);
    assert_eq!(code, 1);
    assert!(failed_names(&v).contains(&"bundle: members are exactly the manifest's".to_string()));
    // A member missing.
    let mut m = original.clone();
    m.retain(|(n, _)| n != "measurement.json");
    let (code, v) = check_bundle(&write("t.zip", &m), &[]);
    assert_eq!(code, 1);
    let f = failed_names(&v);
    assert!(
        f.contains(&"bundle: members are exactly the manifest's".to_string()),
        "{f:?}"
    );
    assert!(
        f.contains(&"bundle: measurement.json sha256 = manifest".to_string()),
        "{f:?}"
    );
    // The measurement the user rebuilt must be the bundle's.
    let other = alone.join("other-measurement.json");
    let mut mj: Value = serde_json::from_slice(
        &original
            .iter()
            .find(|(n, _)| n == "measurement.json")
            .unwrap()
            .1,
    )
    .unwrap();
    mj["manifest_digest"] = format!("sha256:{}", "ef".repeat(32)).into();
    std::fs::write(&other, mj.to_string()).unwrap();
    let (code, v) = check_bundle(&moved, &["--expected", other.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(failed_names(&v)
        .contains(&"bundle: measurement's manifest digest = --expected's".to_string()));
    std::fs::remove_dir_all(alone).unwrap();
}

#[test]
fn a_bundle_carries_copies_of_the_quote_and_event_log_that_must_be_the_results() {
    let d = tmp("bundle-dstack");
    dstack_fixture(&d);
    let collateral = common::testdata().join("tdx/dcap-qvl/tdx_quote_collateral.json");
    let b = d.join("evidence.zip");
    make_bundle(
        &d,
        "unpacked",
        &["--collateral", collateral.to_str().unwrap()],
        &b,
    );
    let bytes = std::fs::read(&b).unwrap();
    let names: Vec<String> = members(&bytes).into_iter().map(|m| m.0).collect();
    assert_eq!(
        names,
        [
            "manifest.json",
            "attestation/eventlog.json",
            "attestation/quote.bin",
            "collateral.json",
            "measurement.json",
            "receipt.json",
            "result.zip"
        ]
    );
    let (code, v) = check_bundle(&b, &[]);
    assert_eq!(
        code, 1,
        "the quote is not this result's (as in the dstack test)"
    );
    let f = failed_names(&v);
    assert!(!f.iter().any(|n| n.starts_with("bundle:")), "{f:?}");
    assert!(f.contains(&"quote REPORTDATA = recomputed from result.json".to_string()));
    // The copy of the quote replaced (and the manifest updated to match): named.
    let mut m = members(&bytes);
    let q = m
        .iter()
        .position(|(n, _)| n == "attestation/quote.bin")
        .unwrap();
    m[q].1 = b"00".to_vec();
    let mut manifest: Value = serde_json::from_slice(&m[0].1).unwrap();
    for mem in manifest["members"].as_array_mut().unwrap() {
        if mem["name"] == "attestation/quote.bin" {
            mem["sha256"] = hex::encode(Sha256::digest(b"00")).into();
        }
    }
    m[0].1 = manifest.to_string().into_bytes();
    let files: Vec<(&str, &[u8])> = m.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    std::fs::write(&b, zip(&files)).unwrap();
    let (_, v) = check_bundle(&b, &[]);
    let f = failed_names(&v);
    assert!(
        f.contains(&"bundle: attestation/quote.bin = the result's quote.bin".to_string()),
        "{f:?}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// How a fake endpoint answers a request (method, id): HTTP status, body, seconds to wait.
type Answer = fn(&str, &Value) -> (u16, String, u64);

/// A JSON-RPC endpoint that answers every request with `answer`. Serves until the test ends.
fn endpoint(answer: Answer) -> String {
    use std::io::{BufRead, BufReader, Read};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                let req: Value = serde_json::from_slice(&body).unwrap();
                let (status, body, delay) = answer(req["method"].as_str().unwrap(), &req["id"]);
                std::thread::sleep(std::time::Duration::from_secs(delay));
                let mut s = s;
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    url
}

fn ok(id: &Value, result: Value) -> (u16, String, u64) {
    (
        200,
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
        0,
    )
}

/// A chain 31337 with a contract at every address that answers every call with `call`.
fn chain(m: &str, id: &Value, call: &str) -> (u16, String, u64) {
    match m {
        "eth_chainId" => ok(id, json!("0x7a69")),
        "eth_blockNumber" => ok(id, json!("0x10")),
        "eth_getCode" => ok(id, json!("0x6080")),
        _ => ok(id, json!(call)),
    }
}

#[test]
fn bad_chain_answers_exit_2_with_the_reason_and_never_hang() {
    let d = tmp("rpc");
    fixture(&d, "Paris.");
    let cases: [(Answer, &str); 8] = [
        (
            |m, id| match m {
                "eth_chainId" => ok(id, json!("0xa4b1")),
                _ => chain(m, id, "0x"),
            },
            "the endpoint is chain 42161, not chain 31337",
        ),
        (|_, _| (500, "{}".into(), 0), "HTTP 500"),
        (
            |_, _| (200, r#"{"jsonrpc":"2.0","id":1,"res"#.into(), 0),
            "not JSON",
        ),
        (
            |_, _| {
                (
                    200,
                    r#"{"jsonrpc":"2.0","id":99,"result":"0x7a69"}"#.into(),
                    0,
                )
            },
            "id is not the request's",
        ),
        (
            |_, id| {
                (200, json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": "rate limited"}}).to_string(), 0)
            },
            "rate limited",
        ),
        (
            |m, id| match m {
                "eth_getCode" => ok(id, json!("0x")),
                _ => chain(m, id, "0x"),
            },
            "no contract at",
        ),
        (|m, id| chain(m, id, "0x0001"), "is not PoCo's"),
        (|_, _| (200, "{}".into(), 30), "eth_chainId"),
    ];
    for (answer, why) in cases {
        let url = endpoint(answer);
        let o = Command::new(env!("CARGO_BIN_EXE_verifier"))
            .arg("check-result")
            .arg(d.join("result.zip"))
            .args(["--expected"])
            .arg(d.join("measurement.json"))
            .args([
                "--task",
                TASK,
                "--rpc",
                &url,
                "--chain-id",
                "31337",
                "--rpc-timeout",
                "2",
            ])
            .args(["--poco", "0x00000000000000000000000000000000000c0c0a"])
            .output()
            .unwrap();
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(2), "{why}: {err}");
        assert!(err.contains(why), "{why}: {err}");
        assert!(o.stdout.is_empty(), "{why}");
    }
    // Arguments that name no chain, or a PoCo that is not an address.
    for args in [
        vec!["--task", TASK],
        vec![
            "--task",
            TASK,
            "--rpc",
            "http://127.0.0.1:9",
            "--chain-id",
            "1",
            "--poco",
            "0x12",
        ],
        vec![
            "--task",
            "0x12",
            "--chain",
            "arbitrum",
            "--rpc",
            "http://127.0.0.1:9",
        ],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_verifier"))
            .arg("check-result")
            .arg(d.join("result.zip"))
            .args(["--expected"])
            .arg(d.join("measurement.json"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
    std::fs::remove_dir_all(d).unwrap();
}
