//! `verifier check-result`: from a downloaded iExec result to a verdict, check by check.
//!
//! 1. **Result**: `computed.json` → the deterministic output → resultDigest recomputed as
//!    iExec's post-compute does; `result.json` must be that output.
//! 2. **Receipt** (chain data): task id (from the deal), resultDigest, resultHash, resultSeal,
//!    the enclave signature recovering the enclave challenge (contract rules), the
//!    WorkerpoolAuthorization signer.
//! 3. **Measurement** (`measurement.json` of the image build): the app checksum on chain is
//!    the manifest digest; the binary, version and model stated in `result.json` are the
//!    measured ones.
//! 4. **Attestation**: when `result.json` records a quote, the quote is verified with
//!    collateral (as `check-quote`), its REPORTDATA must be the [`report_data`] of
//!    `result.json`, a policy applies to MRTD/RTMRs, and the TD event log, when present, must
//!    replay to the quote's RTMRs.

use crate::archive::ResultArchive;
use crate::collateral::Collateral;
use crate::eventlog::{self, Event};
use crate::iexec::{self, to_hex};
use crate::policy::{self, Policy};
use crate::quote::{self, Body};
use crate::receipt::Receipt;
use crate::report::{Check, Report};
use crate::verify::{verify, Trust};
use oci_image::Measurement;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha512};

/// The REPORTDATA scheme: `SHA-512("iexec-llm/reportdata/v1" ‖ 0x00 ‖ canonical claims)`,
/// where the claims are `result.json` without its `attestation` member and the canonical
/// encoding is JSON with object keys sorted by their UTF-8 bytes, no whitespace, strings
/// escaped and numbers written as serde_json writes them.
pub const REPORTDATA_SCHEME: &str = "iexec-llm/reportdata/v1";

/// The schema of the app's `result.json` this verifier understands.
pub const RESULT_SCHEMA: &str = "iexec-llm/result/v1";

/// Writes `v` in the canonical encoding.
pub fn canonical_json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(Value::String(k.clone()).to_string().into_bytes());
                out.push(b':');
                if let Some(x) = m.get(k) {
                    canonical_json(x, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(x, out);
            }
            out.push(b']');
        }
        other => out.extend(other.to_string().into_bytes()),
    }
}

/// REPORTDATA for a `result.json` (parsed), per [`REPORTDATA_SCHEME`].
pub fn report_data(result: &Value) -> [u8; 64] {
    let mut claims = result.clone();
    if let Value::Object(m) = &mut claims {
        m.shift_remove("attestation");
    }
    let mut bytes = Vec::new();
    canonical_json(&claims, &mut bytes);
    let mut h = Sha512::new();
    h.update(REPORTDATA_SCHEME.as_bytes());
    h.update([0u8]);
    h.update(&bytes);
    h.finalize().into()
}

/// What check-result needs besides the result.
pub struct Inputs<'a> {
    /// The opened (and decrypted) result.
    pub archive: &'a ResultArchive,
    /// The chain's data about the task.
    pub receipt: &'a Receipt,
    /// The image build's measurement.
    pub expected: &'a Measurement,
    /// Collateral for the quote, when the result has one.
    pub collateral: Option<&'a Collateral>,
    /// The DCAP root to trust.
    pub trust: &'a Trust,
    /// Policy for the quote.
    pub policy: &'a Policy,
    /// Verification time, Unix seconds.
    pub now: i64,
    /// Fail when the result carries no quote.
    pub require_quote: bool,
}

/// An event of the TD event log worth showing.
#[derive(Debug, Clone, Serialize)]
pub struct NamedEvent {
    /// RTMR index.
    pub rtmr: usize,
    /// Event name (dstack) or printable start of the event data (CCEL).
    pub name: String,
    /// Measured payload, hex, when the format has one.
    pub payload: String,
    /// Digest extended, hex.
    pub digest: String,
}

/// The verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Every check, in order.
    pub report: Report,
    /// The recomputed resultDigest.
    pub result_digest: Option<String>,
    /// `configfs-tsm`, `unavailable: <reason>`, or `not recorded`.
    pub attestation: String,
    /// TCB status of the quote, when verified.
    pub tcb_status: Option<String>,
    /// Events of RTMR3 (the app's runtime measurements), from the event log.
    pub events: Vec<NamedEvent>,
    /// What the passing checks prove.
    pub proven: Vec<String>,
    /// What rests on trust.
    pub trusted: Vec<String>,
}

fn ok(name: impl Into<String>, found: impl Into<String>) -> Check {
    let found = found.into();
    Check {
        name: name.into(),
        pass: true,
        expected: found.clone(),
        found,
    }
}

fn bad(name: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        pass: false,
        expected: expected.into(),
        found: found.into(),
    }
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Runs every check.
pub fn check(i: &Inputs<'_>) -> Outcome {
    let mut r = Report::default();
    let mut proven = Vec::new();
    let mut trusted = Vec::new();
    let mut out = Outcome {
        report: Report::default(),
        result_digest: None,
        attestation: "not recorded".into(),
        tcb_status: None,
        events: Vec::new(),
        proven: Vec::new(),
        trusted: Vec::new(),
    };

    // --- 1. the result archive -------------------------------------------------------------
    r.checks.push(ok(
        "result archive opened",
        format!(
            "{} files, encryption {}",
            i.archive.files.len(),
            serde_json::to_value(i.archive.encryption)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ),
    ));
    let digest = match i
        .archive
        .computed()
        .and_then(|c| i.archive.result_digest(&c))
    {
        Ok(d) => {
            r.checks.push(ok(
                format!("resultDigest recomputed ({} mode)", d.mode),
                to_hex(&d.digest),
            ));
            Some(d)
        }
        Err(e) => {
            r.checks.push(bad(
                "resultDigest recomputed",
                "computed.json naming a deterministic output present in the result",
                e.to_string(),
            ));
            None
        }
    };
    let digest_hex = digest.as_ref().map(|d| to_hex(&d.digest));
    out.result_digest = digest_hex.clone();
    let covered = digest
        .as_ref()
        .is_some_and(|d| d.mode == "file" && d.covers == ["result.json"]);
    r.checks.push(Check {
        name: "result.json is the deterministic output (covered by resultDigest)".into(),
        pass: covered,
        expected: "/iexec_out/result.json".into(),
        found: digest
            .as_ref()
            .map(|d| format!("{} {:?}", d.mode, d.covers))
            .unwrap_or_else(|| "no digest".into()),
    });
    let result: Option<Value> = i
        .archive
        .files
        .get("result.json")
        .and_then(|b| serde_json::from_slice(b).ok());
    match &result {
        Some(v) => r.checks.push(Check::equal(
            "result.json schema",
            RESULT_SCHEMA,
            str_at(v, &["schema"]).unwrap_or("none"),
        )),
        None => r.checks.push(bad(
            "result.json schema",
            RESULT_SCHEMA,
            "no readable result.json",
        )),
    }

    // --- 2. the receipt --------------------------------------------------------------------
    let rc = i.receipt;
    if let (Some(deal), Some(idx)) = (&rc.deal_id, rc.task_index) {
        match iexec::task_id(deal, idx) {
            Ok(t) => r.checks.push(Check::equal(
                "task id = keccak256(deal id ‖ task index)",
                &lower(&rc.task_id),
                &to_hex(&t),
            )),
            Err(e) => r.checks.push(bad(
                "task id from the deal",
                "a 32-byte deal id",
                e.to_string(),
            )),
        }
    }
    if let (Some(want), Some(got)) = (&rc.result_digest, &digest_hex) {
        r.checks.push(Check::equal(
            "resultDigest on chain = recomputed",
            &lower(want),
            got,
        ));
    }
    let mut chain_ok = false;
    if let Some(d) = &digest_hex {
        match iexec::result_hash_and_seal(&rc.task_id, &rc.worker, d) {
            Ok((rh, rs)) => {
                let (rh, rs) = (to_hex(&rh), to_hex(&rs));
                if let Some(want) = &rc.result_hash {
                    r.checks.push(Check::equal(
                        "resultHash = keccak256(task id ‖ resultDigest)",
                        &lower(want),
                        &rh,
                    ));
                }
                if let Some(want) = &rc.result_seal {
                    r.checks.push(Check::equal(
                        "resultSeal = keccak256(worker ‖ task id ‖ resultDigest)",
                        &lower(want),
                        &rs,
                    ));
                }
                let zero = iexec::hex_bytes(&rc.enclave_challenge)
                    .map(|b| b.iter().all(|x| *x == 0))
                    .unwrap_or(true);
                r.checks.push(Check {
                    name: "enclave challenge is set (a TEE task)".into(),
                    pass: !zero,
                    expected: "a non-zero address".into(),
                    found: lower(&rc.enclave_challenge),
                });
                let msg = iexec::hash_concat(&[&rh, &rs]);
                let signer =
                    msg.and_then(|m| iexec::recover_eip191_onchain(&m, &rc.enclave_signature));
                let name =
                    "enclave signature over (resultHash, resultSeal) recovers the enclave challenge";
                match signer {
                    Ok(s) => {
                        chain_ok = s == lower(&rc.enclave_challenge) && !zero;
                        r.checks
                            .push(Check::equal(name, &lower(&rc.enclave_challenge), &s));
                    }
                    Err(e) => r
                        .checks
                        .push(bad(name, lower(&rc.enclave_challenge), e.to_string())),
                }
            }
            Err(e) => r.checks.push(bad(
                "resultHash and resultSeal",
                "hex task id and worker",
                e.to_string(),
            )),
        }
    }
    if let Some(a) = &rc.workerpool_authorization {
        let name = "WorkerpoolAuthorization of (worker, task id, enclave challenge) signed by the expected signer";
        match iexec::hash_concat(&[&rc.worker, &rc.task_id, &rc.enclave_challenge])
            .and_then(|h| iexec::recover_eip191_onchain(&h, &a.signature))
        {
            Ok(s) => r.checks.push(Check::equal(name, &lower(&a.signer), &s)),
            Err(e) => r.checks.push(bad(name, lower(&a.signer), e.to_string())),
        }
    }

    // --- 3. the measurement ----------------------------------------------------------------
    let m = i.expected;
    let manifest_hex = m
        .manifest_digest
        .strip_prefix("sha256:")
        .unwrap_or(&m.manifest_digest);
    let checksum = rc.app.as_ref().and_then(|a| a.checksum.as_deref());
    r.checks.push(Check::equal(
        "app checksum on chain = image manifest digest",
        &format!("0x{manifest_hex}"),
        &checksum
            .map(lower)
            .unwrap_or_else(|| "absent from the receipt".into()),
    ));
    if let Some(ma) = rc.app.as_ref().and_then(|a| a.multiaddr.as_deref()) {
        if let Some((_, d)) = ma.rsplit_once('@') {
            r.checks.push(Check::equal(
                "app multiaddr pins the manifest digest",
                &m.manifest_digest,
                d,
            ));
        }
    }
    let res = result.clone().unwrap_or(Value::Null);
    r.checks.push(Check::equal(
        "app binary sha256 (result.json) = measured",
        &m.app.sha256,
        str_at(&res, &["app", "binary_sha256"]).unwrap_or("absent"),
    ));
    r.checks.push(Check::equal(
        "app version (result.json) = measured",
        &m.app.version,
        str_at(&res, &["app", "version"]).unwrap_or("absent"),
    ));
    let model_sha = str_at(&res, &["model", "sha256"]).unwrap_or("absent");
    let model_file = str_at(&res, &["model", "file"]).unwrap_or("absent");
    let measured = m.models.iter().find(|x| x.sha256 == model_sha);
    r.checks.push(Check {
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
        r.checks
            .push(Check::equal("model file name = measured", name, model_file));
    }
    let status = str_at(&res, &["status"]).unwrap_or("absent");
    r.checks.push(Check {
        name: "task status".into(),
        pass: status == "ok",
        expected: "ok".into(),
        found: match str_at(&res, &["error", "kind"]) {
            Some(k) => format!("{status} ({k})"),
            None => status.into(),
        },
    });

    // --- 4. attestation --------------------------------------------------------------------
    let att = res.get("attestation").cloned().unwrap_or(Value::Null);
    let method = str_at(&att, &["method"])
        .unwrap_or("not recorded")
        .to_string();
    let mut quote_ok = false;
    let mut log_ok = None;
    if method == "unavailable" || method == "not recorded" {
        let reason = str_at(&att, &["reason"]).unwrap_or("no attestation in result.json");
        out.attestation = if method == "unavailable" {
            format!("unavailable: {reason}")
        } else {
            method.clone()
        };
        r.checks.push(Check {
            name: "TDX quote in the result".into(),
            pass: !i.require_quote,
            expected: if i.require_quote {
                "a quote (--require-quote)".into()
            } else {
                "a quote, or none (not required)".into()
            },
            found: out.attestation.clone(),
        });
    } else {
        out.attestation = method.clone();
        let rd = result.as_ref().map(report_data);
        let rd_hex = rd.map(hex::encode).unwrap_or_default();
        r.checks.push(Check::equal(
            format!("REPORTDATA scheme ({method})"),
            REPORTDATA_SCHEME,
            str_at(&att, &["reportdata_scheme"]).unwrap_or("absent"),
        ));
        r.checks.push(Check::equal(
            "REPORTDATA recorded in result.json = recomputed from its claims",
            &rd_hex,
            &lower(str_at(&att, &["report_data"]).unwrap_or("absent")),
        ));
        let qfile = str_at(&att, &["quote_file"]).unwrap_or("quote.bin");
        match i.archive.files.get(qfile) {
            None => r
                .checks
                .push(bad("quote file in the result", qfile, "absent")),
            Some(raw) => match quote::decode_file_bytes(raw) {
                Err(e) => r.checks.push(bad("quote parses", qfile, e.to_string())),
                Ok(bytes) => match quote::parse(&bytes) {
                    Err(e) => r.checks.push(bad("quote parses", qfile, e.to_string())),
                    Ok(q) => {
                        quote_ok = check_quote(i, &q, &rd_hex, &mut r, &mut out);
                        if let Body::Td(td) = &q.body {
                            log_ok = check_event_log(i, &att, td.rtmr, &mut r, &mut out);
                        }
                    }
                },
            },
        }
    }

    // --- the verdict ------------------------------------------------------------------------
    if covered && chain_ok {
        proven.push(format!(
            "this result.json is the output whose digest {} the enclave-challenge key {} signed for task {} (worker {})",
            digest_hex.clone().unwrap_or_default(),
            lower(&rc.enclave_challenge),
            lower(&rc.task_id),
            lower(&rc.worker)
        ));
    }
    if checksum.map(lower) == Some(format!("0x{manifest_hex}")) {
        proven.push(format!(
            "the app registered on chain is the measured image {}",
            m.manifest_digest
        ));
    }
    if quote_ok {
        proven.push(format!(
            "a TDX TD (TCB {}) signed REPORTDATA binding this result.json's claims: the answer, the prompt digest, the model {} and the binary {}",
            out.tcb_status.clone().unwrap_or_default(),
            model_sha,
            str_at(&res, &["app", "binary_sha256"]).unwrap_or("absent")
        ));
        match log_ok {
            Some(true) => proven.push(
                "the TD event log replays to the quote's RTMR0-3 (the events listed are what was measured)".into(),
            ),
            _ => trusted.push(
                "no verified event log: the RTMRs are checked only against the policy given".into(),
            ),
        }
        trusted.push(
            "that the TD measured in the quote ran the measured image: this is what MRTD/RTMR policy (--policy) pins; without it, only the app's own statement of its binary and model digests inside the attested TD".into(),
        );
        trusted.push(
            "Intel's DCAP root and collateral (TCB status as of the verification time)".into(),
        );
    } else {
        trusted.push(format!(
            "no verified quote in the result ({}): the TD is attested only by iExec's secret-management service, which released the enclave-challenge key to the worker's TEE session; the binary and model digests in result.json are the app's own statement",
            out.attestation
        ));
    }
    trusted.push(
        "the receipt's values are those on chain (read them from the chain yourself, see README)"
            .into(),
    );
    out.report = r;
    out.proven = proven;
    out.trusted = trusted;
    out
}

fn check_quote(
    i: &Inputs<'_>,
    q: &quote::Quote<'_>,
    rd_hex: &str,
    r: &mut Report,
    out: &mut Outcome,
) -> bool {
    let Body::Td(td) = &q.body else {
        r.checks.push(bad("quote is a TDX quote", "TDX", "SGX"));
        return false;
    };
    r.checks.push(Check::equal(
        "quote REPORTDATA = recomputed from result.json",
        rd_hex,
        &hex::encode(td.report_data),
    ));
    let Some(c) = i.collateral else {
        r.checks.push(bad(
            "quote verified with collateral",
            "collateral (--collateral)",
            "none given",
        ));
        return false;
    };
    let v = verify(q, c, i.now, i.trust);
    let before = r.checks.len();
    r.checks.extend(v.report.checks.into_iter().map(|mut c| {
        c.name = format!("quote: {}", c.name);
        c
    }));
    r.checks.extend(
        policy::check(i.policy, q, v.tcb.as_ref())
            .into_iter()
            .map(|mut c| {
                c.name = format!("quote {}", c.name);
                c
            }),
    );
    out.tcb_status = v.tcb.as_ref().map(|t| t.status.name().to_string());
    r.checks.iter().skip(before).all(|c| c.pass) && hex::encode(td.report_data) == rd_hex
}

fn check_event_log(
    i: &Inputs<'_>,
    att: &Value,
    rtmr: [&[u8; 48]; 4],
    r: &mut Report,
    out: &mut Outcome,
) -> Option<bool> {
    let name = str_at(att, &["event_log_file"])?;
    let Some(bytes) = i.archive.files.get(name) else {
        r.checks
            .push(bad("event log in the result", name, "absent"));
        return Some(false);
    };
    let parsed = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') | Some(b'"') => std::str::from_utf8(bytes)
            .map_err(|e| crate::Error::malformed("event log", e))
            .and_then(eventlog::parse_dstack),
        _ => eventlog::parse_ccel(bytes),
    };
    let events: Vec<Event> = match parsed {
        Ok(e) => e,
        Err(e) => {
            r.checks.push(bad("event log parses", name, e.to_string()));
            return Some(false);
        }
    };
    let replayed = eventlog::replay(&events);
    let mut all = true;
    for (k, (got, want)) in replayed.iter().zip(rtmr).enumerate() {
        let c = Check::equal(
            format!("event log replays to the quote's RTMR{k}"),
            &hex::encode(want),
            &hex::encode(got),
        );
        all &= c.pass;
        r.checks.push(c);
    }
    out.events = events
        .iter()
        .filter(|e| e.rtmr == Some(3) && e.event_type != eventlog::EV_NO_ACTION)
        .map(|e| NamedEvent {
            rtmr: 3,
            name: e.name.clone(),
            payload: e.payload.clone(),
            digest: hex::encode(e.digest),
        })
        .collect();
    Some(all)
}
