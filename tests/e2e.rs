//! Workspace end-to-end tests: the image writer's determinism, the layout accepted by
//! skopeo and umoci, the image run by runc the way an iExec worker runs it, `verifier measure`,
//! and the Nix files checked offline.
//!
//! Needs (scripts/test.sh provides them): the static app binary
//! (`target/x86_64-unknown-linux-gnu/release/iexec-llm`, or `STATIC_APP`), the small model
//! (`models/…`, or `SMOLLM2_GGUF`), and skopeo, umoci, runc and nix-instantiate on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use oci_image::Measurement;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common.rs"]
mod common;
use common::*;

/// Every file of a directory tree, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn copy_with(src: &Path, dst: &Path, mode: u32, mtime_secs: u64) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(src, dst).unwrap();
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode)).unwrap();
    let f = std::fs::File::options().write(true).open(dst).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime_secs))
        .unwrap();
}

fn run(cmd: &mut Command) -> std::process::Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn image_bytes_depend_only_on_the_inputs() {
    let app = static_app();
    let model = smollm2();
    // Two copies of each input with different mtimes and permissions (what a umask changes),
    // and a second small model so that the input order matters.
    let (a, b) = (tempdir("det-a"), tempdir("det-b"));
    let extra_a = a.join("extra.gguf");
    std::fs::write(&extra_a, b"GGUF not really a model, but bytes to place").unwrap();
    copy_with(&app, &a.join("app"), 0o700, 1_000);
    copy_with(&model, &a.join("m.gguf"), 0o600, 2_000);
    copy_with(&app, &b.join("app"), 0o755, 3_000_000_000);
    copy_with(&model, &b.join("m.gguf"), 0o644, 5);
    copy_with(&extra_a, &b.join("extra.gguf"), 0o666, 9);
    let ma = oci_image::build(
        &spec(
            &a.join("app"),
            vec![
                (a.join("m.gguf"), SMOLLM2.into()),
                (extra_a.clone(), "extra.gguf".into()),
            ],
        ),
        &a.join("oci"),
    )
    .unwrap();
    let mb = oci_image::build(
        &spec(
            &b.join("app"),
            vec![
                (b.join("extra.gguf"), "extra.gguf".into()),
                (b.join("m.gguf"), SMOLLM2.into()),
            ],
        ),
        &b.join("oci"),
    )
    .unwrap();
    assert_eq!(ma, mb);
    let (ta, tb) = (tree(&a.join("oci")), tree(&b.join("oci")));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    assert!(ta == tb, "the two layouts differ");
    assert_eq!(
        ta.len(),
        6,
        "oci-layout, index.json and 4 blobs: {:?}",
        ta.keys()
    );

    // One byte of the model changes the model layer, the config (diff_ids) and the manifest,
    // and nothing else: the app layer and the binary's digest stay.
    let c = tempdir("det-c");
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(c.join("m.gguf"), &bytes).unwrap();
    let mc = oci_image::build(
        &spec(
            &a.join("app"),
            vec![
                (c.join("m.gguf"), SMOLLM2.into()),
                (extra_a.clone(), "extra.gguf".into()),
            ],
        ),
        &c.join("oci"),
    )
    .unwrap();
    assert_ne!(mc.manifest_digest, ma.manifest_digest);
    assert_ne!(mc.config_digest, ma.config_digest);
    assert_ne!(mc.layers[0], ma.layers[0]);
    assert_eq!(mc.layers[1], ma.layers[1]);
    assert_eq!(mc.app, ma.app);
    assert_ne!(mc.models, ma.models);

    // One byte of the binary: the app layer changes, the model layer does not.
    let d = tempdir("det-d");
    let mut bin = std::fs::read(&app).unwrap();
    let mid = bin.len() / 2;
    bin[mid] ^= 1;
    std::fs::write(d.join("app"), &bin).unwrap();
    let md = oci_image::build(
        &spec(
            &d.join("app"),
            vec![
                (a.join("m.gguf"), SMOLLM2.into()),
                (extra_a, "extra.gguf".into()),
            ],
        ),
        &d.join("oci"),
    )
    .unwrap();
    assert_eq!(md.layers[0], ma.layers[0]);
    assert_ne!(md.layers[1], ma.layers[1]);
    assert_ne!(md.app.sha256, ma.app.sha256);
    assert_eq!(md.models, ma.models);
    assert_ne!(md.manifest_digest, ma.manifest_digest);
    for d in [a, b, c, d] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// Builds the real image (static app + SmolLM2) with the `oci-image` library; returns the
/// layout directory and its measurement.
fn build_image(tag: &str) -> (PathBuf, Measurement, PathBuf) {
    let dir = tempdir(tag);
    let m = oci_image::build(
        &spec(&static_app(), vec![(smollm2(), SMOLLM2.into())]),
        &dir.join("oci"),
    )
    .unwrap();
    (dir.join("oci"), m, dir)
}

#[test]
fn skopeo_and_umoci_accept_the_layout_and_verifier_measure_names_an_altered_layer() {
    let (oci, m, dir) = build_image("tools");
    let o = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:test", oci.display())));
    let info: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["Digest"], m.manifest_digest.as_str());
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Layers"][0], m.layers[0].digest.as_str());
    assert_eq!(info["Layers"][1], m.layers[1].digest.as_str());

    let bundle = dir.join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:test", oci.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let app_sha = sha256(&rootfs.join("app/iexec-llm"));
    assert_eq!(app_sha, m.app.sha256);
    assert_eq!(sha256(&rootfs.join("models").join(SMOLLM2)), SMOLLM2_SHA256);

    // verifier measure: passes as built...
    let (measured, mut report) = verifier::image::measure::measure(&oci, Some("test")).unwrap();
    verifier::image::measure::compare(&measured, &m, &mut report);
    assert!(report.passed(), "{}", report.human());
    assert!(report.checks.len() >= 15);

    // ...and fails, naming the layer, when one byte of a layer blob changes.
    let hex = m.layers[1].digest.strip_prefix("sha256:").unwrap();
    let blob = oci.join("blobs/sha256").join(hex);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&blob, &bytes).unwrap();
    let (measured, mut report) = verifier::image::measure::measure(&oci, Some("test")).unwrap();
    verifier::image::measure::compare(&measured, &m, &mut report);
    assert!(!report.passed());
    let failed: Vec<&str> = report.failures().map(|c| c.name.as_str()).collect();
    assert!(
        failed.iter().any(
            |n| n.starts_with(&format!("layer 1 ({})", m.layers[1].digest))
                && n.ends_with("blob sha256")
        ),
        "{failed:?}"
    );
    assert!(failed.iter().all(|n| !n.contains("layer 0")), "{failed:?}");
    // The binary is then unaccounted for; the model is still measured.
    assert!(
        failed.iter().any(|n| n.starts_with("app binary")),
        "{failed:?}"
    );
    assert!(
        !failed.iter().any(|n| n.starts_with("model ")),
        "{failed:?}"
    );

    // An expected measurement from another build fails on the digests.
    let mut other = m.clone();
    other.models[0].sha256 = "00".repeat(32);
    std::fs::write(&blob, {
        bytes[100] ^= 0x40;
        &bytes
    })
    .unwrap();
    let (measured, mut report) = verifier::image::measure::measure(&oci, Some("test")).unwrap();
    verifier::image::measure::compare(&measured, &other, &mut report);
    let failed: Vec<&str> = report.failures().map(|c| c.name.as_str()).collect();
    assert_eq!(
        failed,
        vec![format!("model /models/{SMOLLM2} sha256").as_str()]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn sha256(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

/// A task's arguments and id, as the worker passes them.
const TASK_ARGS: [&str; 3] = [
    "prompt=What is the capital of France?",
    "max_tokens=16",
    "temperature=0",
];

fn task_id() -> String {
    format!("0x{}", "5a".repeat(32))
}

/// Unpacks the image and writes the bundle's config as a worker would start it: the image's
/// entrypoint with the deal's args, the worker's variables, /iexec_in and /iexec_out bound
/// in, no network, no rlimits; `extra_mounts` are appended (and a tmpfs replaces /sys when
/// there are any, so they can be placed under it).
fn worker_bundle(
    oci: &Path,
    m: &Measurement,
    dir: &Path,
    extra_mounts: Vec<Value>,
) -> (PathBuf, PathBuf) {
    let bundle = dir.join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:test", oci.display()))
        .arg(&bundle));
    let (host_in, host_out) = (dir.join("iexec_in"), dir.join("iexec_out"));
    std::fs::create_dir_all(&host_in).unwrap();
    std::fs::create_dir_all(&host_out).unwrap();
    let cfg_path = bundle.join("config.json");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let mut args: Vec<Value> = m
        .entrypoint
        .iter()
        .map(|s| Value::from(s.as_str()))
        .collect();
    args.extend(TASK_ARGS.iter().map(|s| Value::from(*s)));
    cfg["process"]["args"] = Value::from(args);
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["rlimits"] = Value::Array(vec![]);
    cfg["process"]["env"] = serde_json::json!([
        "PATH=/app",
        "IEXEC_IN=/iexec_in",
        "IEXEC_OUT=/iexec_out",
        format!("IEXEC_TASK_ID={}", task_id()),
        "IEXEC_INPUT_FILES_NUMBER=0",
        "IEXEC_DATASET_FILENAME=",
    ]);
    let namespaces = cfg["linux"]["namespaces"].as_array().unwrap();
    assert!(
        namespaces.iter().any(|n| n["type"] == "network"),
        "the bundle must have its own, empty network"
    );
    let mounts = cfg["mounts"].as_array_mut().unwrap();
    for (src, dst, mode) in [
        (&host_in, "/iexec_in", "ro"),
        (&host_out, "/iexec_out", "rw"),
    ] {
        mounts.push(serde_json::json!({
            "destination": dst, "type": "bind", "source": src, "options": ["rbind", mode],
        }));
    }
    if !extra_mounts.is_empty() {
        for mnt in mounts.iter_mut() {
            if mnt["destination"] == "/sys" {
                *mnt = serde_json::json!({"destination": "/sys", "type": "tmpfs",
                    "source": "tmpfs", "options": ["nosuid", "noexec", "nodev"]});
            }
        }
        mounts.retain(|m| {
            !m["destination"]
                .as_str()
                .unwrap_or("")
                .starts_with("/sys/fs/cgroup")
        });
        mounts.extend(extra_mounts);
        // Container runtimes mask /sys/firmware by default (so the TD event log is not
        // readable there); this worker exposes it.
        if let Some(masked) = cfg["linux"]["maskedPaths"].as_array_mut() {
            masked.retain(|p| p != "/sys/firmware");
        }
    }
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    (bundle, host_out)
}

/// Whether this machine can run a container with runc: as root (CI and our machines are; a
/// developer without root runs the same checks in the demo's direct path instead).
fn can_run_containers(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("{test}: not run: runc needs root here");
    }
    root
}

fn runc_run(bundle: &Path) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let id = format!(
        "e2e-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let o = Command::new("runc")
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    assert!(
        o.status.success(),
        "runc: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Test keys: the task's enclave-challenge key and the workerpool owner's.
fn keys() -> (k256::ecdsa::SigningKey, k256::ecdsa::SigningKey) {
    (
        k256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap(),
        k256::ecdsa::SigningKey::from_slice(&[0x22; 32]).unwrap(),
    )
}

const WORKER: &str = "0x000000000000000000000000000000000000c0de";

fn seal(out: &Path, m: &Measurement) -> verifier::iexec::receipt::Receipt {
    let (ek, wk) = keys();
    e2e_tests::seal(
        out,
        &e2e_tests::Task {
            task_id: &task_id(),
            worker: WORKER,
            enclave_key: &ek,
            workerpool_key: &wk,
            app_checksum: &format!("0x{}", m.manifest_digest.trim_start_matches("sha256:")),
        },
    )
    .unwrap()
}

#[test]
fn the_image_runs_under_runc_like_a_worker_and_writes_the_same_result_as_the_binary() {
    if !can_run_containers("runc") {
        return;
    }
    let (oci, m, dir) = build_image("runc");
    let (bundle, host_out) = worker_bundle(&oci, &m, &dir, vec![]);
    runc_run(&bundle);
    let in_container = std::fs::read(host_out.join("result.json")).unwrap();
    let computed: Value =
        serde_json::from_slice(&std::fs::read(host_out.join("computed.json")).unwrap()).unwrap();
    assert_eq!(
        computed["deterministic-output-path"],
        "/iexec_out/result.json"
    );

    // The same binary run directly, same arguments and variables.
    let direct_out = dir.join("direct_out");
    let o = Command::new(static_app())
        .env_clear()
        .env("IEXEC_IN", dir.join("iexec_in"))
        .env("IEXEC_OUT", &direct_out)
        .env("IEXEC_TASK_ID", task_id())
        .env("IEXEC_INPUT_FILES_NUMBER", "0")
        .args([
            "--model",
            smollm2().to_str().unwrap(),
            "--model-sha256",
            SMOLLM2_SHA256,
        ])
        .args(TASK_ARGS)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let direct = std::fs::read(direct_out.join("result.json")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&in_container),
        String::from_utf8_lossy(&direct)
    );
    let r: Value = serde_json::from_slice(&in_container).unwrap();
    assert_eq!(r["status"], "ok");
    assert_eq!(r["app"]["binary_sha256"], m.app.sha256.as_str());
    assert_eq!(r["model"]["sha256"], SMOLLM2_SHA256);
    // No TDX device in this container: recorded, and the task ran normally.
    assert_eq!(r["attestation"]["method"], "unavailable");
    assert!(r["attestation"]["reason"]
        .as_str()
        .unwrap()
        .contains("/sys/kernel/config/tsm/report"));
    assert!(!host_out.join("quote.bin").exists());

    // Sealed as a worker would, the result verifies without a quote, and says so.
    let receipt = seal(&host_out, &m);
    let zip = dir.join("iexec_out.zip");
    std::fs::write(&zip, e2e_tests::zip_output(&host_out).unwrap()).unwrap();
    let archive = verifier::iexec::archive::ResultArchive::open(&zip, None).unwrap();
    let o = check(&archive, &receipt, &m, None, &Default::default(), false);
    assert!(o.report.passed(), "{}", o.report.human());
    assert!(
        o.attestation.starts_with("unavailable: "),
        "{}",
        o.attestation
    );
    assert!(o.trusted[0].starts_with("no verified quote in the result"));
    assert_eq!(o.proven.len(), 2, "{:?}", o.proven);
    // --require-quote turns that into a failure.
    let o = check(&archive, &receipt, &m, None, &Default::default(), true);
    assert_eq!(failed(&o), ["TDX quote in the result"]);
    std::fs::remove_dir_all(dir).unwrap();
}

fn failed(o: &verifier::check_result::Outcome) -> Vec<String> {
    o.report.failures().map(|c| c.name.clone()).collect()
}

const S1_TIME: i64 = 1_752_919_234;

fn check(
    archive: &verifier::iexec::archive::ResultArchive,
    receipt: &verifier::iexec::receipt::Receipt,
    m: &Measurement,
    quote_world: Option<(
        &verifier::tdx::collateral::Collateral,
        &verifier::tdx::verify::Trust,
    )>,
    policy: &verifier::tdx::policy::Policy,
    require_quote: bool,
) -> verifier::check_result::Outcome {
    let default_trust = verifier::tdx::verify::Trust::default();
    verifier::check_result::check(&verifier::check_result::Inputs {
        archive,
        receipt,
        expected: m,
        collateral: quote_world.map(|q| verifier::tdx::judge::CollateralSource::Given(q.0)),
        trust: quote_world.map_or(&default_trust, |q| q.1),
        policy,
        now: S1_TIME,
        require_quote,
        read_from: None,
    })
}

/// A vector from `verifier/testdata`, checked against its manifest (the verifier's loader).
fn vector(rel: &str) -> Vec<u8> {
    vectors::load(rel)
}

#[path = "../verifier/tests/common/mod.rs"]
mod vectors;

fn sha256_bytes(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(b))
}

type Files = std::collections::BTreeMap<String, Vec<u8>>;

fn edit_result(files: &mut Files, f: impl Fn(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&files["result.json"]).unwrap();
    f(&mut v);
    files.insert("result.json".into(), serde_json::to_vec_pretty(&v).unwrap());
}

#[path = "../verifier/tests/common/pki.rs"]
mod pki;

#[test]
fn an_attested_result_verifies_end_to_end_and_each_tamper_is_caught() {
    if !can_run_containers("attested") {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use verifier::iexec::archive::ResultArchive;

    // A synthetic DCAP PKI, S1's real quote body and collateral re-signed by it, and a real
    // CCEL event log (trustee's) whose replay the quote's RTMRs carry.
    let w = pki::world(pki::S1_FMSPC);
    let root_der = w.root.der.clone();
    let s1 = vector("tdx/dcap-qvl/tdx_quote");
    let collateral = pki::collateral_for(
        &w,
        &vector("tdx/dcap-qvl/tdx_quote_collateral.json"),
        pki::crl(&w.root, &[]),
        pki::crl(&w.pck_ca, &[]),
    );
    let trust = verifier::tdx::verify::Trust {
        root_sha256: sha256_bytes(&w.root.der),
    };
    let ccel = vector("tdx/trustee/eventlog/CCEL_data");
    let tdx: Value = serde_json::from_slice(&vector("tdx/vectors.json")).unwrap();
    let e2 = tdx["eventlog_vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "E2")
        .unwrap();
    let rtmrs: Vec<u8> = (0..4)
        .flat_map(|i| hex::decode(e2["expected"][format!("rtmr{i}")].as_str().unwrap()).unwrap())
        .collect();
    let make_quote = {
        let (s1, rtmrs) = (s1.clone(), rtmrs.clone());
        move |w: &pki::World, report_data: &[u8]| {
            pki::quote_with(w, &s1, |b| {
                b[pki::RTMR_AT..pki::RTMR_AT + 192].copy_from_slice(&rtmrs);
                b[pki::REPORT_DATA_AT..pki::REPORT_DATA_AT + 64].copy_from_slice(report_data);
            })
        }
    };
    let other_quote = make_quote(&w, &[0x11; 64]);

    let (oci, m, dir) = build_image("attested");
    // configfs-tsm's stand-in: a directory where, as in the kernel, an entry's outblob is the
    // quote over its inblob (and generation counts writes).
    let tsm = dir.join("tsm-report");
    std::fs::create_dir_all(&tsm).unwrap();
    let ccel_file = dir.join("CCEL");
    std::fs::write(&ccel_file, &ccel).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answered = {
        let (tsm, stop) = (tsm.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                for e in std::fs::read_dir(&tsm).unwrap().flatten() {
                    let (inblob, outblob) = (e.path().join("inblob"), e.path().join("outblob"));
                    match std::fs::read(&inblob) {
                        Ok(rd) if rd.len() == 64 && !outblob.exists() => {
                            std::fs::write(e.path().join("provider"), "tdx_guest\n").unwrap();
                            std::fs::write(e.path().join("generation"), "1\n").unwrap();
                            let tmp = e.path().join(".outblob");
                            std::fs::write(&tmp, make_quote(&w, &rd)).unwrap();
                            std::fs::rename(&tmp, &outblob).unwrap();
                            n += 1;
                        }
                        _ => {}
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            n
        })
    };
    let (bundle, host_out) = worker_bundle(
        &oci,
        &m,
        &dir,
        vec![
            serde_json::json!({"destination": "/sys/kernel/config/tsm/report", "type": "bind",
                "source": tsm, "options": ["rbind", "rw"]}),
            serde_json::json!({"destination": "/sys/firmware/acpi/tables/data/CCEL",
                "type": "bind", "source": ccel_file, "options": ["bind", "ro"]}),
        ],
    );
    runc_run(&bundle);
    stop.store(true, Ordering::SeqCst);
    assert_eq!(answered.join().unwrap(), 1, "one quote requested");

    let r: Value =
        serde_json::from_slice(&std::fs::read(host_out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["status"], "ok");
    assert_eq!(r["attestation"]["method"], "configfs-tsm", "{r}");
    assert_eq!(r["attestation"]["provider"], "tdx_guest");
    assert_eq!(r["attestation"]["event_log_file"], "eventlog.bin");
    assert_eq!(std::fs::read(host_out.join("eventlog.bin")).unwrap(), ccel);

    // Sealed and zipped as a worker does; verified with the test root at S1's time, with a
    // policy pinning MRTD and the RTMRs.
    let receipt = seal(&host_out, &m);
    let zip_path = dir.join("iexec_out.zip");
    std::fs::write(&zip_path, e2e_tests::zip_output(&host_out).unwrap()).unwrap();
    let q = verifier::tdx::quote::parse(&s1).unwrap();
    let verifier::tdx::quote::Body::Td(td) = &q.body else {
        panic!()
    };
    let policy = verifier::tdx::policy::Policy {
        mr_td: Some(hex::encode(td.mr_td)),
        rtmr: [0, 1, 2, 3].map(|i| Some(hex::encode(&rtmrs[i * 48..i * 48 + 48]))),
        ..Default::default()
    };
    let qw = Some((&collateral, &trust));
    let archive = ResultArchive::open(&zip_path, None).unwrap();
    let o = check(&archive, &receipt, &m, qw, &policy, true);
    assert!(o.report.passed(), "{}", o.report.human());
    assert_eq!(o.tcb_status.as_deref(), Some("UpToDate"));
    assert_eq!(o.attestation, "configfs-tsm");
    assert_eq!(o.proven.len(), 4, "{:?}", o.proven);
    assert!(o.report.checks.len() > 40, "{}", o.report.checks.len());
    // The unpacked directory gives the same verdict.
    let o2 = check(
        &ResultArchive::open(&host_out, None).unwrap(),
        &receipt,
        &m,
        qw,
        &policy,
        true,
    );
    assert_eq!(o2.report.checks, o.report.checks);

    // Encrypted for a beneficiary: opens with that key only.
    let mut rng = rand::rngs::OsRng;
    let key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let enc = dir.join("encrypted.zip");
    std::fs::write(
        &enc,
        e2e_tests::encrypt_for(&std::fs::read(&zip_path).unwrap(), &key.to_public_key()).unwrap(),
    )
    .unwrap();
    let opened = ResultArchive::open(&enc, Some(&key)).unwrap();
    assert_eq!(opened.files, archive.files);
    let o3 = check(&opened, &receipt, &m, qw, &policy, true);
    assert!(o3.report.passed(), "{}", o3.report.human());
    let wrong = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let err = ResultArchive::open(&enc, Some(&wrong))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not the beneficiary's key"), "{err}");

    // Each tamper fails with its own reason.
    let verdict = |edit: &dyn Fn(&mut Files),
                   rc: &dyn Fn(&mut verifier::iexec::receipt::Receipt)| {
        let mut files = archive.files.clone();
        edit(&mut files);
        let a = ResultArchive::from_files(files, archive.dirs.clone(), None).unwrap();
        let mut receipt = receipt.clone();
        rc(&mut receipt);
        failed(&check(&a, &receipt, &m, qw, &policy, true))
    };
    const SIG: &str =
        "enclave signature over (resultHash, resultSeal) recovers the enclave challenge";
    const BOUND: &str = "quote REPORTDATA = recomputed from result.json";
    const RECORDED: &str = "REPORTDATA recorded in result.json = recomputed from its claims";
    const ON_CHAIN: [&str; 3] = [
        "resultDigest on chain = recomputed",
        "resultHash = keccak256(task id ‖ resultDigest)",
        "resultSeal = keccak256(worker ‖ task id ‖ resultDigest)",
    ];
    let chain_and_binding = |extra: &[&str]| {
        // The signature is over the digest the chain recorded: an edited result fails only
        // the comparison of that digest with the file's.
        let mut v: Vec<String> = vec![ON_CHAIN[0].to_string()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.push(RECORDED.into());
        v.push(BOUND.into());
        v
    };
    // The answer edited.
    let got = verdict(
        &|f| edit_result(f, |v| v["answer"] = "Lyon.".into()),
        &|_| {},
    );
    assert_eq!(got, chain_and_binding(&[]));
    // The model digest swapped.
    let got = verdict(
        &|f| edit_result(f, |v| v["model"]["sha256"] = "ab".repeat(32).into()),
        &|_| {},
    );
    assert_eq!(
        got,
        chain_and_binding(&["model sha256 (result.json) = a measured model"])
    );
    // The binary digest swapped.
    let got = verdict(
        &|f| edit_result(f, |v| v["app"]["binary_sha256"] = "cd".repeat(32).into()),
        &|_| {},
    );
    assert_eq!(
        got,
        chain_and_binding(&["app binary sha256 (result.json) = measured"])
    );
    // A quote from another result.
    let got = verdict(
        &|f| {
            f.insert("quote.bin".into(), other_quote.clone());
        },
        &|_| {},
    );
    assert_eq!(got, [BOUND]);
    // The receipt's enclave signature made by another key.
    let got = verdict(&|_| {}, &|r| {
        let other = k256::ecdsa::SigningKey::from_slice(&[0x33; 32]).unwrap();
        let msg = verifier::iexec::hash_concat(&[
            r.result_hash.as_deref().unwrap(),
            r.result_seal.as_deref().unwrap(),
        ])
        .unwrap();
        r.enclave_signature = e2e_tests::sign(&other, &msg).unwrap();
    });
    assert_eq!(got, [SIG]);
    // Another task id.
    let got = verdict(&|_| {}, &|r| r.task_id = format!("0x{}", "6b".repeat(32)));
    assert_eq!(
        got,
        [
            ON_CHAIN[1],
            ON_CHAIN[2],
            SIG,
            "WorkerpoolAuthorization of (worker, task id, enclave challenge) signed by the expected signer",
        ]
    );
    // An app checksum that is not the measured image.
    let got = verdict(&|_| {}, &|r| {
        r.app.as_mut().unwrap().checksum = Some(format!("0x{}", "ee".repeat(32)))
    });
    assert_eq!(got, ["app checksum on chain = image manifest digest"]);
    // The event log edited: one byte of an extended digest (the first event after the
    // header's spec-id event).
    let events = verifier::tdx::eventlog::parse_ccel(&ccel).unwrap();
    let target = events
        .iter()
        .find(|e| e.rtmr.is_some() && e.event_type != 3)
        .unwrap();
    let at = ccel
        .windows(48)
        .position(|win| win == target.digest)
        .unwrap();
    let got = verdict(
        &|f| {
            f.get_mut("eventlog.bin").unwrap()[at + 5] ^= 1;
        },
        &|_| {},
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("event log replays to the quote's RTMR"),
        "{got:?}"
    );

    // One evidence bundle holding all of the above, verified alone by the command line: in
    // an empty directory with only the checker's own choices beside it (root, policy).
    let ev = dir.join("evidence-in");
    std::fs::create_dir_all(&ev).unwrap();
    std::fs::write(
        ev.join("receipt.json"),
        serde_json::to_vec(&receipt).unwrap(),
    )
    .unwrap();
    std::fs::write(ev.join("measurement.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    std::fs::write(ev.join("collateral.json"), collateral.to_bundle_json()).unwrap();
    let alone = dir.join("evidence-alone");
    std::fs::create_dir_all(&alone).unwrap();
    let bundle = alone.join("evidence.zip");
    let cli = |args: &[&std::ffi::OsStr]| {
        use clap::Parser;
        let mut all: Vec<&std::ffi::OsStr> = vec!["verifier".as_ref()];
        all.extend_from_slice(args);
        verifier::cli::run(verifier::cli::Cli::parse_from(all)).unwrap()
    };
    let made = cli(&[
        "bundle".as_ref(),
        zip_path.as_os_str(),
        "--receipt".as_ref(),
        ev.join("receipt.json").as_os_str(),
        "--expected".as_ref(),
        ev.join("measurement.json").as_os_str(),
        "--collateral".as_ref(),
        ev.join("collateral.json").as_os_str(),
        "--out".as_ref(),
        bundle.as_os_str(),
    ]);
    assert!(made.passed, "{}", made.text);
    std::fs::remove_dir_all(&ev).unwrap();
    std::fs::write(alone.join("root.der"), &root_der).unwrap();
    let rtmr_pins = [0, 1, 2, 3].map(|i| hex::encode(&rtmrs[i * 48..i * 48 + 48]));
    let pins = serde_json::json!({"mr_td": hex::encode(td.mr_td), "rtmr": rtmr_pins});
    std::fs::write(alone.join("policy.json"), pins.to_string()).unwrap();
    let at = S1_TIME.to_string();
    let checked = cli(&[
        "check-result".as_ref(),
        bundle.as_os_str(),
        "--bundle".as_ref(),
        "--root-ca".as_ref(),
        alone.join("root.der").as_os_str(),
        "--policy".as_ref(),
        alone.join("policy.json").as_os_str(),
        "--at".as_ref(),
        at.as_ref(),
        "--require-quote".as_ref(),
    ]);
    assert!(checked.passed, "{}", checked.text);
    // The result's checks, the members' list, 6 members' sha256, 2 attestation copies.
    let n = checked.json["checks"].as_array().unwrap().len();
    assert_eq!(n, o.report.checks.len() + 1 + 6 + 2, "{}", checked.text);
    assert_eq!(checked.json["tcb_status"], "UpToDate");
    assert!(
        checked.text.contains("time:    verdict made at"),
        "{}",
        checked.text
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn nix_files_parse_and_the_flake_exposes_consistent_outputs() {
    let root = root();
    let mut nix_files = Vec::new();
    for f in ["flake.nix", "models.nix", "tests/nix/eval-flake.nix"] {
        nix_files.push(root.join(f));
    }
    for f in &nix_files {
        run(Command::new("nix-instantiate").arg("--parse").arg(f));
    }
    let o = run(Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .arg(root.join("tests/nix/eval-flake.nix")));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for p in ["app", "verifier", "image", "default"] {
        assert!(
            v["packages"].as_array().unwrap().iter().any(|x| x == p),
            "packages lack {p}: {v}"
        );
    }
    for a in ["verifier", "push", "iexec-json", "iapp-files"] {
        assert!(
            v["apps"].as_array().unwrap().iter().any(|x| x == a),
            "apps lack {a}: {v}"
        );
    }
    assert_eq!(v["checks"], serde_json::json!(["tests"]));
    assert_eq!(v["devShell"], true);
    assert_eq!(v["default_is_image"], true);
    assert_eq!(v["nixpkgs_rev"], "8fd9daa3db09ced9700431c5b7ad0e8ba199b575");
    assert_eq!(
        v["nixpkgs_narHash"],
        "sha256-Ti+ZBvW6yrWWAg2szExVTwCd4qOJ3KlVr1tFHfyfi8Q="
    );
    assert_eq!(v["model_url_is_pinned_resolve"], true);
    assert_eq!(v["image_script_places_model"], true);
    assert_eq!(v["image_script_entrypoint"], true);
    assert_eq!(v["app_rustflags"], "-C target-feature=+crt-static");
    // The one pin, three places: models.nix, what the flake compiles into the app, and the
    // app's own default.
    assert_eq!(v["model_sha256"], app::PINNED_MODEL_SHA256);
    assert_eq!(v["app_pinned_sha256"], app::PINNED_MODEL_SHA256);
    assert_eq!(v["app_pinned_path"], app::DEFAULT_MODEL_PATH);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let flake = std::fs::read_to_string(root.join("flake.nix")).unwrap();
    assert!(flake.contains("skopeo copy --preserve-digests"));
}

#[path = "chain_node.rs"]
mod chain_node;

/// `verifier check-result RESULT --expected M ARGS…`, in process: the verdict, or the error
/// (exit status 2).
fn check_result_cli(
    result: &Path,
    m: &Path,
    args: &[&str],
) -> Result<verifier::cli::Verdict, String> {
    use clap::Parser;
    let mut argv: Vec<String> = vec!["verifier".into(), "check-result".into()];
    argv.push(result.display().to_string());
    argv.extend(["--expected".into(), m.display().to_string()]);
    argv.extend(args.iter().map(|s| s.to_string()));
    let cli = verifier::cli::Cli::try_parse_from(&argv).map_err(|e| e.to_string())?;
    verifier::cli::run(cli).map_err(|e| e.to_string())
}

fn failed_names(v: &verifier::cli::Verdict) -> Vec<String> {
    v.json["failed"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_real_poco_accepts_the_contribution_and_check_result_reads_the_task_from_the_chain() {
    if !can_run_containers("chain") {
        return;
    }
    let chain = chain_node::Chain::start();
    let poco = chain.poco();
    let (oci, m, dir) = build_image("chain");
    let (bundle, host_out) = worker_bundle(&oci, &m, &dir, vec![]);
    runc_run(&bundle);
    let m_path = dir.join("measurement.json");
    std::fs::write(&m_path, serde_json::to_vec(&m).unwrap()).unwrap();
    let checksum = format!("0x{}", m.manifest_digest.trim_start_matches("sha256:"));
    let multiaddr = format!("registry.example/iexec-llm:0.1.0@{}", m.manifest_digest);
    // The deal's iexec_args: the task's arguments as a worker splits them (at spaces; the
    // free text is the prompt).
    let args = "max_tokens=16 temperature=0 What is the capital of France?";
    // hardhat's second account: the worker (the node holds it and sends its transactions).
    let worker = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
    let (ek, wk) = keys();
    let n = std::sync::atomic::AtomicUsize::new(0);
    // worker-sim on the chain: a new deal and task for `out`, sealed and contributed.
    let task = |out: &Path, extra: &[&str]| -> Result<(Value, PathBuf), String> {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let zip = dir.join(format!("task-{i}.zip"));
        let o = Command::new(env!("CARGO_BIN_EXE_worker-sim"))
            .arg("--out")
            .arg(out)
            .args(["--worker", worker])
            .args(["--enclave-key", &hex::encode(ek.to_bytes())])
            .args(["--workerpool-key", &hex::encode(wk.to_bytes())])
            .arg("--zip")
            .arg(&zip)
            .arg("--receipt")
            .arg(dir.join(format!("task-{i}.receipt.json")))
            .args([
                "--rpc",
                &chain.url,
                "--poco",
                &poco,
                "--multiaddr",
                &multiaddr,
            ])
            .args(if extra.contains(&"--iexec-args") {
                vec![]
            } else {
                vec!["--iexec-args", args]
            })
            .args(if extra.contains(&"--app-checksum") {
                vec![]
            } else {
                vec!["--app-checksum", &checksum]
            })
            .args(extra)
            .output()
            .unwrap();
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).into_owned());
        }
        Ok((serde_json::from_slice(&o.stdout).unwrap(), zip))
    };
    let rpc_args = |t: &str| -> Vec<String> {
        [
            "--task",
            t,
            "--rpc",
            &chain.url,
            "--poco",
            &poco,
            "--chain-id",
            "31337",
        ]
        .map(String::from)
        .to_vec()
    };
    let check = |zip: &Path, t: &str, extra: &[&str]| {
        let mut a = rpc_args(t);
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        check_result_cli(zip, &m_path, &a)
    };

    // The real contract accepted the worker's contributeAndFinalize: the task is COMPLETED,
    // and everything the verifier needs is read from the chain.
    let (a, zip_a) = task(&host_out, &[]).unwrap();
    let task_a = a["task_id"].as_str().unwrap().to_string();
    let saved = dir.join("saved-receipt.json");
    let v = check(
        &zip_a,
        &task_a,
        &["--save-receipt", saved.to_str().unwrap()],
    )
    .unwrap();
    assert!(v.passed, "{}", v.text);
    for name in [
        "task status on chain is COMPLETED",
        "deal tag requires a TEE (bit 0) and TDX (0b1001)",
        "the worker is the task's only contributor",
        "result location stated on chain (the task's results)",
        "deal params (iexec_args on chain) = result.json's parameters and prompt source",
        "WorkerpoolAuthorization of (worker, task id, enclave challenge) signed by the deal's workerpool owner",
        "enclave signature over (resultHash, resultSeal) recovers the enclave challenge",
        "app checksum on chain = image manifest digest",
        "task id = keccak256(deal id ‖ task index)",
    ] {
        assert!(
            v.json["checks"].as_array().unwrap().iter().any(|c| c["name"] == name && c["pass"] == true),
            "{name}: {}",
            v.text
        );
    }
    assert!(
        v.text.contains("proven:  read from chain 31337"),
        "{}",
        v.text
    );
    assert!(
        v.text
            .contains("PoCo does not enforce the checksum at pull time"),
        "{}",
        v.text
    );
    // The same receipt offline gives the same checks, and says what it no longer proves.
    let offline =
        check_result_cli(&zip_a, &m_path, &["--receipt", saved.to_str().unwrap()]).unwrap();
    assert!(offline.passed, "{}", offline.text);
    assert_eq!(offline.json["checks"], v.json["checks"]);
    assert!(
        offline
            .text
            .contains("the file proves nothing about the chain"),
        "{}",
        offline.text
    );

    // The SDK's own outputs of the same task (the real iexec CLI pointed at this chain) and
    // the transaction's calldata give the same verdict.
    let sdk = dir.join("sdk");
    std::fs::create_dir_all(&sdk).unwrap();
    std::fs::write(
        sdk.join("chain.json"),
        serde_json::json!({"default": "local", "chains": {"local": {"id": "31337", "host": chain.url, "hub": poco}}}).to_string(),
    )
    .unwrap();
    let iexec = common::root().join("tests/npm/node_modules/.bin/iexec");
    let show = |what: &str, id: &str| -> PathBuf {
        let o = Command::new(&iexec)
            .args([what, "show", id, "--raw"])
            .current_dir(&sdk)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "iexec {what} show: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let p = sdk.join(format!("{what}.json"));
        std::fs::write(&p, &o.stdout).unwrap();
        p
    };
    let calldata = sdk.join("calldata.hex");
    std::fs::write(&calldata, a["calldata"].as_str().unwrap()).unwrap();
    let (t, d, app) = (
        show("task", &task_a),
        show("deal", a["deal_id"].as_str().unwrap()),
        show("app", a["app"].as_str().unwrap()),
    );
    let path = |p: &Path| p.display().to_string();
    let v_sdk = check_result_cli(
        &zip_a,
        &m_path,
        &[
            "--sdk-task",
            &path(&t),
            "--sdk-deal",
            &path(&d),
            "--sdk-app",
            &path(&app),
            "--calldata",
            &path(&calldata),
        ],
    )
    .unwrap();
    assert!(v_sdk.passed, "{}", v_sdk.text);
    assert!(
        v_sdk.text.contains("the SDK's outputs are the chain's"),
        "{}",
        v_sdk.text
    );

    // Tampers, each failing exactly its check.
    const DIGEST: &str = "resultDigest on chain = recomputed";
    // The answer edited.
    let archive = verifier::iexec::archive::ResultArchive::open(&zip_a, None).unwrap();
    let mut files = archive.files.clone();
    edit_result(&mut files, |v| v["answer"] = "Lyon.".into());
    let edited = dir.join("edited");
    std::fs::create_dir_all(&edited).unwrap();
    for (name, bytes) in &files {
        std::fs::write(edited.join(name), bytes).unwrap();
    }
    let zip_edited = dir.join("edited.zip");
    std::fs::write(&zip_edited, e2e_tests::zip_output(&edited).unwrap()).unwrap();
    assert_eq!(
        failed_names(&check(&zip_edited, &task_a, &[]).unwrap()),
        [DIGEST]
    );
    // A result from another task: task B finalized with the edited output; A's result
    // checked against B.
    let (b, _) = task(&edited, &[]).unwrap();
    assert_eq!(
        failed_names(&check(&zip_a, b["task_id"].as_str().unwrap(), &[]).unwrap()),
        [DIGEST]
    );
    // Deal params that are not result.json's.
    let (c, _) = task(
        &host_out,
        &[
            "--iexec-args",
            "max_tokens=17 temperature=0 What is the capital of France?",
        ],
    )
    .unwrap();
    assert_eq!(
        failed_names(&check(&zip_a, c["task_id"].as_str().unwrap(), &[]).unwrap()),
        ["deal params (iexec_args on chain) = result.json's parameters and prompt source"]
    );
    // An app whose checksum is another image.
    let other = format!("0x{}", "ee".repeat(32));
    let (d2, _) = task(&host_out, &["--app-checksum", &other]).unwrap();
    assert_eq!(
        failed_names(&check(&zip_a, d2["task_id"].as_str().unwrap(), &[]).unwrap()),
        ["app checksum on chain = image manifest digest"]
    );
    // A TEE tag without TDX.
    let (e, _) = task(&host_out, &["--tag", &format!("0x{}01", "0".repeat(62))]).unwrap();
    assert_eq!(
        failed_names(&check(&zip_a, e["task_id"].as_str().unwrap(), &[]).unwrap()),
        ["deal tag requires a TEE (bit 0) and TDX (0b1001)"]
    );
    // An authorization signed by a key that is not the workerpool owner's: the contract
    // refuses the contribution, and the task stays pending.
    let err = task(&host_out, &["--authorization-key", &"33".repeat(32)]).unwrap_err();
    assert!(err.contains("contributeAndFinalize"), "{err}");
    // The same forgery in a receipt file fails its one check.
    let mut forged: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    let fk = k256::ecdsa::SigningKey::from_slice(&[0x33; 32]).unwrap();
    let h = verifier::iexec::hash_concat(&[
        worker,
        &task_a,
        forged["enclave_challenge"].as_str().unwrap(),
    ])
    .unwrap();
    forged["workerpool_authorization"]["signature"] = e2e_tests::sign(&fk, &h).unwrap().into();
    let forged_path = dir.join("forged-receipt.json");
    // Naming the forger as the expected signer does not help: the deal's workerpool owner is.
    let mut named = forged.clone();
    named["workerpool_authorization"]["signer"] =
        verifier::iexec::chain::address(fk.verifying_key()).into();
    std::fs::write(&forged_path, named.to_string()).unwrap();
    assert_eq!(
        failed_names(&check_result_cli(&zip_a, &m_path, &["--receipt", forged_path.to_str().unwrap()]).unwrap()),
        ["WorkerpoolAuthorization of (worker, task id, enclave challenge) signed by the deal's workerpool owner"]
    );
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    assert_eq!(
        failed_names(&check_result_cli(&zip_a, &m_path, &["--receipt", forged_path.to_str().unwrap()]).unwrap()),
        ["WorkerpoolAuthorization of (worker, task id, enclave challenge) signed by the deal's workerpool owner"]
    );
    // A task not yet COMPLETED: pending, exit 1.
    let (p, _) = task(&host_out, &["--pending"]).unwrap();
    let v = check(&zip_a, p["task_id"].as_str().unwrap(), &[]).unwrap();
    assert!(!v.passed);
    assert!(
        v.text.contains("pending: task") && v.text.contains("is ACTIVE"),
        "{}",
        v.text
    );
    // A contract that is not PoCo (the RLC token) at the address given, and another chain
    // id than the endpoint's: unusable, exit 2.
    let unusable = |poco: &str, chain_id: &str| {
        let a = [
            "--task",
            &task_a,
            "--rpc",
            &chain.url,
            "--poco",
            poco,
            "--chain-id",
            chain_id,
        ];
        check_result_cli(&zip_a, &m_path, &a).unwrap_err()
    };
    let rlc = chain.deployment["RLC"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    let err = unusable(&rlc, "31337");
    assert!(err.contains("not PoCo"), "{err}");
    let err = unusable(&poco, "421614");
    assert!(err.contains("not chain 421614"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_verifier_reads_the_app_s_parameters_with_the_app_s_defaults() {
    use verifier::iexec::args::{Kind, DEFAULTS};
    let defaults = serde_json::to_value(app::params::GenParams::default()).unwrap();
    let names: Vec<&str> = DEFAULTS.iter().map(|d| d.0).collect();
    let mut known: Vec<&str> = app::params::KNOWN
        .iter()
        .copied()
        .filter(|k| *k != "prompt" && *k != "system")
        .collect();
    known.sort_unstable();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, known);
    assert_eq!(defaults.as_object().unwrap().len(), DEFAULTS.len());
    for (k, kind, default) in DEFAULTS {
        let v = &defaults[*k];
        let parsed = match kind {
            Kind::U32 | Kind::U64 => Value::from(default.parse::<u64>().unwrap()),
            Kind::F64 => Value::from(default.parse::<f64>().unwrap()),
            Kind::Text => Value::from(*default),
        };
        assert_eq!(v, &parsed, "{k}");
        // The app parses each the way the table says: a value of another kind is refused.
        let bad = match kind {
            Kind::U32 | Kind::U64 => "1.5",
            Kind::F64 => "nan",
            Kind::Text => "no-such-template",
        };
        assert!(
            app::params::parse(&[format!("{k}={bad}")]).is_err(),
            "{k}={bad}"
        );
        assert!(
            app::params::parse(&[format!("{k}={default}")]).is_ok(),
            "{k}={default}"
        );
    }
}
