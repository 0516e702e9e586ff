//! Step 1: open the result. The result archive's `computed.json` names the deterministic
//! output; resultDigest is recomputed from it as iExec's post-compute does; `result.json` must
//! be exactly that output, and of the schema this verifier reads.

use super::{str_at, RESULT_SCHEMA};
use crate::iexec::archive::{Digest32, ResultArchive};
use crate::iexec::to_hex;
use crate::report::Check;
use serde_json::Value;

/// What step 1 established.
pub struct Opened {
    /// Its checks, in order.
    pub checks: Vec<Check>,
    /// The recomputed resultDigest, `0x` hex.
    pub digest_hex: Option<String>,
    /// Whether the digest covers `result.json` alone (file mode).
    pub covered: bool,
    /// `result.json`, parsed, when readable.
    pub result: Option<Value>,
}

/// Runs step 1.
pub fn step(archive: &ResultArchive) -> Opened {
    let mut checks = vec![Check::pass(
        "result archive opened",
        format!(
            "{} files, encryption {}",
            archive.files.len(),
            serde_json::to_value(archive.encryption)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ),
    )];
    let digest: Option<Digest32> = match archive.computed().and_then(|c| archive.result_digest(&c))
    {
        Ok(d) => {
            checks.push(Check::pass(
                format!("resultDigest recomputed ({} mode)", d.mode),
                to_hex(&d.digest),
            ));
            Some(d)
        }
        Err(e) => {
            checks.push(Check::fail(
                "resultDigest recomputed",
                "computed.json naming a deterministic output present in the result",
                e.to_string(),
            ));
            None
        }
    };
    let covered = digest
        .as_ref()
        .is_some_and(|d| d.mode == "file" && d.covers == ["result.json"]);
    checks.push(Check {
        name: "result.json is the deterministic output (covered by resultDigest)".into(),
        pass: covered,
        expected: "/iexec_out/result.json".into(),
        found: digest
            .as_ref()
            .map(|d| format!("{} {:?}", d.mode, d.covers))
            .unwrap_or_else(|| "no digest".into()),
    });
    let result: Option<Value> = archive
        .files
        .get("result.json")
        .and_then(|b| serde_json::from_slice(b).ok());
    checks.push(match &result {
        Some(v) => Check::equal(
            "result.json schema",
            RESULT_SCHEMA,
            str_at(v, &["schema"]).unwrap_or("none"),
        ),
        None => Check::fail(
            "result.json schema",
            RESULT_SCHEMA,
            "no readable result.json",
        ),
    });
    Opened {
        checks,
        digest_hex: digest.as_ref().map(|d| to_hex(&d.digest)),
        covered,
        result,
    }
}
