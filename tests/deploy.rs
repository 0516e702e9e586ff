//! The deployment files, checked by the real iExec SDK: `iexec.json` as `oci-image
//! iexec-json` writes it passes the validation `iexec app deploy` runs (`appSchema` of the npm
//! package `iexec` 9.0.1, run by node), plus the rules that schema leaves out; the committed
//! placeholder fails it, as its description says; the `iapp` files name the measured image.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use oci_image::measurement::{AppMeasurement, Measurement, SCHEMA};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn measurement() -> Measurement {
    Measurement {
        schema: SCHEMA.into(),
        reference: "0.1.0".into(),
        manifest_digest: format!("sha256:{}", "5e".repeat(32)),
        config_digest: format!("sha256:{}", "c0".repeat(32)),
        layers: vec![],
        entrypoint: vec!["/app/iexec-llm".into()],
        app: AppMeasurement {
            version: "0.1.0".into(),
            path: "/app/iexec-llm".into(),
            sha256: "11".repeat(32),
        },
        models: vec![],
    }
}

/// The SDK's verdict on an iexec.json: (valid, message).
fn sdk_validate(doc: &serde_json::Value) -> (bool, String) {
    let npm = root().join("tests/npm");
    assert!(
        npm.join("node_modules/iexec").is_dir(),
        "{} has no node_modules: run scripts/test.sh (it runs npm ci there)",
        npm.display()
    );
    let f = std::env::temp_dir().join(format!("iexec-json-{}.json", std::process::id()));
    std::fs::write(&f, doc.to_string()).unwrap();
    let o = Command::new("node")
        .arg(npm.join("validate-iexec-json.mjs"))
        .arg(&f)
        .output()
        .expect("node (Node.js 20) must be installed");
    let _ = std::fs::remove_file(&f);
    let msg = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        msg.starts_with("VALID") || msg.starts_with("INVALID"),
        "{msg} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), msg)
}

#[test]
fn iexec_json_from_a_measurement_passes_the_sdks_validation() {
    let committed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("iexec.json")).unwrap()).unwrap();
    let mut doc = committed.clone();
    oci_image::iexec::fill_app(
        &mut doc,
        &measurement(),
        "docker.io/someone/iexec-llm:0.1.0",
        "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4",
        None,
    )
    .unwrap();
    let (ok, msg) = sdk_validate(&doc);
    assert!(ok, "{msg}");
    assert_eq!(doc["app"]["checksum"], format!("0x{}", "5e".repeat(32)));

    // The committed placeholder fails, for the reasons its description gives.
    let (ok, msg) = sdk_validate(&committed);
    assert!(!ok);
    for why in ["bytes32", "zero address", "multiaddr"] {
        assert!(msg.contains(why), "{msg}");
    }
    assert!(committed["description"]
        .as_str()
        .unwrap()
        .contains("fails the iexec SDK's validation"));

    // What the SDK would let through, our rules do not.
    let mut with_mrenclave = doc.clone();
    with_mrenclave["app"]["mrenclave"] = "{\"framework\":\"SCONE\"}".into();
    assert!(!sdk_validate(&with_mrenclave).0);
    let mut empty_multiaddr = doc.clone();
    empty_multiaddr["app"]["multiaddr"] = "".into();
    assert!(!sdk_validate(&empty_multiaddr).0);
}

#[test]
fn the_iapp_dockerfile_is_the_measured_image_by_digest() {
    let m = measurement();
    let (dockerfile, config) =
        oci_image::iexec::iapp_files(&m, "docker.io/someone/iexec-llm:0.1.0", "iexec-llm").unwrap();
    let from: Vec<&str> = dockerfile.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        from,
        [format!(
            "FROM docker.io/someone/iexec-llm@{}",
            m.manifest_digest
        )]
    );
    let c: serde_json::Value = serde_json::from_str(&config).unwrap();
    // The fields iapp 2.0.0's config schema requires or reads without prompting.
    assert_eq!(c["projectName"], "iexec-llm");
    assert!(c["appSecret"].is_null());
    assert_eq!(c["defaultChain"], "arbitrum-sepolia-testnet");
}
