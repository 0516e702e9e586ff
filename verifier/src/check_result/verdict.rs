//! Step 5: the verdict. What the passing checks prove, and what still rests on trust, in
//! words a requester can act on.

use super::attestation::Attested;
use super::{lower, str_at};
use crate::iexec::receipt::Receipt;
use oci_image::Measurement;
use serde_json::Value;

/// What the earlier steps found that the verdict speaks of.
pub struct Findings<'a> {
    /// Step 1: `result.json` alone is the deterministic output.
    pub covered: bool,
    /// Step 1: the recomputed resultDigest.
    pub digest_hex: Option<&'a str>,
    /// Step 2: the enclave-challenge key signed it.
    pub signed: bool,
    /// Step 3: the app on chain is the measured image.
    pub app_is_image: bool,
    /// Step 4.
    pub attested: &'a Attested,
}

/// The `proven:` and `trusted:` lines.
pub fn step(
    f: &Findings<'_>,
    rc: &Receipt,
    read_from: Option<&str>,
    m: &Measurement,
    res: &Value,
) -> (Vec<String>, Vec<String>) {
    let mut proven = Vec::new();
    let mut trusted = Vec::new();
    if f.covered && f.signed {
        proven.push(format!(
            "this result.json is the output whose digest {} the enclave-challenge key {} signed for task {} (worker {})",
            f.digest_hex.unwrap_or_default(),
            lower(&rc.enclave_challenge),
            lower(&rc.task_id),
            lower(&rc.worker)
        ));
    }
    if f.app_is_image {
        proven.push(format!(
            "the app registered on chain is the measured image {}",
            m.manifest_digest
        ));
    }
    let a = f.attested;
    if a.quote_ok {
        proven.push(format!(
            "a TDX TD (TCB {}) signed REPORTDATA binding this result.json's claims: the answer, the prompt digest, the model {} and the binary {}",
            a.tcb_status.clone().unwrap_or_default(),
            str_at(res, &["model", "sha256"]).unwrap_or("absent"),
            str_at(res, &["app", "binary_sha256"]).unwrap_or("absent")
        ));
        match a.log_ok {
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
            a.attestation
        ));
    }
    match (&rc.source, read_from) {
        (Some(src), Some(url)) => {
            proven.push(format!(
                "read from chain {} (PoCo {}) at block {}: the task, its deal (app, tag, params, workerpool owner), the contribution, and the contributeAndFinalize transaction {} whose two signatures the contract checked",
                src.chain_id.unwrap_or_default(),
                src.poco.as_deref().unwrap_or("?"),
                src.block.unwrap_or_default(),
                src.transaction.as_deref().unwrap_or("?")
            ));
            trusted.push(format!(
                "the JSON-RPC endpoint {url} answers as chain {} does (use your own node, or compare two endpoints)",
                src.chain_id.unwrap_or_default()
            ));
        }
        (Some(src), None) if src.kind == "iexec-sdk" => trusted.push(format!(
            "the SDK's outputs are the chain's, and PoCo has no TEE broker set (the SDK does not show it; --task --rpc reads both from the chain): re-read with --task {} --rpc URL",
            lower(&rc.task_id)
        )),
        (Some(src), None) => trusted.push(format!(
            "the receipt says its values were read ({}) from chain {} at block {}: the file proves nothing about the chain; re-read it with --task {} --rpc URL",
            src.kind,
            src.chain_id.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
            src.block.map(|b| b.to_string()).unwrap_or_else(|| "?".into()),
            lower(&rc.task_id)
        )),
        (None, _) => trusted.push(
            "the receipt's values are those on chain (a receipt written by hand: read them from the chain with --task --rpc, see README)"
                .into(),
        ),
    }
    let pinned = rc
        .app
        .as_ref()
        .and_then(|a| a.multiaddr.as_deref())
        .is_some_and(|m| m.contains("@sha256:"));
    trusted.push(format!(
        "that the worker ran the registered image: it pulls the app's multiaddr{}, and PoCo does not enforce the checksum at pull time; what ran is bound only by the quote (with an MRTD/RTMR --policy) or by the SMS releasing the enclave key to that app's session",
        if pinned { " (pinned by digest here)" } else { " by its tag" }
    ));
    (proven, trusted)
}
