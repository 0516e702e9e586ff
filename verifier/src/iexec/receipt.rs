//! The iExec receipt: what the chain says about a task, in one small JSON document: read from
//! the chain ([`super::rpc`], `check-result --task`), assembled from the SDK's outputs
//! ([`super::sdk`]), or written by hand (README, "The receipt"). Its core:
//!
//! ```json
//! {
//!   "schema": "iexec-llm/receipt/v1",
//!   "task_id": "0x…",                 // iexec task show <id>
//!   "deal_id": "0x…", "task_index": 0, // optional: the task id is then recomputed
//!   "worker": "0x…",                  // the worker wallet that contributed
//!   "enclave_challenge": "0x…",       // the contribution's enclaveChallenge
//!   "enclave_signature": "0x…",       // enclaveSign (contributeAndFinalize calldata)
//!   "result_digest": "0x…",           // optional: TaskReveal's resultDigest
//!   "result_hash": "0x…",             // optional: TaskContribute/TaskConsensus resultHash
//!   "result_seal": "0x…",             // optional: the contribution's resultSeal
//!   "workerpool_authorization": {     // optional
//!     "signature": "0x…", "signer": "0x…" },
//!   "app": { "address": "0x…", "multiaddr": "…", "checksum": "0x…" }
//! }
//! ```
//!
//! Read from the chain it also has `source`, `task_status`, `tag`, `params`, `results`,
//! `contributors`, `workerpool` and `dataset`, each checked when present.

use crate::error::Error;
use serde::{Deserialize, Serialize};

/// Identifies the format.
pub const SCHEMA: &str = "iexec-llm/receipt/v1";

/// A task's receipt.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`SCHEMA`].
    pub schema: String,
    /// The task id.
    pub task_id: String,
    /// The deal, to recompute the task id (with `task_index`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<String>,
    /// The task's index in the deal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_index: Option<u64>,
    /// The worker wallet that contributed.
    pub worker: String,
    /// The address of the task's enclave-challenge key.
    pub enclave_challenge: String,
    /// The enclave's EIP-191 signature over H(resultHash, resultSeal).
    pub enclave_signature: String,
    /// resultDigest as revealed on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_digest: Option<String>,
    /// resultHash as contributed on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_hash: Option<String>,
    /// resultSeal as contributed on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_seal: Option<String>,
    /// The scheduler's authorization of (worker, task, enclave challenge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workerpool_authorization: Option<Authorization>,
    /// The app as registered on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppOnChain>,
    /// Where the values were read; absent for a receipt written by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The task's status on chain (`COMPLETED`, `ACTIVE`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_status: Option<String>,
    /// The deal's tag, 32 bytes hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The deal's params: the JSON text whose `iexec_args` are the app's arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<String>,
    /// The task's `results` bytes, hex (for a stored result, the JSON naming its location).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
    /// The task's contributors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributors: Option<Vec<String>>,
    /// The deal's workerpool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workerpool: Option<WorkerpoolOnChain>,
    /// The deal's dataset (the zero address for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

/// Where a receipt's values were read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// `json-rpc` (read by this verifier) or `iexec-sdk` (the SDK's `show --raw` outputs).
    pub kind: String,
    /// EIP-155 chain id (the SDK's outputs do not say it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// The PoCo Diamond read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poco: Option<String>,
    /// The block the values were read at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<u64>,
    /// The contributeAndFinalize transaction the signatures were decoded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
}

/// The deal's workerpool and who had to sign the worker's authorization.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerpoolOnChain {
    /// The workerpool contract.
    pub address: String,
    /// Its owner, as the deal recorded it.
    pub owner: String,
    /// `workerpool-owner`, or `tee-broker` when PoCo has a TEE broker set (the contract then
    /// requires the broker's signature instead of the owner's).
    pub authorization_signer: String,
}

/// A WorkerpoolAuthorization signature and who should have signed it (the workerpool owner,
/// or the TEE broker).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// r ‖ s ‖ v, hex.
    pub signature: String,
    /// Expected signer address.
    pub signer: String,
}

/// The app's on-chain registration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppOnChain {
    /// The app contract's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The image reference (`registry/name:tag@sha256:…` or a tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiaddr: Option<String>,
    /// `0x` + the sha256 of the image manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl Receipt {
    /// Reads a receipt.
    ///
    /// # Errors
    /// [`Error::Malformed`] for JSON that is not a receipt of [`SCHEMA`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let r: Receipt =
            serde_json::from_slice(bytes).map_err(|e| Error::malformed("receipt", e))?;
        if r.schema != SCHEMA {
            return Err(Error::malformed(
                "receipt",
                format!("schema {:?}, expected {SCHEMA:?}", r.schema),
            ));
        }
        for (name, v, len) in [
            ("task_id", &r.task_id, 32),
            ("worker", &r.worker, 20),
            ("enclave_challenge", &r.enclave_challenge, 20),
        ] {
            let b = crate::iexec::hex_bytes(v)
                .map_err(|e| Error::malformed("receipt", format!("{name}: {e}")))?;
            if b.len() != len {
                return Err(Error::malformed(
                    "receipt",
                    format!("{name} is {} bytes, not {len}", b.len()),
                ));
            }
        }
        Ok(r)
    }
}
