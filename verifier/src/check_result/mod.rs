//! `verifier check-result`: from a downloaded iExec result to a verdict, check by check.
//! [`check`] runs five steps, each a module returning its checks:
//!
//! 1. [`open`]: the result archive → `computed.json` → the deterministic output →
//!    resultDigest recomputed as iExec's post-compute does; `result.json` must be that output.
//! 2. [`chain`]: the result chain, from the receipt: task id (from the deal), resultDigest,
//!    resultHash, resultSeal, the enclave signature recovering the enclave challenge
//!    (contract rules), the WorkerpoolAuthorization signer.
//! 3. [`measurement`]: the app checksum on chain is the measured manifest digest; the binary,
//!    version and model stated in `result.json` are the measured ones.
//! 4. [`attestation`]: the TDX quote, when recorded: DCAP with collateral, REPORTDATA bound
//!    to `result.json`, policy on MRTD/RTMRs, the event log replayed.
//! 5. [`verdict`]: what the passing checks prove, and what rests on trust.

pub mod attestation;
pub mod chain;
pub mod measurement;
pub mod open;
pub mod verdict;

pub use attestation::{canonical_json, report_data, REPORTDATA_SCHEME};

use crate::iexec::archive::ResultArchive;
use crate::iexec::receipt::Receipt;
use crate::report::Report;
use crate::tdx::judge::CollateralSource;
use crate::tdx::policy::Policy;
use crate::tdx::verify::Trust;
use oci_image::Measurement;
use serde::Serialize;
use serde_json::Value;

/// The schema of the app's `result.json` this verifier understands.
pub const RESULT_SCHEMA: &str = "iexec-llm/result/v1";

/// What check-result needs besides the result.
pub struct Inputs<'a> {
    /// The opened (and decrypted) result.
    pub archive: &'a ResultArchive,
    /// The chain's data about the task.
    pub receipt: &'a Receipt,
    /// The image build's measurement.
    pub expected: &'a Measurement,
    /// Collateral for the quote, when the result has one.
    pub collateral: Option<CollateralSource<'a>>,
    /// The DCAP root to trust.
    pub trust: &'a Trust,
    /// Policy for the quote.
    pub policy: &'a Policy,
    /// Verification time, Unix seconds.
    pub now: i64,
    /// Fail when the result carries no quote.
    pub require_quote: bool,
    /// The JSON-RPC endpoint this run read the receipt from (`--task`); `None` when the
    /// receipt is a file.
    pub read_from: Option<&'a str>,
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
    /// When the quote's verdict was made, with which collateral; empty without a quote.
    pub timeline: Vec<String>,
    /// The same, as JSON.
    pub timeline_json: Value,
}

/// Runs every check, in the five steps of the module docs.
pub fn check(i: &Inputs<'_>) -> Outcome {
    // Step 1: open the result.
    let opened = open::step(i.archive);
    let res = opened.result.clone().unwrap_or(Value::Null);
    // Step 2: the result chain.
    let chain = chain::step(i.receipt, opened.digest_hex.as_deref());
    // Step 3: the measurement.
    let measured = measurement::step(i.expected, i.receipt, &res);
    // Step 4: attestation.
    let attested = attestation::step(i, opened.result.as_ref());
    // Step 5: the verdict.
    let (proven, trusted) = verdict::step(
        &verdict::Findings {
            covered: opened.covered,
            digest_hex: opened.digest_hex.as_deref(),
            signed: chain.signed,
            app_is_image: measured.app_is_image,
            attested: &attested,
        },
        i.receipt,
        i.read_from,
        i.expected,
        &res,
    );
    let mut report = Report::default();
    report.checks.extend(opened.checks);
    report.checks.extend(chain.checks);
    report.checks.extend(measured.checks);
    report.checks.extend(attested.checks);
    Outcome {
        report,
        result_digest: opened.digest_hex,
        attestation: attested.attestation,
        tcb_status: attested.tcb_status,
        events: attested.events,
        proven,
        trusted,
        timeline: attested.timeline,
        timeline_json: attested.timeline_json,
    }
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}
