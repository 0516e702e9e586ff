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
    /// Task id, 32 bytes hex.
    #[arg(long)]
    task_id: String,
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
}

fn key(hex_key: &str) -> Result<k256::ecdsa::SigningKey, String> {
    let b = hex::decode(hex_key.trim_start_matches("0x")).map_err(|e| e.to_string())?;
    k256::ecdsa::SigningKey::from_slice(&b).map_err(|e| e.to_string())
}

fn run(c: Cli) -> Result<(), String> {
    let (ek, wk) = (key(&c.enclave_key)?, key(&c.workerpool_key)?);
    let receipt = e2e_tests::seal(
        &c.out,
        &e2e_tests::Task {
            task_id: &c.task_id,
            worker: &c.worker,
            enclave_key: &ek,
            workerpool_key: &wk,
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
