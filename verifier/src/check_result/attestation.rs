//! Step 4: attestation. When `result.json` records a quote, the quote is verified with
//! collateral (as `check-quote`), its REPORTDATA must be the [`report_data`] of `result.json`,
//! a policy applies to MRTD/RTMRs, and the TD event log, when present, must replay to the
//! quote's RTMRs. Without a quote, the report says why there is none (and `--require-quote`
//! makes that a failure).

use super::{lower, str_at, Inputs, NamedEvent};
use crate::report::Check;
use crate::tdx::eventlog::{self, Event};
use crate::tdx::judge::judge;
use crate::tdx::quote::{self, Body};
use serde_json::Value;
use sha2::{Digest, Sha512};

/// The REPORTDATA scheme: `SHA-512("iexec-llm/reportdata/v1" ‖ 0x00 ‖ canonical claims)`,
/// where the claims are `result.json` without its `attestation` member and the canonical
/// encoding is JSON with object keys sorted by their UTF-8 bytes, no whitespace, strings
/// escaped and numbers written as serde_json writes them.
pub const REPORTDATA_SCHEME: &str = "iexec-llm/reportdata/v1";

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

/// What step 4 established.
pub struct Attested {
    /// Its checks, in order.
    pub checks: Vec<Check>,
    /// `configfs-tsm`, `unavailable: <reason>`, or `not recorded`.
    pub attestation: String,
    /// TCB status of the quote, when verified.
    pub tcb_status: Option<String>,
    /// Events of RTMR3 (the app's runtime measurements), from the event log.
    pub events: Vec<NamedEvent>,
    /// Whether a quote was verified, with policy, over this result's REPORTDATA.
    pub quote_ok: bool,
    /// Whether the event log replayed to the quote's RTMRs (`None`: no event log recorded).
    pub log_ok: Option<bool>,
    /// When the quote's verdict was made, with which collateral (see [`judge`]).
    pub timeline: Vec<String>,
    /// The same, as JSON.
    pub timeline_json: Value,
}

/// Runs step 4 on the parsed `result.json`.
pub fn step(i: &Inputs<'_>, result: Option<&Value>) -> Attested {
    let res = result.cloned().unwrap_or(Value::Null);
    let att = res.get("attestation").cloned().unwrap_or(Value::Null);
    let method = str_at(&att, &["method"])
        .unwrap_or("not recorded")
        .to_string();
    let mut out = Attested {
        checks: Vec::new(),
        attestation: method.clone(),
        tcb_status: None,
        events: Vec::new(),
        quote_ok: false,
        log_ok: None,
        timeline: Vec::new(),
        timeline_json: Value::Null,
    };
    if method == "unavailable" || method == "not recorded" {
        let reason = str_at(&att, &["reason"]).unwrap_or("no attestation in result.json");
        if method == "unavailable" {
            out.attestation = format!("unavailable: {reason}");
        }
        out.checks.push(Check {
            name: "TDX quote in the result".into(),
            pass: !i.require_quote,
            expected: if i.require_quote {
                "a quote (--require-quote)".into()
            } else {
                "a quote, or none (not required)".into()
            },
            found: out.attestation.clone(),
        });
        return out;
    }
    let rd_hex = result.map(report_data).map(hex::encode).unwrap_or_default();
    out.checks.push(Check::equal(
        format!("REPORTDATA scheme ({method})"),
        REPORTDATA_SCHEME,
        str_at(&att, &["reportdata_scheme"]).unwrap_or("absent"),
    ));
    out.checks.push(Check::equal(
        "REPORTDATA recorded in result.json = recomputed from its claims",
        &rd_hex,
        &lower(str_at(&att, &["report_data"]).unwrap_or("absent")),
    ));
    let qfile = str_at(&att, &["quote_file"]).unwrap_or("quote.bin");
    let Some(raw) = i.archive.files.get(qfile) else {
        out.checks
            .push(Check::fail("quote file in the result", qfile, "absent"));
        return out;
    };
    let parsed = quote::decode_file_bytes(raw);
    let parsed = parsed
        .as_deref()
        .map_err(|e| e.to_string())
        .and_then(|b| quote::parse(b).map_err(|e| e.to_string()));
    match parsed {
        Err(e) => out.checks.push(Check::fail("quote parses", qfile, e)),
        Ok(q) => {
            out.quote_ok = check_quote(i, &q, &rd_hex, &mut out);
            if let Body::Td(td) = &q.body {
                out.log_ok = check_event_log(i, &att, td.rtmr, &mut out);
            }
        }
    }
    out
}

fn check_quote(i: &Inputs<'_>, q: &quote::Quote<'_>, rd_hex: &str, out: &mut Attested) -> bool {
    let Body::Td(td) = &q.body else {
        out.checks
            .push(Check::fail("quote is a TDX quote", "TDX", "SGX"));
        return false;
    };
    out.checks.push(Check::equal(
        "quote REPORTDATA = recomputed from result.json",
        rd_hex,
        &hex::encode(td.report_data),
    ));
    let Some(src) = i.collateral else {
        out.checks.push(Check::fail(
            "quote verified with collateral",
            "collateral (--collateral or --collateral-cache)",
            "none given",
        ));
        return false;
    };
    let v = match judge(q, src, i.now, i.trust, i.policy) {
        Ok(v) => v,
        Err(e) => {
            out.checks.push(Check::fail(
                "quote verified with collateral",
                "collateral for the quote",
                e.to_string(),
            ));
            return false;
        }
    };
    let before = out.checks.len();
    out.checks.extend(v.report.checks.into_iter().map(|mut c| {
        c.name = match c.name.strip_prefix("policy: ") {
            Some(rest) => format!("quote policy: {rest}"),
            None => format!("quote: {}", c.name),
        };
        c
    }));
    out.timeline = v.timeline;
    out.timeline_json = v.json;
    out.tcb_status = v.tcb.as_ref().map(|t| t.status.name().to_string());
    out.checks.iter().skip(before).all(|c| c.pass) && hex::encode(td.report_data) == rd_hex
}

fn check_event_log(
    i: &Inputs<'_>,
    att: &Value,
    rtmr: [&[u8; 48]; 4],
    out: &mut Attested,
) -> Option<bool> {
    let name = str_at(att, &["event_log_file"])?;
    let Some(bytes) = i.archive.files.get(name) else {
        out.checks
            .push(Check::fail("event log in the result", name, "absent"));
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
            out.checks
                .push(Check::fail("event log parses", name, e.to_string()));
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
        out.checks.push(c);
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
