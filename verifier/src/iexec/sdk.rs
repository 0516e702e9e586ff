//! The receipt from the iExec SDK's own outputs (iexec 9.0.1): `iexec task show <task> --raw`,
//! `iexec deal show <deal> --raw` and `iexec app show <app> --raw`, saved as files, plus the
//! input data of the task's `contributeAndFinalize` transaction, which holds the two
//! signatures the chain checked but does not store.
//!
//! The SDK prints one JSON line, `{"ok":true,…}`: numbers as decimal strings (the task's
//! `status` as a number), bytes as 0x-hex, addresses checksummed, the task's `results`
//! decoded (`{"storage":…,"location":…}`). The SDK does not show contributions or PoCo's TEE
//! broker: the worker is the task's one contributor, the enclave challenge is the calldata's
//! (the contract required both to match what it stored), and the authorization's signer is
//! the deal's workerpool owner (the broker, when PoCo has one set, is only read by
//! `--task --rpc`).

use super::poco::{self, task_status};
use super::receipt::{AppOnChain, Authorization, Receipt, Source, WorkerpoolOnChain, SCHEMA};
use super::{hex_bytes, to_hex};
use crate::error::Error;
use alloy_sol_types::SolCall;
use serde_json::Value;

/// The `{"ok":true,…}` object the SDK printed (its last line, after any warning it printed on
/// the same stream).
fn sdk_json(what: &str, bytes: &[u8]) -> Result<Value, Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::malformed(what, "not UTF-8"))?;
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let v: Value = serde_json::from_str(line)
        .map_err(|e| Error::malformed(what, format!("not the SDK's --raw JSON ({e})")))?;
    if v.get("ok") != Some(&Value::Bool(true)) {
        return Err(Error::malformed(
            what,
            format!(
                "the SDK reported an error: {}",
                crate::report::printable(&v.get("error").unwrap_or(&Value::Null).to_string())
            ),
        ));
    }
    Ok(v)
}

fn text<'v>(what: &str, v: &'v Value, path: &[&str]) -> Result<&'v str, Error> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .ok_or_else(|| Error::malformed(what, format!("no string {}", path.join("."))))
}

fn same_hex(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Assembles the receipt.
///
/// # Errors
/// [`Error::Malformed`] for an output that is not the SDK's, outputs about different tasks,
/// deals or apps, or calldata that is not this task's `contributeAndFinalize`.
pub fn receipt(task: &[u8], deal: &[u8], app: &[u8], calldata: &[u8]) -> Result<Receipt, Error> {
    let (tw, dw, aw) = ("iexec task show", "iexec deal show", "iexec app show");
    let t = sdk_json(tw, task)?;
    let d = sdk_json(dw, deal)?;
    let a = sdk_json(aw, app)?;
    let task_id = text(tw, &t, &["task", "taskid"])?.to_ascii_lowercase();
    let deal_id = text(tw, &t, &["task", "dealid"])?.to_ascii_lowercase();
    if !same_hex(text(dw, &d, &["deal", "dealid"])?, &deal_id) {
        return Err(Error::malformed(dw, "about another deal than the task's"));
    }
    let app_address = text(dw, &d, &["deal", "app", "pointer"])?.to_ascii_lowercase();
    if !same_hex(text(aw, &a, &["address"])?, &app_address) {
        return Err(Error::malformed(aw, "about another app than the deal's"));
    }
    let idx: u64 = text(tw, &t, &["task", "idx"])?
        .parse()
        .map_err(|e| Error::malformed(tw, format!("idx: {e}")))?;
    let status = t
        .pointer("/task/status")
        .and_then(Value::as_u64)
        .and_then(|s| u8::try_from(s).ok())
        .ok_or_else(|| Error::malformed(tw, "no numeric task.status"))?;
    let contributors: Vec<String> = t
        .pointer("/task/contributors")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::malformed(tw, "no task.contributors list"))?
        .iter()
        .map(|c| c.as_str().map(str::to_ascii_lowercase))
        .collect::<Option<_>>()
        .ok_or_else(|| Error::malformed(tw, "a contributor that is not a string"))?;
    let [worker] = contributors.as_slice() else {
        return Err(Error::malformed(
            tw,
            format!(
                "{} contributors: a finalized TEE task has exactly one",
                contributors.len()
            ),
        ));
    };
    let digest = text(tw, &t, &["task", "resultDigest"])?.to_ascii_lowercase();
    let input = std::str::from_utf8(calldata)
        .map_err(|_| Error::malformed("calldata", "not text"))?
        .trim();
    let call = poco::contributeAndFinalizeCall::abi_decode(&hex_bytes(input)?).map_err(|e| {
        Error::malformed(
            "calldata",
            format!("not a contributeAndFinalize call ({e})"),
        )
    })?;
    if !same_hex(&to_hex(call._taskid.as_slice()), &task_id) {
        return Err(Error::malformed(
            "calldata",
            format!(
                "contributes to task {}, not {task_id}",
                to_hex(call._taskid.as_slice())
            ),
        ));
    }
    if !same_hex(&to_hex(call._resultDigest.as_slice()), &digest) {
        return Err(Error::malformed(
            "calldata",
            "contributes another resultDigest than the task records",
        ));
    }
    // The task's results as the SDK decoded them must be the calldata's bytes.
    let shown = t.pointer("/task/results").cloned().unwrap_or(Value::Null);
    let sent: Value = serde_json::from_slice(&call._results).unwrap_or(Value::Null);
    if shown.get("storage") != sent.get("storage") || shown.get("location") != sent.get("location")
    {
        return Err(Error::malformed(
            "calldata",
            "its results are not those the task shows",
        ));
    }
    Ok(Receipt {
        schema: SCHEMA.into(),
        task_id,
        deal_id: Some(deal_id),
        task_index: Some(idx),
        worker: worker.clone(),
        enclave_challenge: to_hex(call._enclaveChallenge.as_slice()),
        enclave_signature: to_hex(&call._enclaveSign),
        result_digest: Some(digest),
        result_hash: None,
        result_seal: None,
        workerpool_authorization: Some(Authorization {
            signature: to_hex(&call._authorizationSign),
            signer: text(dw, &d, &["deal", "workerpool", "owner"])?.to_ascii_lowercase(),
        }),
        app: Some(AppOnChain {
            address: Some(app_address),
            multiaddr: Some(text(aw, &a, &["app", "appMultiaddr"])?.to_string()),
            checksum: Some(text(aw, &a, &["app", "appChecksum"])?.to_ascii_lowercase()),
        }),
        source: Some(Source {
            kind: "iexec-sdk".into(),
            ..Source::default()
        }),
        task_status: Some(task_status(status).into()),
        tag: Some(text(dw, &d, &["deal", "tag"])?.to_ascii_lowercase()),
        params: Some(text(dw, &d, &["deal", "params"])?.to_string()),
        results: Some(to_hex(&call._results)),
        contributors: Some(contributors.clone()),
        workerpool: Some(WorkerpoolOnChain {
            address: text(dw, &d, &["deal", "workerpool", "pointer"])?.to_ascii_lowercase(),
            owner: text(dw, &d, &["deal", "workerpool", "owner"])?.to_ascii_lowercase(),
            authorization_signer: "workerpool-owner".into(),
        }),
        dataset: Some(
            text(dw, &d, &["deal", "dataset", "pointer"])
                .unwrap_or("0x0000000000000000000000000000000000000000")
                .to_ascii_lowercase(),
        ),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const TASK: &str = "0xa45312806103a7c640f86c84a7585518976e16c513f9922e2b5df81c78e4e40b";
    const DEAL: &str = "0xdbd5a01f474b98ce0c1ad91ab919365680ef7c71787dd46c8bd34f7ec91793e5";
    const APP: &str = "0xF7226c0E45D71893332808ec545eB0599824A694";
    const DIGEST: &str = "0x87cc39e9df8d9300d7391477dce5f8035d670e3852e71fdbc761ec12ad6ef0d8";

    /// Outputs shaped as iexec 9.0.1 prints them (types and key names of a real run), and
    /// the calldata of that task's contribution.
    fn outputs() -> (Value, Value, Value, String) {
        let results = r#"{ "storage": "ipfs", "location": "/ipfs/QmX" }"#;
        let task = json!({"ok": true, "task": {"taskid": TASK, "status": 3, "dealid": DEAL,
            "idx": "0", "timeref": "300", "contributors": ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
            "resultDigest": DIGEST, "results": {"storage": "ipfs", "location": "/ipfs/QmX"},
            "resultsCallback": "0x", "statusName": "COMPLETED", "taskTimedOut": false},
            "claimable": false});
        let deal = json!({"ok": true, "deal": {"dealid": DEAL,
            "app": {"pointer": APP, "owner": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "price": "0"},
            "workerpool": {"pointer": "0xC709D59CD7152B26369A1078Bd3f9190bD6085cb",
                           "owner": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "price": "0"},
            "trust": "1", "category": "0", "tag": format!("0x{}09", "0".repeat(62)),
            "params": "{\"iexec_args\":\"What is 2+2?\"}"}});
        let app = json!({"ok": true, "address": APP, "app": {"appChecksum": format!("0x{}", "ab".repeat(32)),
            "appMREnclave": "", "appMultiaddr": "registry.example/llm:1", "appName": "iexec-llm",
            "appType": "DOCKER", "owner": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}});
        let call = poco::contributeAndFinalizeCall {
            _taskid: <[u8; 32]>::try_from(hex_bytes(TASK).unwrap())
                .unwrap()
                .into(),
            _resultDigest: <[u8; 32]>::try_from(hex_bytes(DIGEST).unwrap())
                .unwrap()
                .into(),
            _results: results.as_bytes().to_vec().into(),
            _resultsCallback: Vec::new().into(),
            _enclaveChallenge: [0x19; 20].into(),
            _enclaveSign: vec![1; 65].into(),
            _authorizationSign: vec![2; 65].into(),
        };
        (task, deal, app, to_hex(&call.abi_encode()))
    }

    fn assemble(t: &Value, d: &Value, a: &Value, c: &str) -> Result<Receipt, Error> {
        receipt(
            t.to_string().as_bytes(),
            d.to_string().as_bytes(),
            a.to_string().as_bytes(),
            c.as_bytes(),
        )
    }

    #[test]
    fn the_sdk_outputs_and_the_calldata_make_a_receipt() {
        let (t, d, a, c) = outputs();
        let r = assemble(&t, &d, &a, &c).unwrap();
        assert_eq!(r.task_id, TASK);
        assert_eq!(r.worker, "0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
        assert_eq!(r.task_status.as_deref(), Some("COMPLETED"));
        assert_eq!(r.enclave_challenge, to_hex(&[0x19; 20]));
        let signer = r.workerpool_authorization.unwrap().signer;
        assert_eq!(signer, "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc");
        // A warning line before the JSON, as the SDK prints when the node is slow to answer.
        let warned = format!("JsonRpcProvider failed to detect network\n{t}\n");
        assert!(receipt(
            warned.as_bytes(),
            d.to_string().as_bytes(),
            a.to_string().as_bytes(),
            c.as_bytes()
        )
        .is_ok());
    }

    #[test]
    fn outputs_about_other_objects_or_other_calls_are_refused() {
        let (t, d, a, c) = outputs();
        let mut other_deal = d.clone();
        other_deal["deal"]["dealid"] = json!(format!("0x{}", "11".repeat(32)));
        let mut other_app = a.clone();
        other_app["address"] = json!(format!("0x{}", "22".repeat(20)));
        let mut two = t.clone();
        two["task"]["contributors"] = json!([
            format!("0x{}", "33".repeat(20)),
            format!("0x{}", "44".repeat(20))
        ]);
        let mut moved = t.clone();
        moved["task"]["results"]["location"] = json!("/ipfs/QmOther");
        let mut failed = t.clone();
        failed["ok"] = json!(false);
        let mut digest = t.clone();
        digest["task"]["resultDigest"] = json!(format!("0x{}", "55".repeat(32)));
        let mut other_task = t.clone();
        other_task["task"]["taskid"] = json!(format!("0x{}", "66".repeat(32)));
        for (t, d, a, c, why) in [
            (&t, &other_deal, &a, c.as_str(), "another deal"),
            (&t, &d, &other_app, c.as_str(), "another app"),
            (&two, &d, &a, c.as_str(), "2 contributors"),
            (&moved, &d, &a, c.as_str(), "results are not those"),
            (&failed, &d, &a, c.as_str(), "reported an error"),
            (&digest, &d, &a, c.as_str(), "another resultDigest"),
            (&other_task, &d, &a, c.as_str(), "contributes to task"),
            (&t, &d, &a, "0x12345678", "not a contributeAndFinalize"),
        ] {
            let e = assemble(t, d, a, c).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
