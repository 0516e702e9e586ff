//! The iExec side of a task on a real PoCo (a local chain, `tests/chain/`): register the app
//! and a workerpool, sign the app, workerpool and request orders (EIP-712 with PoCo's domain),
//! match them, initialize the tasks, and contribute a sealed result with
//! `contributeAndFinalize`. The contract accepting that call is what proves the signature
//! formulas of [`crate::seal`] and of the verifier.
//!
//! Transactions are sent with `eth_sendTransaction` from accounts the local node holds
//! (hardhat's); order signatures are made here with the keys given. Prices are zero, so no
//! account needs RLC.

use crate::Result;
use alloy_sol_types::{eip712_domain, SolCall, SolStruct};
use k256::ecdsa::SigningKey;
use serde_json::{json, Value};
use std::time::Duration;
use verifier::iexec::chain::address;
use verifier::iexec::receipt::Receipt;
use verifier::iexec::{hex_bytes, to_hex};

type Address = alloy_sol_types::private::Address;
type B256 = alloy_sol_types::private::B256;
type U256 = alloy_sol_types::private::U256;

alloy_sol_types::sol! {
    struct AppOrder { address app; uint256 appprice; uint256 volume; bytes32 tag; address datasetrestrict; address workerpoolrestrict; address requesterrestrict; bytes32 salt; }
    struct WorkerpoolOrder { address workerpool; uint256 workerpoolprice; uint256 volume; bytes32 tag; uint256 category; uint256 trust; address apprestrict; address datasetrestrict; address requesterrestrict; bytes32 salt; }
    struct RequestOrder { address app; uint256 appmaxprice; address dataset; uint256 datasetmaxprice; address workerpool; uint256 workerpoolmaxprice; address requester; uint256 volume; bytes32 tag; uint256 category; uint256 trust; address beneficiary; address callback; string params; bytes32 salt; }

    // The same orders with their signatures, as matchOrders takes them.
    struct AppOrderSigned { address app; uint256 appprice; uint256 volume; bytes32 tag; address datasetrestrict; address workerpoolrestrict; address requesterrestrict; bytes32 salt; bytes sign; }
    struct DatasetOrderSigned { address dataset; uint256 datasetprice; uint256 volume; bytes32 tag; address apprestrict; address workerpoolrestrict; address requesterrestrict; bytes32 salt; bytes sign; }
    struct WorkerpoolOrderSigned { address workerpool; uint256 workerpoolprice; uint256 volume; bytes32 tag; uint256 category; uint256 trust; address apprestrict; address datasetrestrict; address requesterrestrict; bytes32 salt; bytes sign; }
    struct RequestOrderSigned { address app; uint256 appmaxprice; address dataset; uint256 datasetmaxprice; address workerpool; uint256 workerpoolmaxprice; address requester; uint256 volume; bytes32 tag; uint256 category; uint256 trust; address beneficiary; address callback; string params; bytes32 salt; bytes sign; }

    function appregistry() external view returns (address);
    function workerpoolregistry() external view returns (address);
    function createApp(address _appOwner, string _appName, string _appType, bytes _appMultiaddr, bytes32 _appChecksum, bytes _appMREnclave) external returns (address);
    function createWorkerpool(address _workerpoolOwner, string _workerpoolDescription) external returns (address);
    function matchOrders(AppOrderSigned _apporder, DatasetOrderSigned _datasetorder, WorkerpoolOrderSigned _workerpoolorder, RequestOrderSigned _requestorder) external returns (bytes32);
    function initialize(bytes32 _dealid, uint256 idx) external returns (bytes32);
}

/// A local node's JSON-RPC endpoint.
pub struct Node {
    url: String,
    agent: ureq::Agent,
    /// The PoCo Diamond.
    pub poco: Address,
    /// The account transactions are sent from (not the worker's).
    pub sender: Address,
    /// The chain id.
    pub chain_id: u64,
}

fn addr(s: &str) -> Result<Address> {
    let b = hex_bytes(s).map_err(|e| e.to_string())?;
    let a: [u8; 20] = b.try_into().map_err(|_| format!("{s}: not an address"))?;
    Ok(a.into())
}

fn hex_of(v: &Value) -> Result<Vec<u8>> {
    hex_bytes(v.as_str().ok_or("not a hex string")?).map_err(|e| e.to_string())
}

impl Node {
    /// Connects to `url`, where PoCo is at `poco`; transactions come from the node's first
    /// account.
    ///
    /// # Errors
    /// When the node does not answer.
    pub fn connect(url: &str, poco: &str) -> Result<Node> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut n = Node {
            url: url.into(),
            agent,
            poco: addr(poco)?,
            sender: Address::ZERO,
            chain_id: 0,
        };
        let accounts = n.call("eth_accounts", json!([]))?;
        n.sender = addr(accounts[0].as_str().ok_or("the node holds no account")?)?;
        let id = n.call("eth_chainId", json!([]))?;
        n.chain_id = u64::from_str_radix(id.as_str().unwrap_or("").trim_start_matches("0x"), 16)
            .map_err(|e| format!("eth_chainId: {e}"))?;
        Ok(n)
    }

    fn call(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut r = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(|e| format!("{method}: {e}"))?;
        let v: Value = r
            .body_mut()
            .read_json()
            .map_err(|e| format!("{method}: {e}"))?;
        if let Some(e) = v.get("error") {
            return Err(format!("{method}: {e}"));
        }
        Ok(v["result"].clone())
    }

    /// `eth_call` of `c` at the head, decoded.
    fn view<C: SolCall>(&self, from: Address, to: Address, c: &C) -> Result<C::Return> {
        let out = self
            .call(
                "eth_call",
                json!([{"from": to_hex(from.as_slice()), "to": to_hex(to.as_slice()),
                        "data": to_hex(&c.abi_encode())}, "latest"]),
            )
            .map_err(|e| format!("{}: refused: {e}", C::SIGNATURE))?;
        C::abi_decode_returns(&hex_of(&out)?).map_err(|e| format!("{}: {e}", C::SIGNATURE))
    }

    /// Simulates `c` from `from`, then sends it (the node mines it at once); returns what the
    /// simulation returned. A revert is an error carrying the contract's reason.
    fn send<C: SolCall>(&self, from: Address, to: Address, c: &C) -> Result<C::Return> {
        let ret = self.view(from, to, c)?;
        let tx = self.call(
            "eth_sendTransaction",
            json!([{"from": to_hex(from.as_slice()), "to": to_hex(to.as_slice()),
                    "data": to_hex(&c.abi_encode()), "gas": "0x1e8480"}]),
        )?;
        let r = self.call("eth_getTransactionReceipt", json!([tx]))?;
        if r["status"] != "0x1" {
            return Err(format!("{}: transaction {tx} failed", C::SIGNATURE));
        }
        Ok(ret)
    }
}

/// A deal to make.
pub struct DealSpec<'a> {
    /// The app's multiaddr (the image reference).
    pub multiaddr: &'a str,
    /// The app's checksum, 32 bytes hex.
    pub checksum: &'a str,
    /// The deal's tag, 32 bytes hex.
    pub tag: &'a str,
    /// The app's arguments (`iexec_args`).
    pub iexec_args: &'a str,
    /// Where results go (`iexec_result_storage_provider`).
    pub storage: &'a str,
    /// Tasks in the deal.
    pub volume: u64,
    /// The workerpool owner's key (signs the workerpool order and the authorizations).
    pub workerpool_key: &'a SigningKey,
}

/// What a matched and initialized deal is.
#[derive(Debug, Clone)]
pub struct Deal {
    /// The deal id.
    pub deal_id: String,
    /// The app contract.
    pub app: String,
    /// Its tasks, initialized.
    pub tasks: Vec<String>,
}

fn salt() -> B256 {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.into()
}

fn b32(s: &str) -> Result<B256> {
    let b = hex_bytes(s).map_err(|e| e.to_string())?;
    let a: [u8; 32] = b.try_into().map_err(|_| format!("{s}: not 32 bytes"))?;
    Ok(a.into())
}

/// An EIP-712 signature, r ‖ s ‖ v.
fn sign712(key: &SigningKey, hash: B256) -> Result<Vec<u8>> {
    let (sig, rid) = key
        .sign_prehash_recoverable(hash.as_slice())
        .map_err(|e| e.to_string())?;
    let mut out = sig.to_bytes().to_vec();
    out.push(27 + rid.to_byte());
    Ok(out)
}

/// Registers the app (a new one for each checksum and multiaddr) and the workerpool, signs
/// and matches the three orders, and initializes every task.
///
/// # Errors
/// A transaction the contract refuses, with its call.
pub fn make_deal(n: &Node, d: &DealSpec<'_>) -> Result<Deal> {
    let domain = eip712_domain! {
        name: "iExecODB",
        version: "5.0.0",
        chain_id: n.chain_id,
        verifying_contract: n.poco,
    };
    // Test keys of the app owner and the requester: their signatures are what the contract
    // checks; the node's account pays for the transactions.
    let app_key = SigningKey::from_slice(&[0x41; 32]).map_err(|e| e.to_string())?;
    let requester_key = SigningKey::from_slice(&[0x42; 32]).map_err(|e| e.to_string())?;
    let app_owner = addr(&address(app_key.verifying_key()))?;
    let requester = addr(&address(requester_key.verifying_key()))?;
    let pool_owner = addr(&address(d.workerpool_key.verifying_key()))?;

    let apps = n.view(n.sender, n.poco, &appregistryCall {})?;
    let pools = n.view(n.sender, n.poco, &workerpoolregistryCall {})?;
    let create = createAppCall {
        _appOwner: app_owner,
        _appName: "iexec-llm".into(),
        _appType: "DOCKER".into(),
        _appMultiaddr: d.multiaddr.as_bytes().to_vec().into(),
        _appChecksum: b32(d.checksum)?,
        _appMREnclave: Vec::new().into(),
    };
    let app = match n.send(n.sender, apps, &create) {
        Ok(a) => a,
        // Registered before (the same app in another deal): the registry refuses it again.
        Err(_) => n.view(
            n.sender,
            apps,
            &predictAppCall {
                _appOwner: create._appOwner,
                _appName: create._appName.clone(),
                _appType: create._appType.clone(),
                _appMultiaddr: create._appMultiaddr.clone(),
                _appChecksum: create._appChecksum,
                _appMREnclave: create._appMREnclave.clone(),
            },
        )?,
    };
    let description = format!("iexec-llm test pool {}", to_hex(pool_owner.as_slice()));
    let pool_call = createWorkerpoolCall {
        _workerpoolOwner: pool_owner,
        _workerpoolDescription: description.clone(),
    };
    let pool = match n.send(n.sender, pools, &pool_call) {
        Ok(p) => p,
        Err(_) => n.view(
            n.sender,
            pools,
            &predictWorkerpoolCall {
                _workerpoolOwner: pool_owner,
                _workerpoolDescription: description,
            },
        )?,
    };
    let tag = b32(d.tag)?;
    let volume = U256::from(d.volume);
    let ao = AppOrder {
        app,
        appprice: U256::ZERO,
        volume,
        tag,
        datasetrestrict: Address::ZERO,
        workerpoolrestrict: Address::ZERO,
        requesterrestrict: Address::ZERO,
        salt: salt(),
    };
    let wo = WorkerpoolOrder {
        workerpool: pool,
        workerpoolprice: U256::ZERO,
        volume,
        tag,
        category: U256::ZERO,
        trust: U256::ZERO,
        apprestrict: Address::ZERO,
        datasetrestrict: Address::ZERO,
        requesterrestrict: Address::ZERO,
        salt: salt(),
    };
    let params =
        json!({"iexec_args": d.iexec_args, "iexec_result_storage_provider": d.storage}).to_string();
    let ro = RequestOrder {
        app,
        appmaxprice: U256::ZERO,
        dataset: Address::ZERO,
        datasetmaxprice: U256::ZERO,
        workerpool: pool,
        workerpoolmaxprice: U256::ZERO,
        requester,
        volume,
        tag,
        category: U256::ZERO,
        trust: U256::ZERO,
        beneficiary: requester,
        callback: Address::ZERO,
        params,
        salt: salt(),
    };
    let a_sign = sign712(&app_key, ao.eip712_signing_hash(&domain))?;
    let w_sign = sign712(d.workerpool_key, wo.eip712_signing_hash(&domain))?;
    let r_sign = sign712(&requester_key, ro.eip712_signing_hash(&domain))?;
    let m = matchOrdersCall {
        _apporder: AppOrderSigned {
            app: ao.app,
            appprice: ao.appprice,
            volume: ao.volume,
            tag: ao.tag,
            datasetrestrict: ao.datasetrestrict,
            workerpoolrestrict: ao.workerpoolrestrict,
            requesterrestrict: ao.requesterrestrict,
            salt: ao.salt,
            sign: a_sign.into(),
        },
        _datasetorder: DatasetOrderSigned {
            dataset: Address::ZERO,
            datasetprice: U256::ZERO,
            volume: U256::ZERO,
            tag: B256::ZERO,
            apprestrict: Address::ZERO,
            workerpoolrestrict: Address::ZERO,
            requesterrestrict: Address::ZERO,
            salt: B256::ZERO,
            sign: Vec::new().into(),
        },
        _workerpoolorder: WorkerpoolOrderSigned {
            workerpool: wo.workerpool,
            workerpoolprice: wo.workerpoolprice,
            volume: wo.volume,
            tag: wo.tag,
            category: wo.category,
            trust: wo.trust,
            apprestrict: wo.apprestrict,
            datasetrestrict: wo.datasetrestrict,
            requesterrestrict: wo.requesterrestrict,
            salt: wo.salt,
            sign: w_sign.into(),
        },
        _requestorder: RequestOrderSigned {
            app: ro.app,
            appmaxprice: ro.appmaxprice,
            dataset: ro.dataset,
            datasetmaxprice: ro.datasetmaxprice,
            workerpool: ro.workerpool,
            workerpoolmaxprice: ro.workerpoolmaxprice,
            requester: ro.requester,
            volume: ro.volume,
            tag: ro.tag,
            category: ro.category,
            trust: ro.trust,
            beneficiary: ro.beneficiary,
            callback: ro.callback,
            params: ro.params.clone(),
            salt: ro.salt,
            sign: r_sign.into(),
        },
    };
    let deal = n.send(n.sender, n.poco, &m)?;
    let mut tasks = Vec::new();
    for i in 0..d.volume {
        let t = n.send(
            n.sender,
            n.poco,
            &initializeCall {
                _dealid: deal,
                idx: U256::from(i),
            },
        )?;
        tasks.push(to_hex(t.as_slice()));
    }
    Ok(Deal {
        deal_id: to_hex(deal.as_slice()),
        app: to_hex(app.as_slice()),
        tasks,
    })
}

alloy_sol_types::sol! {
    function predictApp(address _appOwner, string _appName, string _appType, bytes _appMultiaddr, bytes32 _appChecksum, bytes _appMREnclave) external view returns (address);
    function predictWorkerpool(address _workerpoolOwner, string _workerpoolDescription) external view returns (address);
}

/// Sends `contributeAndFinalize` from the receipt's worker (an account the node holds) with
/// what [`crate::seal`] signed; returns the transaction's calldata.
///
/// # Errors
/// When the contract refuses the contribution.
pub fn contribute(n: &Node, r: &Receipt, results: &str) -> Result<String> {
    let bytes = |h: &str| hex_bytes(h).map_err(|e| e.to_string());
    let auth = r
        .workerpool_authorization
        .as_ref()
        .ok_or("the receipt has no authorization")?;
    let call = crate::onchain::contributeAndFinalizeCall {
        _taskid: b32(&r.task_id)?,
        _resultDigest: b32(r.result_digest.as_deref().unwrap_or_default())?,
        _results: results.as_bytes().to_vec().into(),
        _resultsCallback: Vec::new().into(),
        _enclaveChallenge: addr(&r.enclave_challenge)?,
        _enclaveSign: bytes(&r.enclave_signature)?.into(),
        _authorizationSign: bytes(&auth.signature)?.into(),
    };
    n.send(addr(&r.worker)?, n.poco, &call)?;
    Ok(to_hex(&call.abi_encode()))
}

alloy_sol_types::sol! {
    function contributeAndFinalize(bytes32 _taskid, bytes32 _resultDigest, bytes _results, bytes _resultsCallback, address _enclaveChallenge, bytes _enclaveSign, bytes _authorizationSign) external;
}
