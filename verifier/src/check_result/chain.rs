//! Step 2: the result chain, from the receipt (the chain's data about the task): the task id
//! belongs to the deal, the chain recorded this resultDigest, resultHash and resultSeal for
//! this task and worker, the enclave-challenge key signed them (the contract's signature
//! rules), and the workerpool authorized that worker and challenge.

use super::lower;
use crate::iexec::chain::{recover_eip191_onchain, result_hash_and_seal, task_id, tee_tag};
use crate::iexec::receipt::Receipt;
use crate::iexec::{hash_concat, hex_bytes, to_hex};
use crate::report::Check;

/// What step 2 established.
pub struct Chain {
    /// Its checks, in order.
    pub checks: Vec<Check>,
    /// Whether the enclave challenge is set and its key signed this result's hash and seal.
    pub signed: bool,
}

/// Runs step 2 for the resultDigest recomputed in step 1.
pub fn step(rc: &Receipt, digest_hex: Option<&str>) -> Chain {
    let mut checks = Vec::new();
    if let (Some(deal), Some(idx)) = (&rc.deal_id, rc.task_index) {
        checks.push(match task_id(deal, idx) {
            Ok(t) => Check::equal(
                "task id = keccak256(deal id ‖ task index)",
                &lower(&rc.task_id),
                &to_hex(&t),
            ),
            Err(e) => Check::fail("task id from the deal", "a 32-byte deal id", e.to_string()),
        });
    }
    if let (Some(want), Some(got)) = (&rc.result_digest, digest_hex) {
        checks.push(Check::equal(
            "resultDigest on chain = recomputed",
            &lower(want),
            got,
        ));
    }
    if let Some(status) = &rc.task_status {
        checks.push(Check {
            name: "task status on chain is COMPLETED".into(),
            pass: status == "COMPLETED",
            expected: "COMPLETED".into(),
            found: status.clone(),
        });
    }
    if let Some(tag) = &rc.tag {
        let name = "deal tag requires a TEE (bit 0) and TDX (0b1001)";
        checks.push(match tee_tag(tag) {
            Ok((framework, tee)) => Check {
                name: name.into(),
                pass: tee && framework == Some("TDX"),
                expected: "TEE, TDX".into(),
                found: format!(
                    "{} ({})",
                    lower(tag),
                    match (tee, framework) {
                        (false, _) => "no TEE".to_string(),
                        (true, f) => format!("TEE, {}", f.unwrap_or("no framework")),
                    }
                ),
            },
            Err(e) => Check::fail(name, "a 32-byte tag", e.to_string()),
        });
    }
    if let Some(c) = &rc.contributors {
        checks.push(Check {
            name: "the worker is the task's only contributor".into(),
            pass: c.len() == 1 && c.iter().all(|w| lower(w) == lower(&rc.worker)),
            expected: lower(&rc.worker),
            found: c.iter().map(|w| lower(w)).collect::<Vec<_>>().join(", "),
        });
    }
    if let Some(r) = &rc.results {
        checks.push(result_location(r));
    }
    // The enclave signature is checked over the hash and seal of the digest the chain
    // recorded (what the contract checked); that digest is the file's is the check above.
    let signed_digest = rc.result_digest.as_deref().map(lower);
    let mut signed = false;
    if let Some(d) = signed_digest.as_deref().or(digest_hex) {
        match result_hash_and_seal(&rc.task_id, &rc.worker, d) {
            Ok((rh, rs)) => {
                signed = enclave_signature(rc, &to_hex(&rh), &to_hex(&rs), &mut checks)
                    && digest_hex.is_some_and(|got| got == d)
            }
            Err(e) => checks.push(Check::fail(
                "resultHash and resultSeal",
                "hex task id and worker",
                e.to_string(),
            )),
        }
    }
    if let Some(a) = &rc.workerpool_authorization {
        // With the deal's workerpool known, its owner is the signer (unless PoCo's TEE broker
        // signs, whose address only the receipt's signer names).
        let (name, signer) = match rc.workerpool.as_ref() {
            Some(w) if w.authorization_signer == "tee-broker" => (
                "WorkerpoolAuthorization of (worker, task id, enclave challenge) signed by PoCo's TEE broker",
                a.signer.clone(),
            ),
            Some(w) => (
                "WorkerpoolAuthorization of (worker, task id, enclave challenge) signed by the deal's workerpool owner",
                w.owner.clone(),
            ),
            None => (
                "WorkerpoolAuthorization of (worker, task id, enclave challenge) signed by the expected signer",
                a.signer.clone(),
            ),
        };
        checks.push(
            match hash_concat(&[&rc.worker, &rc.task_id, &rc.enclave_challenge])
                .and_then(|h| recover_eip191_onchain(&h, &a.signature))
            {
                Ok(s) => Check::equal(name, &lower(&signer), &s),
                Err(e) => Check::fail(name, lower(&signer), e.to_string()),
            },
        );
    }
    Chain { checks, signed }
}

/// The task's `results`: for a stored result, `{ "storage": …, "location": … }`.
fn result_location(results_hex: &str) -> Check {
    let name = "result location stated on chain (the task's results)";
    let text = hex_bytes(results_hex)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let parsed = text
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    match (field("storage"), field("location")) {
        (Some(s), Some(l)) => Check {
            name: name.into(),
            pass: true,
            expected: "storage and location".into(),
            found: format!("{s} {}", crate::report::printable(&l)),
        },
        _ => Check::fail(
            name,
            "storage and location",
            match text {
                Some(t) => crate::report::printable(&t),
                None => format!("{} (not text)", lower(results_hex)),
            },
        ),
    }
}

/// resultHash and resultSeal against the receipt, then the enclave signature over them.
/// Returns whether the signature recovers a set enclave challenge.
fn enclave_signature(rc: &Receipt, rh: &str, rs: &str, checks: &mut Vec<Check>) -> bool {
    if let Some(want) = &rc.result_hash {
        checks.push(Check::equal(
            "resultHash = keccak256(task id ‖ resultDigest)",
            &lower(want),
            rh,
        ));
    }
    if let Some(want) = &rc.result_seal {
        checks.push(Check::equal(
            "resultSeal = keccak256(worker ‖ task id ‖ resultDigest)",
            &lower(want),
            rs,
        ));
    }
    let zero = hex_bytes(&rc.enclave_challenge)
        .map(|b| b.iter().all(|x| *x == 0))
        .unwrap_or(true);
    checks.push(Check {
        name: "enclave challenge is set (a TEE task)".into(),
        pass: !zero,
        expected: "a non-zero address".into(),
        found: lower(&rc.enclave_challenge),
    });
    let name = "enclave signature over (resultHash, resultSeal) recovers the enclave challenge";
    match hash_concat(&[rh, rs]).and_then(|m| recover_eip191_onchain(&m, &rc.enclave_signature)) {
        Ok(s) => {
            checks.push(Check::equal(name, &lower(&rc.enclave_challenge), &s));
            s == lower(&rc.enclave_challenge) && !zero
        }
        Err(e) => {
            checks.push(Check::fail(
                name,
                lower(&rc.enclave_challenge),
                e.to_string(),
            ));
            false
        }
    }
}
