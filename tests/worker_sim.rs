//! `worker-sim`: the iExec side of a task, for the demo and tests. After the app has written
//! its output directory, `seal` does what a TEE worker's post-compute and the chain do: it
//! zips the output (iexec_out.zip), signs the result with the task's enclave-challenge key,
//! has the "scheduler" authorize the worker, and writes the receipt a user would assemble
//! from the chain. Test keys only: nothing here is a real worker.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Seal an app output directory as an iExec TEE worker would (test double).
#[derive(Parser)]
#[command(name = "worker-sim")]
struct Cli {
    /// The app's output directory (IEXEC_OUT).
    #[arg(long)]
    out: PathBuf,
    /// Task id, 32 bytes hex (with --rpc, the task is made on chain instead).
    #[arg(long, required_unless_present = "rpc")]
    task_id: Option<String>,
    /// Worker wallet address, 20 bytes hex.
    #[arg(long)]
    worker: String,
    /// The enclave-challenge private key, 32 bytes hex (test key).
    #[arg(long)]
    enclave_key: String,
    /// The workerpool owner's private key, 32 bytes hex (test key).
    #[arg(long)]
    workerpool_key: String,
    /// The app's on-chain checksum: 0x + the image manifest's sha256.
    #[arg(long)]
    app_checksum: String,
    /// Where to write iexec_out.zip.
    #[arg(long)]
    zip: PathBuf,
    /// Where to write the receipt JSON.
    #[arg(long)]
    receipt: PathBuf,
    /// Encrypt the result for this beneficiary RSA public key (PEM, SPKI).
    #[arg(long)]
    encrypt_for: Option<PathBuf>,
    /// Drive the real PoCo on this local chain (JSON-RPC): register the app and a
    /// workerpool, sign and match the orders, initialize the task, seal the output for it
    /// and contribute it with contributeAndFinalize from --worker (an account the node holds).
    /// Prints the task, deal and app as JSON.
    #[arg(long, requires_all = ["poco", "multiaddr"], conflicts_with = "task_id")]
    rpc: Option<String>,
    /// The PoCo Diamond on that chain.
    #[arg(long)]
    poco: Option<String>,
    /// The app's multiaddr to register (the image reference).
    #[arg(long)]
    multiaddr: Option<String>,
    /// The deal's iexec_args.
    #[arg(long, default_value = "")]
    iexec_args: String,
    /// The deal's tag (TEE and TDX by default).
    #[arg(
        long,
        default_value = "0x0000000000000000000000000000000000000000000000000000000000000009"
    )]
    tag: String,
    /// Where the result is said to be stored: storage and location of the task's results
    /// (the file given with --zip by default).
    #[arg(long, default_value = "file")]
    storage: String,
    /// The location stated on chain.
    #[arg(long)]
    location: Option<String>,
    /// Sign the authorization with this key instead of the workerpool owner's (a forgery
    /// the contract must refuse).
    #[arg(long)]
    authorization_key: Option<String>,
    /// Match and initialize, but do not contribute (a task still ACTIVE).
    #[arg(long)]
    pending: bool,
}

fn key(hex_key: &str) -> Result<k256::ecdsa::SigningKey, String> {
    let b = hex::decode(hex_key.trim_start_matches("0x")).map_err(|e| e.to_string())?;
    k256::ecdsa::SigningKey::from_slice(&b).map_err(|e| e.to_string())
}

fn run(c: Cli) -> Result<(), String> {
    let (ek, wk) = (key(&c.enclave_key)?, key(&c.workerpool_key)?);
    let mut on_chain = None;
    let task_id = match (&c.task_id, &c.rpc, &c.poco, &c.multiaddr) {
        (Some(t), ..) => t.clone(),
        (None, Some(rpc), Some(poco), Some(multiaddr)) => {
            use e2e_tests::onchain;
            let node = onchain::Node::connect(rpc, poco)?;
            let deal = onchain::make_deal(
                &node,
                &onchain::DealSpec {
                    multiaddr,
                    checksum: &c.app_checksum,
                    tag: &c.tag,
                    iexec_args: &c.iexec_args,
                    storage: &c.storage,
                    volume: 1,
                    workerpool_key: &wk,
                },
            )?;
            let t = deal.tasks.first().cloned().ok_or("no task")?;
            on_chain = Some((node, deal));
            t
        }
        _ => return Err("give --task-id, or --rpc with --poco and --multiaddr".into()),
    };
    // The authorization is the workerpool owner's unless a forgery is asked for.
    let ak = c.authorization_key.as_deref().map(key).transpose()?;
    let receipt = e2e_tests::seal(
        &c.out,
        &e2e_tests::Task {
            task_id: &task_id,
            worker: &c.worker,
            enclave_key: &ek,
            workerpool_key: ak.as_ref().unwrap_or(&wk),
            app_checksum: &c.app_checksum,
        },
    )?;
    let mut zip = e2e_tests::zip_output(&c.out)?;
    if let Some(p) = &c.encrypt_for {
        use rsa::pkcs8::DecodePublicKey;
        let pem = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let k = rsa::RsaPublicKey::from_public_key_pem(&pem).map_err(|e| e.to_string())?;
        zip = e2e_tests::encrypt_for(&zip, &k)?;
    }
    std::fs::write(&c.zip, zip).map_err(|e| format!("{}: {e}", c.zip.display()))?;
    let json = serde_json::to_string_pretty(&receipt).map_err(|e| e.to_string())?;
    std::fs::write(&c.receipt, json + "\n").map_err(|e| format!("{}: {e}", c.receipt.display()))?;
    if let Some((node, deal)) = on_chain {
        let mut calldata = None;
        if !c.pending {
            let location = c
                .location
                .clone()
                .unwrap_or_else(|| c.zip.display().to_string());
            calldata = Some(e2e_tests::onchain::contribute(
                &node,
                &receipt,
                &verifier::iexec::chain::results_link(&c.storage, &location),
            )?);
        }
        println!(
            "{}",
            serde_json::json!({"task_id": task_id, "deal_id": deal.deal_id, "app": deal.app,
                               "calldata": calldata})
        );
    }
    eprintln!(
        "sealed: resultDigest {} signed by enclave challenge {}",
        receipt.result_digest.unwrap_or_default(),
        receipt.enclave_challenge
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker-sim: {e}");
            ExitCode::from(2)
        }
    }
}
