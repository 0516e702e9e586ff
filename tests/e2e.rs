//! Workspace end-to-end tests: the image writer's determinism, the layout accepted by
//! skopeo and umoci, the image run by runc the way an iExec worker runs it, `verifier measure`,
//! and the Nix files checked offline.
//!
//! Needs (scripts/test.sh provides them): the static app binary
//! (`target/x86_64-unknown-linux-gnu/release/iexec-llm`, or `STATIC_APP`), the small model
//! (`models/…`, or `SMOLLM2_GGUF`), and skopeo, umoci, runc and nix-instantiate on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use oci_image::{ImageSpec, Measurement};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn smollm2() -> PathBuf {
    let p = std::env::var_os("SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models").join(SMOLLM2));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/test.sh",
        p.display()
    );
    p
}

/// The statically linked app, built by scripts/test.sh as the flake builds it.
fn static_app() -> PathBuf {
    let p = std::env::var_os("STATIC_APP")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/x86_64-unknown-linux-gnu/release/iexec-llm"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/test.sh",
        p.display()
    );
    let bytes = std::fs::read(&p).unwrap();
    let needle = b"/lib64/ld-linux-x86-64.so";
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle),
        "{} asks for a dynamic loader: it is not static",
        p.display()
    );
    p
}

fn tempdir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "e2e-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn entrypoint_args() -> Vec<String> {
    [
        "--model",
        &format!("/models/{SMOLLM2}"),
        "--model-sha256",
        SMOLLM2_SHA256,
    ]
    .map(String::from)
    .to_vec()
}

fn spec(binary: &Path, models: Vec<(PathBuf, String)>) -> ImageSpec {
    ImageSpec {
        reference: "test".into(),
        app_version: "0.1.0".into(),
        binary: binary.to_path_buf(),
        binary_path: "/app/iexec-llm".into(),
        entrypoint_args: entrypoint_args(),
        models,
        env: vec!["PATH=/app".into()],
        working_dir: "/".into(),
        source_date_epoch: 1,
    }
}

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
    let (measured, mut report) = verifier::measure::measure(&oci, Some("test")).unwrap();
    verifier::measure::compare(&measured, &m, &mut report);
    assert!(report.passed(), "{}", report.human());
    assert!(report.checks.len() >= 15);

    // ...and fails, naming the layer, when one byte of a layer blob changes.
    let hex = m.layers[1].digest.strip_prefix("sha256:").unwrap();
    let blob = oci.join("blobs/sha256").join(hex);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&blob, &bytes).unwrap();
    let (measured, mut report) = verifier::measure::measure(&oci, Some("test")).unwrap();
    verifier::measure::compare(&measured, &m, &mut report);
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
    let (measured, mut report) = verifier::measure::measure(&oci, Some("test")).unwrap();
    verifier::measure::compare(&measured, &other, &mut report);
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

#[test]
fn the_image_runs_under_runc_like_a_worker_and_writes_the_same_result_as_the_binary() {
    let (oci, m, dir) = build_image("runc");
    let bundle = dir.join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:test", oci.display()))
        .arg(&bundle));

    let task_args = [
        "prompt=What is the capital of France?",
        "max_tokens=16",
        "temperature=0",
    ];
    let task_id = format!("0x{}", "5a".repeat(32));
    let (host_in, host_out) = (dir.join("iexec_in"), dir.join("iexec_out"));
    std::fs::create_dir_all(&host_in).unwrap();
    std::fs::create_dir_all(&host_out).unwrap();

    // The bundle as a worker would start it: the image's entrypoint with the deal's args, the
    // worker's variables, /iexec_in and /iexec_out bound in, no network, no rlimits.
    let cfg_path = bundle.join("config.json");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let mut args: Vec<Value> = m
        .entrypoint
        .iter()
        .map(|s| Value::from(s.as_str()))
        .collect();
    args.extend(task_args.iter().map(|s| Value::from(*s)));
    cfg["process"]["args"] = Value::from(args);
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["rlimits"] = Value::Array(vec![]);
    cfg["process"]["env"] = serde_json::json!([
        "PATH=/app",
        "IEXEC_IN=/iexec_in",
        "IEXEC_OUT=/iexec_out",
        format!("IEXEC_TASK_ID={task_id}"),
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
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let id = format!("e2e-{}", std::process::id());
    let o = Command::new("runc")
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
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
        .env("IEXEC_IN", &host_in)
        .env("IEXEC_OUT", &direct_out)
        .env("IEXEC_TASK_ID", &task_id)
        .env("IEXEC_INPUT_FILES_NUMBER", "0")
        .args([
            "--model",
            smollm2().to_str().unwrap(),
            "--model-sha256",
            SMOLLM2_SHA256,
        ])
        .args(task_args)
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
    for a in ["verifier", "push", "iexec-json"] {
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
