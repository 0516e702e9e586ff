//! Step 2: the result chain, from the receipt (the chain's data about the task): the task id
//! belongs to the deal, the chain recorded this resultDigest, resultHash and resultSeal for
//! this task and worker, the enclave-challenge key signed them (the contract's signature
//! rules), and the workerpool authorized that worker and challenge.

use super::lower;
use crate::iexec::chain::{recover_eip191_onchain, result_hash_and_seal, task_id};
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
    let mut signed = false;
    if let Some(d) = digest_hex {
        match result_hash_and_seal(&rc.task_id, &rc.worker, d) {
            Ok((rh, rs)) => signed = enclave_signature(rc, &to_hex(&rh), &to_hex(&rs), &mut checks),
            Err(e) => checks.push(Check::fail(
                "resultHash and resultSeal",
                "hex task id and worker",
                e.to_string(),
            )),
        }
    }
    if let Some(a) = &rc.workerpool_authorization {
        let name = "WorkerpoolAuthorization of (worker, task id, enclave challenge) signed by the expected signer";
        checks.push(
            match hash_concat(&[&rc.worker, &rc.task_id, &rc.enclave_challenge])
                .and_then(|h| recover_eip191_onchain(&h, &a.signature))
            {
                Ok(s) => Check::equal(name, &lower(&a.signer), &s),
                Err(e) => Check::fail(name, lower(&a.signer), e.to_string()),
            },
        );
    }
    Chain { checks, signed }
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
