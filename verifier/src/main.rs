//! `verifier`: the command line. Exit status 0 verified, 1 a check failed, 2 unusable input.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use verifier::report::Report;

/// Verify what produced an iExec LLM result, check by check.
#[derive(Parser)]
#[command(
    name = "verifier",
    version,
    after_help = "EXIT STATUS: 0 verified, 1 a check failed, 2 unusable input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every field of a TDX (v4, v5) or SGX (v3) quote, binary or hex, and the checks
    /// that need no collateral: PCK chain to the pinned Intel root, QE report signature,
    /// QE report binding, quote signature.
    Decode {
        /// The quote file (binary, or hex text).
        quote: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Recompute every digest of an OCI image layout and, with --expected, compare it with
    /// the build's measurement.json.
    ///
    /// Each blob is hashed and compared with its name, each layer decompressed and compared
    /// with the config's diff_ids, each file in the layers hashed (app binary, models).
    Measure {
        /// The OCI image layout directory (holds index.json and blobs/).
        oci_dir: PathBuf,
        /// measurement.json written by the image build.
        #[arg(long, value_name = "PATH")]
        expected: Option<PathBuf>,
        /// Which image of index.json (its ref name), when there are several.
        #[arg(long, value_name = "REF")]
        reference: Option<String>,
        /// Print one JSON object instead of the checklist.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::from(0),
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Decode { quote, json } => {
            let raw =
                std::fs::read(&quote).map_err(|e| anyhow::anyhow!("{}: {e}", quote.display()))?;
            let bytes = verifier::quote::decode_file_bytes(&raw)?;
            let q = verifier::quote::parse(&bytes)?;
            let fields = verifier::decode::fields(&q);
            let report = Report {
                checks: verifier::dcap::verify_signatures(&q),
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"fields": fields, "signatures_verified": report.passed(),
                                       "checks": report.checks})
                );
            } else {
                for (k, v) in &fields {
                    println!("{k:<24} {v}");
                }
                print!("{}", report.human());
            }
            Ok(report.passed())
        }
        Command::Measure {
            oci_dir,
            expected,
            reference,
            json,
        } => {
            let expected: Option<oci_image::Measurement> = match &expected {
                None => None,
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                    Some(
                        serde_json::from_str(&text)
                            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
                    )
                }
            };
            let reference = reference.or_else(|| expected.as_ref().map(|m| m.reference.clone()));
            let (measured, mut report) =
                verifier::measure::measure(&oci_dir, reference.as_deref())?;
            if let Some(m) = &expected {
                verifier::measure::compare(&measured, m, &mut report);
            }
            print(&report, json, &measured.manifest_digest);
            Ok(report.passed())
        }
    }
}

fn print(report: &Report, json: bool, manifest_digest: &str) {
    if json {
        let failed: Vec<_> = report.failures().collect();
        println!(
            "{}",
            serde_json::json!({
                "verified": report.passed(),
                "manifest_digest": manifest_digest,
                "checks": report.checks,
                "failed": failed,
            })
        );
    } else {
        print!("{}", report.human());
        if report.passed() {
            println!("verified: the layout is the measured image {manifest_digest}");
        } else {
            println!(
                "NOT verified: {} check(s) failed",
                report.failures().count()
            );
        }
    }
}
