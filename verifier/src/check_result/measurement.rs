//! Step 3: the measurement (`measurement.json` of the image build): the app registered on
//! chain is the measured image, and `result.json` states the measured binary, version and
//! model; the task produced an answer.

use super::{lower, str_at};
use crate::iexec::receipt::Receipt;
use crate::report::Check;
use oci_image::Measurement;
use serde_json::Value;

/// What step 3 established.
pub struct Measured {
    /// Its checks, in order.
    pub checks: Vec<Check>,
    /// Whether the app checksum on chain is the measured manifest digest.
    pub app_is_image: bool,
}

/// Runs step 3 on the parsed `result.json` (`Null` when unreadable).
pub fn step(m: &Measurement, rc: &Receipt, res: &Value) -> Measured {
    let mut checks = Vec::new();
    let manifest_hex = m
        .manifest_digest
        .strip_prefix("sha256:")
        .unwrap_or(&m.manifest_digest);
    let want_checksum = format!("0x{manifest_hex}");
    let checksum = rc.app.as_ref().and_then(|a| a.checksum.as_deref());
    checks.push(Check::equal(
        "app checksum on chain = image manifest digest",
        &want_checksum,
        &checksum
            .map(lower)
            .unwrap_or_else(|| "absent from the receipt".into()),
    ));
    if let Some(ma) = rc.app.as_ref().and_then(|a| a.multiaddr.as_deref()) {
        if let Some((_, d)) = ma.rsplit_once('@') {
            checks.push(Check::equal(
                "app multiaddr pins the manifest digest",
                &m.manifest_digest,
                d,
            ));
        }
    }
    checks.push(Check::equal(
        "app binary sha256 (result.json) = measured",
        &m.app.sha256,
        str_at(res, &["app", "binary_sha256"]).unwrap_or("absent"),
    ));
    checks.push(Check::equal(
        "app version (result.json) = measured",
        &m.app.version,
        str_at(res, &["app", "version"]).unwrap_or("absent"),
    ));
    let model_sha = str_at(res, &["model", "sha256"]).unwrap_or("absent");
    let model_file = str_at(res, &["model", "file"]).unwrap_or("absent");
    let measured = m.models.iter().find(|x| x.sha256 == model_sha);
    checks.push(Check {
        name: "model sha256 (result.json) = a measured model".into(),
        pass: measured.is_some(),
        expected: m
            .models
            .iter()
            .map(|x| x.sha256.clone())
            .collect::<Vec<_>>()
            .join(" | "),
        found: model_sha.into(),
    });
    if let Some(x) = measured {
        let name = x.path.rsplit('/').next().unwrap_or(&x.path);
        checks.push(Check::equal("model file name = measured", name, model_file));
    }
    if let Some(p) = &rc.params {
        let dataset = rc
            .dataset
            .as_deref()
            .map(|d| crate::iexec::hex_bytes(d).map_or(true, |b| b.iter().any(|x| *x != 0)));
        checks.push(crate::iexec::args::check(
            p,
            crate::iexec::args::DealInputs { dataset },
            res,
        ));
    }
    let status = str_at(res, &["status"]).unwrap_or("absent");
    checks.push(Check {
        name: "task status".into(),
        pass: status == "ok",
        expected: "ok".into(),
        found: match str_at(res, &["error", "kind"]) {
            Some(k) => format!("{status} ({k})"),
            None => status.into(),
        },
    });
    Measured {
        checks,
        app_is_image: checksum.map(lower) == Some(want_checksum),
    }
}
