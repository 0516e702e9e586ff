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
    /// Verify a TDX (v4, v5) or SGX (v3) quote with Intel collateral, as Intel's QVL does,
    /// then apply a policy (default: UpToDate only, no debug TD, SEPT_VE_DISABLE set,
    /// MRSERVICETD zero).
    ///
    /// Collateral comes as dcap-qvl's JSON bundle (--collateral) or as the files Intel's PCS
    /// serves (--tcb-info, --qe-identity, --pck-crl, --root-crl, --tcb-signing-chain).
    #[command(group(clap::ArgGroup::new("source").required(true).args(["collateral", "tcb_info"])))]
    CheckQuote {
        /// The quote file (binary, or hex text).
        quote: PathBuf,
        /// dcap-qvl QuoteCollateralV3 JSON bundle.
        #[arg(long, value_name = "BUNDLE.json", conflicts_with_all = ["tcb_info", "qe_identity", "pck_crl", "root_crl", "tcb_signing_chain"])]
        collateral: Option<PathBuf>,
        /// PCS TCB info response ({"tcbInfo":…,"signature":…}).
        #[arg(long, value_name = "F", requires_all = ["qe_identity", "pck_crl", "root_crl", "tcb_signing_chain"])]
        tcb_info: Option<PathBuf>,
        /// PCS QE identity response ({"enclaveIdentity":…,"signature":…}).
        #[arg(long, value_name = "F")]
        qe_identity: Option<PathBuf>,
        /// PCK Platform/Processor CA CRL (DER, PEM or hex).
        #[arg(long, value_name = "F")]
        pck_crl: Option<PathBuf>,
        /// Intel SGX Root CA CRL (DER, PEM or hex).
        #[arg(long, value_name = "F")]
        root_crl: Option<PathBuf>,
        /// TCB signing certificate chain (PEM).
        #[arg(long, value_name = "F")]
        tcb_signing_chain: Option<PathBuf>,
        /// Trust this root certificate (DER or PEM) instead of the built-in Intel SGX Root CA
        /// pin (sha256 44a0196b…d3); the report shows which root was used.
        #[arg(long, value_name = "F")]
        root_ca: Option<PathBuf>,
        /// Verification time: Unix seconds or YYYY-MM-DDThh:mm:ssZ [default: now].
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Policy JSON (accepted_tcb_statuses, allow_debug_td, mr_td, rtmr, …; see
        /// verifier/src/policy.rs).
        #[arg(long, value_name = "F")]
        policy: Option<PathBuf>,
        /// Print one JSON object instead of the checklist.
        #[arg(long)]
        json: bool,
    },
    /// Prove a downloaded iExec result end to end: the result chain (resultDigest, resultHash,
    /// resultSeal, enclave signature, WorkerpoolAuthorization), the image measurement, and,
    /// when the result carries one, the TDX quote bound to result.json and the TD event log.
    ///
    /// RESULT is the iexec_out.zip downloaded from IPFS, its unpacked directory, or the
    /// encrypted form (iexec_out.zip.aes + aes-key.rsa; give --key). The receipt is the
    /// chain's data about the task (README, "The receipt"); the measurement is the
    /// measurement.json of the image build.
    ///
    /// The closing lines say what the passing checks prove and what rests on trust.
    #[command(
        after_help = "EXAMPLE:\n  verifier check-result iexec_out.zip --receipt receipt.json \\\n      --expected measurement.json --collateral collateral.json"
    )]
    CheckResult {
        /// The result: iexec_out.zip, its unpacked directory, or the encrypted archive.
        result: PathBuf,
        /// The task's receipt JSON (schema iexec-llm/receipt/v1).
        #[arg(long, value_name = "RECEIPT.json")]
        receipt: PathBuf,
        /// measurement.json written by the image build.
        #[arg(long, value_name = "MEASUREMENT.json")]
        expected: PathBuf,
        /// The beneficiary's RSA private key (PEM or DER, PKCS#8 or PKCS#1), for encrypted
        /// results.
        #[arg(long, value_name = "KEY.pem")]
        key: Option<PathBuf>,
        /// Collateral for the quote: dcap-qvl QuoteCollateralV3 JSON bundle.
        #[arg(long, value_name = "BUNDLE.json")]
        collateral: Option<PathBuf>,
        /// Trust this root certificate (DER or PEM) instead of Intel's SGX Root CA.
        #[arg(long, value_name = "F")]
        root_ca: Option<PathBuf>,
        /// Verification time: Unix seconds or YYYY-MM-DDThh:mm:ssZ [default: now].
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Policy JSON for the quote (mr_td, rtmr, accepted_tcb_statuses, …).
        #[arg(long, value_name = "F")]
        policy: Option<PathBuf>,
        /// Fail when the result carries no TDX quote.
        #[arg(long)]
        require_quote: bool,
        /// Print one JSON object instead of the checklist.
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

fn read(p: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

fn time_arg(at: Option<String>) -> anyhow::Result<i64> {
    Ok(match at {
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64,
        Some(t) => match t.parse::<i64>() {
            Ok(n) => n,
            Err(_) => verifier::collateral::parse_time(&t)?,
        },
    })
}

fn trust_arg(root_ca: Option<&PathBuf>) -> anyhow::Result<verifier::verify::Trust> {
    Ok(match root_ca {
        None => verifier::verify::Trust::default(),
        Some(p) => {
            let raw = read(p)?;
            let der = verifier::collateral::pem_certs(&raw, "root CA")
                .map(|mut v| v.remove(0))
                .unwrap_or(raw);
            verifier::verify::Trust {
                root_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&der)),
            }
        }
    })
}

fn policy_arg(policy: Option<&PathBuf>) -> anyhow::Result<verifier::policy::Policy> {
    Ok(match policy {
        None => Default::default(),
        Some(p) => serde_json::from_slice(&read(p)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
    })
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::CheckResult {
            result,
            receipt,
            expected,
            key,
            collateral,
            root_ca,
            at,
            policy,
            require_quote,
            json,
        } => {
            let key = match &key {
                None => None,
                Some(k) => Some(verifier::archive::rsa_key(&read(k)?)?),
            };
            let archive = verifier::archive::ResultArchive::open(&result, key.as_ref())?;
            let receipt = verifier::receipt::Receipt::from_json(&read(&receipt)?)?;
            let expected: oci_image::Measurement = serde_json::from_slice(&read(&expected)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", expected.display()))?;
            let collateral = match &collateral {
                None => None,
                Some(b) => Some(verifier::collateral::Collateral::from_bundle(&read(b)?)?),
            };
            let trust = trust_arg(root_ca.as_ref())?;
            let policy = policy_arg(policy.as_ref())?;
            let o = verifier::check_result::check(&verifier::check_result::Inputs {
                archive: &archive,
                receipt: &receipt,
                expected: &expected,
                collateral: collateral.as_ref(),
                trust: &trust,
                policy: &policy,
                now: time_arg(at)?,
                require_quote,
            });
            let passed = o.report.passed();
            if json {
                let failed: Vec<_> = o.report.failures().collect();
                println!(
                    "{}",
                    serde_json::json!({"verified": passed, "result_digest": o.result_digest,
                                       "attestation": o.attestation, "tcb_status": o.tcb_status,
                                       "checks": o.report.checks, "failed": failed,
                                       "events": o.events, "proven": o.proven,
                                       "trusted": o.trusted})
                );
            } else {
                print!("{}", o.report.human());
                for e in &o.events {
                    println!(
                        "  RTMR{} event {}{}",
                        e.rtmr,
                        e.name,
                        if e.payload.is_empty() {
                            String::new()
                        } else {
                            format!(" = {}", e.payload)
                        }
                    );
                }
                if passed {
                    println!("VERIFIED ({} checks).", o.report.checks.len());
                } else {
                    println!(
                        "NOT verified: {} of {} checks failed.",
                        o.report.failures().count(),
                        o.report.checks.len()
                    );
                }
                for p in &o.proven {
                    println!("proven:  {p}");
                }
                for t in &o.trusted {
                    println!("trusted: {t}");
                }
            }
            Ok(passed)
        }
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
        Command::CheckQuote {
            quote,
            collateral,
            tcb_info,
            qe_identity,
            pck_crl,
            root_crl,
            tcb_signing_chain,
            root_ca,
            at,
            policy,
            json,
        } => {
            let bytes = verifier::quote::decode_file_bytes(&read(&quote)?)?;
            let q = verifier::quote::parse(&bytes)?;
            let c = match (&collateral, &tcb_info, &qe_identity, &pck_crl, &root_crl, &tcb_signing_chain) {
                (Some(b), ..) => verifier::collateral::Collateral::from_bundle(&read(b)?)?,
                (None, Some(t), Some(qi), Some(pc), Some(rc), Some(ch)) => {
                    verifier::collateral::Collateral::from_files(&read(t)?, &read(qi)?, &read(pc)?, &read(rc)?, &read(ch)?)?
                }
                _ => anyhow::bail!("give --collateral, or all of --tcb-info --qe-identity --pck-crl --root-crl --tcb-signing-chain"),
            };
            let now = time_arg(at)?;
            let trust = trust_arg(root_ca.as_ref())?;
            let policy = policy_arg(policy.as_ref())?;
            let v = verifier::verify::verify(&q, &c, now, &trust);
            let mut report = v.report;
            report
                .checks
                .extend(verifier::policy::check(&policy, &q, v.tcb.as_ref()));
            let status = v.tcb.as_ref().map(|t| t.status.name());
            let advisories = v
                .tcb
                .as_ref()
                .map(|t| t.advisory_ids.clone())
                .unwrap_or_default();
            if json {
                let failed: Vec<_> = report.failures().collect();
                println!(
                    "{}",
                    serde_json::json!({"verified": report.passed(), "tcb_status": status,
                                       "advisory_ids": advisories, "time": now,
                                       "root_ca_sha256": trust.root_sha256,
                                       "checks": report.checks, "failed": failed})
                );
            } else {
                print!("{}", report.human());
                match (report.passed(), status) {
                    (true, Some(s)) => {
                        println!("verified: TCB status {s}, advisories {advisories:?}")
                    }
                    (_, s) => println!(
                        "NOT verified: {} check(s) failed (TCB status {})",
                        report.failures().count(),
                        s.unwrap_or("not determined")
                    ),
                }
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
