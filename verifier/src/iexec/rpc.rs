//! The receipt read from the chain itself over Ethereum JSON-RPC (HTTP): the task, its deal,
//! the app, the contribution, and the `contributeAndFinalize` transaction whose calldata holds
//! the two signatures the contract checked but does not store.
//!
//! Every value is read at one block (the head when the read starts), so the task, deal and
//! contribution agree with one another. The transaction is found from its `TaskFinalize`
//! event. `contributeAndFinalize` sets the task's `revealDeadline` to its block's time plus
//! `timeref × 2` (`IexecPoco2Facet.sol`, `REVEAL_DEADLINE_RATIO`), so the blocks of that second
//! are found by bisection and only they are searched for the log (public endpoints refuse log
//! searches over the whole chain).

use super::poco::{self, task_status};
use super::receipt::{AppOnChain, Authorization, Receipt, Source, WorkerpoolOnChain, SCHEMA};
use super::to_hex;
use crate::error::Error;
use crate::report::printable;
use alloy_sol_types::{SolCall, SolEvent};
use serde_json::{json, Value};
use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How an answer's `error` member is reported (a call the contract refused, among others).
const REFUSED: &str = "answered with error";
/// Most bytes of one JSON-RPC answer.
const MAX_ANSWER: u64 = 16 << 20;
/// Most blocks searched for the finalizing event (the blocks of one second, on any chain).
const MAX_LOG_WINDOW: u64 = 10_000;

/// Where to read: the endpoint, the chain it must be and the PoCo Diamond on it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// JSON-RPC over HTTP(S).
    pub url: String,
    /// The chain id the endpoint must answer.
    pub chain_id: u64,
    /// The PoCo Diamond, `0x` + 40 hex.
    pub poco: String,
    /// The whole read's deadline.
    pub timeout: Duration,
}

/// What the chain says about a task.
#[derive(Debug, Clone)]
pub enum Read {
    /// The task is finalized: every value of the receipt was read from the chain.
    Completed(Box<Receipt>),
    /// Not (yet) finalized: the status and what is known so far.
    Pending {
        /// `UNSET`, `ACTIVE`, `REVEALING`, `FAILED`.
        status: String,
        /// The block read.
        block: u64,
    },
}

struct Client {
    agent: ureq::Agent,
    url: String,
    deadline: Instant,
    timeout: Duration,
    id: Cell<u64>,
    block_times: std::cell::RefCell<HashMap<u64, u64>>,
}

fn bad(e: &Endpoint, why: impl std::fmt::Display) -> Error {
    Error::malformed(format!("JSON-RPC {}", shown(&e.url)), why)
}

/// An endpoint's URL as reports show it: scheme, host and port only (a provider's path or
/// query often carries an API key).
pub fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest.get(..end).unwrap_or(rest);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let more = if end < rest.len() { "/…" } else { "" };
    printable(&format!("{scheme}://{host}{more}"))
}

impl Client {
    fn new(e: &Endpoint) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(e.timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("iexec-llm-verifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client {
            agent,
            url: e.url.clone(),
            deadline: Instant::now() + e.timeout,
            timeout: e.timeout,
            id: Cell::new(0),
            block_times: Default::default(),
        }
    }

    /// One JSON-RPC call; its `result`.
    fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{method}: no time left ({} s for the whole read; --rpc-timeout)",
                self.timeout.as_secs_f32()
            ));
        }
        let id = self.id.get() + 1;
        self.id.set(id);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut r = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(left))
            .build()
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(|e| format!("{method}: {e}"))?;
        if r.status() != 200 {
            return Err(format!(
                "{method}: HTTP {} (only 200 is accepted; redirects are not followed)",
                r.status().as_u16()
            ));
        }
        let bytes = r
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| format!("{method}: body: {e}"))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{method}: the answer is not JSON ({e})"))?;
        if v.get("id") != Some(&json!(id)) {
            return Err(format!("{method}: the answer's id is not the request's"));
        }
        if let Some(err) = v.get("error") {
            return Err(format!(
                "{method}: {REFUSED} {} {}",
                err.get("code").unwrap_or(&Value::Null),
                printable(err.get("message").and_then(Value::as_str).unwrap_or(""))
            ));
        }
        v.get("result")
            .cloned()
            .ok_or_else(|| format!("{method}: the answer has no result"))
    }

    fn hex_result(&self, method: &str, params: Value) -> Result<Vec<u8>, String> {
        let v = self.call(method, params)?;
        let s = v
            .as_str()
            .ok_or_else(|| format!("{method}: the result is not a hex string"))?;
        super::hex_bytes(s).map_err(|e| format!("{method}: {e}"))
    }

    fn quantity(&self, method: &str, params: Value) -> Result<u64, String> {
        quantity(&self.call(method, params)?).map_err(|e| format!("{method}: {e}"))
    }

    /// `eth_call` of a PoCo view at `block`, decoded.
    fn view<C: SolCall>(&self, to: &str, c: &C, block: u64) -> Result<C::Return, String> {
        let name = C::SIGNATURE;
        let out = self
            .hex_result(
                "eth_call",
                json!([{"to": to, "data": to_hex(&c.abi_encode())}, format!("0x{block:x}")]),
            )
            .map_err(|e| {
                if e.contains(REFUSED) {
                    format!("{name} at {to}: refused, not PoCo ({e})")
                } else {
                    e
                }
            })?;
        C::abi_decode_returns(&out).map_err(|e| {
            format!(
                "{name} at {to}: the answer ({} bytes) is not PoCo's ({e})",
                out.len()
            )
        })
    }

    fn block_time(&self, n: u64) -> Result<u64, String> {
        if let Some(t) = self.block_times.borrow().get(&n) {
            return Ok(*t);
        }
        let b = self.call("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]))?;
        let t = quantity(b.get("timestamp").unwrap_or(&Value::Null))
            .map_err(|e| format!("eth_getBlockByNumber {n}: timestamp: {e}"))?;
        self.block_times.borrow_mut().insert(n, t);
        Ok(t)
    }

    /// The first block in `0..=head` whose time is at least `t` (`head + 1` when none).
    fn first_block_at(&self, t: u64, head: u64) -> Result<u64, String> {
        let (mut lo, mut hi) = (0u64, head.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.block_time(mid)? < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

/// A JSON-RPC quantity (`0x` + hex, no leading zeros required) as u64.
fn quantity(v: &Value) -> Result<u64, String> {
    let s = v.as_str().ok_or("not a hex quantity")?;
    let h = s.strip_prefix("0x").ok_or("not a 0x quantity")?;
    u64::from_str_radix(h, 16).map_err(|e| format!("{s:?}: {e}"))
}

fn address_hex(a: &alloy_sol_types::private::Address) -> String {
    to_hex(a.as_slice())
}

/// Reads task `task_id` (`0x` + 64 hex) from the chain.
///
/// # Errors
/// [`Error::Malformed`] naming the problem for an endpoint that cannot be used: an HTTP
/// error, an answer that is not JSON-RPC, another chain, no contract or not PoCo at the
/// address, a finalized task whose transaction cannot be found or is not a direct
/// `contributeAndFinalize` call, or the deadline passed.
pub fn read_task(e: &Endpoint, task_id: &str) -> Result<Read, Error> {
    let c = Client::new(e);
    let why = |m: String| bad(e, m);
    let task = super::hex_bytes(task_id)?;
    let task: [u8; 32] = task
        .try_into()
        .map_err(|_| Error::malformed("--task", "not 32 bytes of hex"))?;
    let chain = c.quantity("eth_chainId", json!([])).map_err(why)?;
    if chain != e.chain_id {
        return Err(bad(
            e,
            format!("the endpoint is chain {chain}, not chain {}", e.chain_id),
        ));
    }
    let head = c.quantity("eth_blockNumber", json!([])).map_err(why)?;
    let code = c
        .hex_result("eth_getCode", json!([e.poco, format!("0x{head:x}")]))
        .map_err(why)?;
    if code.is_empty() {
        return Err(bad(
            e,
            format!("no contract at {} on chain {chain}: not PoCo", e.poco),
        ));
    }
    let t = c
        .view(&e.poco, &poco::viewTaskCall { id: task.into() }, head)
        .map_err(why)?;
    let status = task_status(t.status);
    if status != "COMPLETED" {
        return Ok(Read::Pending {
            status: status.into(),
            block: head,
        });
    }
    let deal = c
        .view(&e.poco, &poco::viewDealCall { id: t.dealid }, head)
        .map_err(why)?;
    let app = c
        .view(
            &e.poco,
            &poco::viewAppCall {
                app: deal.app.pointer,
            },
            head,
        )
        .map_err(why)?;
    // The finalizing transaction, from its TaskFinalize event in the blocks of the second
    // the task records.
    let big = |v: alloy_sol_types::private::U256, what: &str| -> Result<u64, Error> {
        v.try_into()
            .map_err(|_| why(format!("the task's {what} does not fit 64 bits")))
    };
    let ts = big(t.revealDeadline, "revealDeadline")?
        .checked_sub(big(t.timeref, "timeref")?.saturating_mul(2))
        .ok_or_else(|| why("the task's revealDeadline is before its timeref × 2".into()))?;
    let from = c.first_block_at(ts, head).map_err(why)?;
    let to = c
        .first_block_at(ts.saturating_add(1), head)
        .map_err(why)?
        .saturating_sub(1);
    if from > to || to - from > MAX_LOG_WINDOW {
        return Err(why(format!(
            "no block range for the task's finalization time {ts} (blocks {from}..{to})"
        )));
    }
    let logs = c
        .call(
            "eth_getLogs",
            json!([{"address": e.poco, "fromBlock": format!("0x{from:x}"),
                    "toBlock": format!("0x{to:x}"),
                    "topics": [to_hex(poco::TaskFinalize::SIGNATURE_HASH.as_slice()), task_id.to_ascii_lowercase()]}]),
        )
        .map_err(why)?;
    let logs = logs
        .as_array()
        .ok_or_else(|| why("eth_getLogs: the result is not a list".into()))?;
    let [log] = logs.as_slice() else {
        return Err(why(format!(
            "{} TaskFinalize events for the task in blocks {from}..{to}, expected exactly one",
            logs.len()
        )));
    };
    let log_field = |k: &str| {
        log.get(k)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
    };
    let topics: Vec<String> = log
        .get("topics")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    if log_field("address") != Some(e.poco.to_ascii_lowercase())
        || topics.get(1) != Some(&task_id.to_ascii_lowercase())
        || topics.first().map(String::as_str)
            != Some(to_hex(poco::TaskFinalize::SIGNATURE_HASH.as_slice()).as_str())
        || log.get("removed") == Some(&Value::Bool(true))
    {
        return Err(why(
            "eth_getLogs answered a log that is not this task's TaskFinalize from PoCo".into(),
        ));
    }
    let tx_hash = log
        .get("transactionHash")
        .and_then(Value::as_str)
        .ok_or_else(|| why("eth_getLogs: a log without transactionHash".into()))?
        .to_ascii_lowercase();
    let tx = c
        .call("eth_getTransactionByHash", json!([tx_hash]))
        .map_err(why)?;
    let field = |k: &str| -> Result<String, Error> {
        tx.get(k)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| why(format!("transaction {tx_hash}: no {k}")))
    };
    let (tx_to, tx_from, input) = (field("to")?, field("from")?, field("input")?);
    if field("hash")? != tx_hash {
        return Err(why(format!(
            "eth_getTransactionByHash answered another transaction than {tx_hash}"
        )));
    }
    let receipt = c
        .call("eth_getTransactionReceipt", json!([tx_hash]))
        .map_err(why)?;
    if receipt.get("status").and_then(Value::as_str) != Some("0x1") {
        return Err(why(format!("transaction {tx_hash} did not succeed")));
    }
    if tx_to != e.poco.to_ascii_lowercase() {
        return Err(why(format!(
            "transaction {tx_hash} is a call to {tx_to}, not to PoCo {}: only a direct contributeAndFinalize is read",
            e.poco
        )));
    }
    let calldata = super::hex_bytes(&input)?;
    let call = poco::contributeAndFinalizeCall::abi_decode(&calldata).map_err(|err| {
        why(format!(
            "transaction {tx_hash} is not a contributeAndFinalize call ({err})"
        ))
    })?;
    if call._taskid.as_slice() != task {
        return Err(why(format!(
            "transaction {tx_hash} contributes to task {}, not {task_id}",
            to_hex(call._taskid.as_slice())
        )));
    }
    if call._resultDigest != t.resultDigest || call._results != t.results {
        return Err(why(format!(
            "transaction {tx_hash} contributed another resultDigest or results than the task records"
        )));
    }
    let worker = super::hex_bytes(&tx_from)?;
    let worker: [u8; 20] = worker
        .try_into()
        .map_err(|_| why(format!("transaction {tx_hash}: from is not an address")))?;
    let contribution = c
        .view(
            &e.poco,
            &poco::viewContributionCall {
                taskid: task.into(),
                worker: worker.into(),
            },
            head,
        )
        .map_err(why)?;
    // The contract's rule: the TEE broker signs authorizations when one is set and the
    // contribution has an enclave challenge; the workerpool owner otherwise.
    let broker = c
        .view(&e.poco, &poco::teebrokerCall {}, head)
        .map_err(why)?;
    let zero = alloy_sol_types::private::Address::ZERO;
    let (signer, role) = if call._enclaveChallenge != zero && broker != zero {
        (address_hex(&broker), "tee-broker")
    } else {
        (address_hex(&deal.workerpool.owner), "workerpool-owner")
    };
    let multiaddr = String::from_utf8(app.m_appMultiaddr.to_vec())
        .unwrap_or_else(|_| to_hex(&app.m_appMultiaddr));
    Ok(Read::Completed(Box::new(Receipt {
        schema: SCHEMA.into(),
        task_id: task_id.to_ascii_lowercase(),
        deal_id: Some(to_hex(t.dealid.as_slice())),
        task_index: Some(
            t.idx
                .try_into()
                .map_err(|_| why("the task index does not fit 64 bits".into()))?,
        ),
        worker: tx_from,
        enclave_challenge: address_hex(&contribution.enclaveChallenge),
        enclave_signature: to_hex(&call._enclaveSign),
        result_digest: Some(to_hex(t.resultDigest.as_slice())),
        result_hash: Some(to_hex(contribution.resultHash.as_slice())),
        result_seal: Some(to_hex(contribution.resultSeal.as_slice())),
        workerpool_authorization: Some(Authorization {
            signature: to_hex(&call._authorizationSign),
            signer: signer.clone(),
        }),
        app: Some(AppOnChain {
            address: Some(address_hex(&deal.app.pointer)),
            multiaddr: Some(multiaddr),
            checksum: Some(to_hex(app.m_appChecksum.as_slice())),
        }),
        source: Some(Source {
            kind: "json-rpc".into(),
            chain_id: Some(chain),
            poco: Some(e.poco.to_ascii_lowercase()),
            block: Some(head),
            transaction: Some(tx_hash),
        }),
        task_status: Some(status.into()),
        tag: Some(to_hex(deal.tag.as_slice())),
        params: Some(deal.params),
        results: Some(to_hex(&t.results)),
        contributors: Some(t.contributors.iter().map(address_hex).collect()),
        workerpool: Some(WorkerpoolOnChain {
            address: address_hex(&deal.workerpool.pointer),
            owner: address_hex(&deal.workerpool.owner),
            authorization_signer: role.into(),
        }),
        dataset: Some(address_hex(&deal.dataset.pointer)),
    })))
}
