//! The command line: subcommands and their arguments (clap), each run into a [`Verdict`]
//! that `main` prints one way or the other. Exit status 0 verified, 1 a check failed, 2
//! unusable input.

use crate::check_result;
use crate::error::Error;
use crate::iexec::archive::{rsa_key, ResultArchive};
use crate::iexec::receipt::Receipt;
use crate::report::{printable, Report};
use crate::tdx::collateral::{parse_time, pem_certs, Collateral};
use crate::tdx::judge::{judge, CollateralSource};
use crate::tdx::pcs;
use crate::tdx::policy::Policy;
use crate::tdx::quote;
use crate::tdx::verify::Trust;
use clap::{Args, Parser, Subcommand};
use oci_image::Measurement;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Verify what produced an iExec LLM result, check by check.
#[derive(Parser)]
#[command(
    name = "verifier",
    version,
    after_help = "EXIT STATUS: 0 verified, 1 a check failed, 2 unusable input."
)]
pub struct Cli {
    /// What to verify.
    #[command(subcommand)]
    pub command: Command,
    /// Print one JSON object instead of the checklist.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Print every field of a TDX (v4, v5) or SGX (v3) quote, binary or hex, and the checks
    /// that need no collateral: PCK chain to the pinned Intel root, QE report signature,
    /// QE report binding, quote signature.
    Decode {
        /// The quote file (binary, or hex text).
        quote: PathBuf,
    },
    /// Verify a TDX (v4, v5) or SGX (v3) quote with Intel collateral, as Intel's QVL does,
    /// then apply a policy (default: UpToDate only, no debug TD, SEPT_VE_DISABLE set,
    /// MRSERVICETD zero).
    ///
    /// Collateral comes as dcap-qvl's JSON bundle (--collateral) or as the files Intel's PCS
    /// serves (--tcb-info, --qe-identity, --pck-crl, --root-crl, --tcb-signing-chain).
    CheckQuote(CheckQuoteArgs),
    /// Prove a downloaded iExec result end to end: the result chain (resultDigest, resultHash,
    /// resultSeal, enclave signature, WorkerpoolAuthorization), the image measurement, and,
    /// when the result carries one, the TDX quote bound to result.json and the TD event log.
    ///
    /// RESULT is the iexec_out.zip downloaded from IPFS, its unpacked directory, or the
    /// encrypted form (iexec_out.zip.aes + aes-key.rsa; give --key). The chain's data about
    /// the task is read from the chain itself (--task with --chain or --rpc), from the iExec
    /// SDK's `show --raw` outputs (--sdk-task), or from a receipt file (README, "The
    /// receipt"); the measurement is the measurement.json of the image build.
    ///
    /// The closing lines say what the passing checks prove and what rests on trust.
    #[command(
        after_help = "EXAMPLES:\n  verifier check-result iexec_out.zip --expected measurement.json \\\n      --chain arbitrum-sepolia --task 0x… --save-receipt receipt.json\n  verifier check-result iexec_out.zip --receipt receipt.json \\\n      --expected measurement.json --collateral collateral.json"
    )]
    CheckResult(Box<CheckResultArgs>),
    /// Re-derive a result bit for bit: check the image layout against its measurement, take
    /// the app binary and the model from it (by their measured sha256), check that the prompt
    /// given is the one result.json states, run the binary with the parameters result.json
    /// states, and compare every deterministic claim. The prompt is never printed.
    #[command(
        after_help = "EXAMPLE:\n  verifier replay iexec_out.zip --image result/oci --expected result/measurement.json \\\n      --prompt-file my-prompt.txt"
    )]
    Replay(ReplayArgs),
    /// Write one evidence file holding everything check-result needs (the result archive,
    /// receipt, measurement, the result's quote and event log, collateral), deterministic,
    /// with a manifest of every member's sha256; `check-result --bundle` verifies it with no
    /// network and no other file.
    #[command(
        after_help = "EXAMPLE:\n  verifier bundle iexec_out.zip --receipt receipt.json --expected measurement.json \\\n      --collateral-cache ~/.cache/iexec-llm/collateral --out evidence.zip\n  verifier check-result evidence.zip --bundle"
    )]
    Bundle(BundleArgs),
    /// Intel collateral for quotes: fetch it once from Intel's PCS or a PCCS, verified, into a
    /// cache that check-quote and check-result then read offline (--collateral-cache).
    #[command(subcommand)]
    Collateral(CollateralCommand),
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
    },
}

/// `verifier bundle`.
#[derive(Args)]
pub struct BundleArgs {
    /// The result: iexec_out.zip, its unpacked directory, or the encrypted archive.
    pub result: PathBuf,
    /// The task's receipt JSON.
    #[arg(long, value_name = "RECEIPT.json")]
    pub receipt: PathBuf,
    /// measurement.json of the image build.
    #[arg(long, value_name = "MEASUREMENT.json")]
    pub expected: PathBuf,
    /// Collateral: dcap-qvl QuoteCollateralV3 JSON bundle.
    #[arg(long, value_name = "BUNDLE.json", conflicts_with = "collateral_cache")]
    pub collateral: Option<PathBuf>,
    /// Collateral: a cache written by `verifier collateral fetch` (its sets for the quote).
    #[arg(long, value_name = "DIR")]
    pub collateral_cache: Option<PathBuf>,
    /// The beneficiary's key, to copy the quote and event log out of an encrypted result.
    #[arg(long, value_name = "KEY.pem")]
    pub key: Option<PathBuf>,
    /// Where to write the bundle.
    #[arg(long, value_name = "evidence.zip")]
    pub out: PathBuf,
}

/// `verifier collateral …`.
#[derive(Subcommand)]
pub enum CollateralCommand {
    /// Fetch what a quote needs (TDX TCB info for its FMSPC, TD QE identity, the PCK CRL of
    /// its CA, the root CA CRL, and the issuer chains from the response headers), verify it
    /// against the quote at --at, and keep the bytes exactly as served in the cache. Nothing
    /// is written unless every part verifies.
    #[command(
        after_help = "EXAMPLE:\n  verifier collateral fetch --quote quote.bin --pcs --cache ~/.cache/iexec-llm/collateral\n  verifier check-quote quote.bin --collateral-cache ~/.cache/iexec-llm/collateral"
    )]
    Fetch(FetchArgs),
}

/// `verifier collateral fetch`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("server").required(true).args(["pcs", "pccs"])))]
pub struct FetchArgs {
    /// The quote (binary, or hex text).
    #[arg(long, value_name = "Q")]
    pub quote: PathBuf,
    /// Intel's PCS (api.trustedservices.intel.com; the root CA CRL from
    /// certificates.trustedservices.intel.com).
    #[arg(long)]
    pub pcs: bool,
    /// A PCCS, e.g. https://pccs.example:8081.
    #[arg(long, value_name = "URL")]
    pub pccs: Option<String>,
    /// The cache directory.
    #[arg(long, value_name = "DIR")]
    pub cache: PathBuf,
    /// Seconds the whole fetch may take.
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub timeout: u64,
    /// Trust this root certificate instead of the Intel SGX Root CA pin.
    #[arg(long, value_name = "F")]
    pub root_ca: Option<PathBuf>,
    /// Verify the collateral as of this time [default: now].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// `verifier check-quote`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["collateral", "tcb_info", "collateral_cache"])))]
pub struct CheckQuoteArgs {
    /// The quote file (binary, or hex text).
    pub quote: PathBuf,
    /// dcap-qvl QuoteCollateralV3 JSON bundle.
    #[arg(long, value_name = "BUNDLE.json", conflicts_with_all = ["tcb_info", "qe_identity", "pck_crl", "root_crl", "tcb_signing_chain"])]
    pub collateral: Option<PathBuf>,
    /// A cache written by `verifier collateral fetch`: the newest set issued by --at is
    /// used, and a newer one, when cached, is judged too.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["collateral", "tcb_info"])]
    pub collateral_cache: Option<PathBuf>,
    /// PCS TCB info response ({"tcbInfo":…,"signature":…}).
    #[arg(long, value_name = "F", requires_all = ["qe_identity", "pck_crl", "root_crl", "tcb_signing_chain"])]
    pub tcb_info: Option<PathBuf>,
    /// PCS QE identity response ({"enclaveIdentity":…,"signature":…}).
    #[arg(long, value_name = "F")]
    pub qe_identity: Option<PathBuf>,
    /// PCK Platform/Processor CA CRL (DER, PEM or hex).
    #[arg(long, value_name = "F")]
    pub pck_crl: Option<PathBuf>,
    /// Intel SGX Root CA CRL (DER, PEM or hex).
    #[arg(long, value_name = "F")]
    pub root_crl: Option<PathBuf>,
    /// TCB signing certificate chain (PEM).
    #[arg(long, value_name = "F")]
    pub tcb_signing_chain: Option<PathBuf>,
    /// Root, time and policy.
    #[command(flatten)]
    pub quote_checks: QuoteChecks,
}

/// How a quote is judged: the trusted root, the time, the policy.
#[derive(Args)]
pub struct QuoteChecks {
    /// Trust this root certificate (DER or PEM) instead of the built-in Intel SGX Root CA
    /// pin (sha256 44a0196b…d3); the report shows which root was used.
    #[arg(long, value_name = "F")]
    pub root_ca: Option<PathBuf>,
    /// Verification time: Unix seconds or YYYY-MM-DDThh:mm:ssZ [default: now].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Policy JSON (accepted_tcb_statuses, allow_debug_td, mr_td, rtmr, …; see
    /// verifier/src/tdx/policy.rs).
    #[arg(long, value_name = "F")]
    pub policy: Option<PathBuf>,
}

/// `verifier check-result`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("replay_source").args(["replay_prompt_file", "replay_protected_data"])))]
pub struct CheckResultArgs {
    /// The result: iexec_out.zip, its unpacked directory, or the encrypted archive.
    pub result: PathBuf,
    /// The task's receipt JSON (schema iexec-llm/receipt/v1), as --save-receipt writes it
    /// or written by hand.
    #[arg(long, value_name = "RECEIPT.json", required_unless_present_any = ["bundle", "task", "sdk_task"], conflicts_with_all = ["task", "sdk_task"])]
    pub receipt: Option<PathBuf>,
    /// Read the receipt from the chain itself: the task id, 0x + 64 hex (needs --chain or
    /// --rpc with --poco and --chain-id).
    #[arg(long, value_name = "0x…", conflicts_with = "sdk_task")]
    pub task: Option<String>,
    /// A chain with TDX workers: arbitrum-sepolia (421614) or arbitrum (42161); its PoCo
    /// address is @iexec/poco 6.1.0's, its endpoint a public one unless --rpc is given.
    #[arg(long, value_name = "NAME", requires = "task", value_parser = ["arbitrum-sepolia", "arbitrum"])]
    pub chain: Option<String>,
    /// Ethereum JSON-RPC endpoint (HTTP or HTTPS).
    #[arg(long, value_name = "URL", requires = "task")]
    pub rpc: Option<String>,
    /// The PoCo contract (the Diamond) on a chain that is not a preset.
    #[arg(long, value_name = "0x…", requires = "rpc", conflicts_with = "chain")]
    pub poco: Option<String>,
    /// The chain id the endpoint must answer, for a chain that is not a preset.
    #[arg(long, value_name = "N", requires = "rpc", conflicts_with = "chain")]
    pub chain_id: Option<u64>,
    /// Seconds for the whole read from the chain (1 to 3600).
    #[arg(long, value_name = "S", default_value_t = 60, requires = "task",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub rpc_timeout: u64,
    /// Write what was read from the chain as a receipt, to repeat the check offline with
    /// --receipt.
    #[arg(long, value_name = "F", requires = "task")]
    pub save_receipt: Option<PathBuf>,
    /// The receipt from the iExec SDK instead: `iexec task show <task> --raw` saved in F
    /// (with --sdk-deal, --sdk-app and --calldata).
    #[arg(long, value_name = "F", requires_all = ["sdk_deal", "sdk_app", "calldata"])]
    pub sdk_task: Option<PathBuf>,
    /// `iexec deal show <deal> --raw`, saved in F.
    #[arg(long, value_name = "F", requires = "sdk_task")]
    pub sdk_deal: Option<PathBuf>,
    /// `iexec app show <app> --raw`, saved in F.
    #[arg(long, value_name = "F", requires = "sdk_task")]
    pub sdk_app: Option<PathBuf>,
    /// The input data of the task's contributeAndFinalize transaction (a block explorer's
    /// "Input Data", hex), in F: the two signatures the chain does not store.
    #[arg(long, value_name = "F", requires = "sdk_task")]
    pub calldata: Option<PathBuf>,
    /// measurement.json written by the image build.
    #[arg(
        long,
        value_name = "MEASUREMENT.json",
        required_unless_present = "bundle"
    )]
    pub expected: Option<PathBuf>,
    /// The beneficiary's RSA private key (PEM or DER, PKCS#8 or PKCS#1), for encrypted
    /// results.
    #[arg(long, value_name = "KEY.pem")]
    pub key: Option<PathBuf>,
    /// Read the result, receipt, measurement and collateral from one evidence bundle
    /// (`verifier bundle`); RESULT is then the bundle. Root, policy and time stay yours.
    /// With --expected, the measurement given is used and must be the bundle's.
    #[arg(long, conflicts_with_all = ["receipt", "task", "sdk_task", "collateral", "collateral_cache", "replay_source"])]
    pub bundle: bool,
    /// Collateral for the quote: dcap-qvl QuoteCollateralV3 JSON bundle.
    #[arg(long, value_name = "BUNDLE.json", conflicts_with = "collateral_cache")]
    pub collateral: Option<PathBuf>,
    /// Collateral for the quote: a cache written by `verifier collateral fetch`.
    #[arg(long, value_name = "DIR")]
    pub collateral_cache: Option<PathBuf>,
    /// Root, time and policy for the quote.
    #[command(flatten)]
    pub quote_checks: QuoteChecks,
    /// Fail when the result carries no TDX quote.
    #[arg(long)]
    pub require_quote: bool,
    /// Also replay the result (as `verifier replay`) with the prompt in this file; needs
    /// --image.
    #[arg(long, value_name = "F", requires = "image")]
    pub replay_prompt_file: Option<PathBuf>,
    /// Also replay the result (as `verifier replay`) with the DataProtector zip the task read;
    /// needs --image.
    #[arg(long, value_name = "ZIP", requires = "image")]
    pub replay_protected_data: Option<PathBuf>,
    /// The system prompt, for a replay of a result that has one (not from protected data).
    #[arg(
        long,
        value_name = "F",
        requires = "replay_prompt_file",
        conflicts_with = "replay_protected_data"
    )]
    pub replay_system_file: Option<PathBuf>,
    /// The image layout the task ran, for --replay-prompt-file or --replay-protected-data.
    #[arg(long, value_name = "LAYOUT", requires = "replay_source")]
    pub image: Option<PathBuf>,
}

/// `verifier replay`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("prompt_source").required(true).args(["prompt_file", "prompt_env", "protected_data"])))]
pub struct ReplayArgs {
    /// The result: iexec_out.zip, its unpacked directory, or the encrypted archive.
    pub result: PathBuf,
    /// The image layout the task ran (an OCI layout directory).
    #[arg(long, value_name = "LAYOUT")]
    pub image: PathBuf,
    /// measurement.json of the image build.
    #[arg(long, value_name = "MEASUREMENT.json")]
    pub expected: PathBuf,
    /// The prompt, in a file (for a prompt given as arguments, a requester secret, a plain
    /// dataset or an input file).
    #[arg(long, value_name = "F")]
    pub prompt_file: Option<PathBuf>,
    /// The prompt, in this environment variable.
    #[arg(long, value_name = "VAR")]
    pub prompt_env: Option<String>,
    /// The protected data, the DataProtector zip the task read.
    #[arg(long, value_name = "ZIP")]
    pub protected_data: Option<PathBuf>,
    /// The system prompt, in a file, when the result has one.
    #[arg(long, value_name = "F")]
    pub system_file: Option<PathBuf>,
    /// The beneficiary's RSA private key, for an encrypted result.
    #[arg(long, value_name = "KEY.pem")]
    pub key: Option<PathBuf>,
    /// How to run the binary: under runc as a worker does (root, runc and umoci needed),
    /// directly, or auto (runc when possible).
    #[arg(long, value_name = "HOW", default_value = "auto", value_parser = ["auto", "runc", "direct"])]
    pub run: String,
}

/// The outcome of a subcommand, rendered both ways: `main` prints one of them.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Whether every check passed (exit status 0, else 1).
    pub passed: bool,
    /// The checklist and closing lines, for people. Every string that came from the input is
    /// escaped ([`crate::report::printable`]) so that it cannot move the cursor or recolour
    /// the screen.
    pub text: String,
    /// The same, as one JSON object (`--json`).
    pub json: Value,
}

/// Runs a parsed command line.
///
/// # Errors
/// [`Error`] for input that cannot be used at all (exit status 2).
pub fn run(cli: Cli) -> Result<Verdict, Error> {
    match cli.command {
        Command::Decode { quote } => decode(&quote),
        Command::CheckQuote(a) => check_quote(a),
        Command::CheckResult(a) => check_result(*a),
        Command::Replay(a) => replay(a),
        Command::Collateral(CollateralCommand::Fetch(a)) => fetch(a),
        Command::Bundle(a) => bundle(a),
        Command::Measure {
            oci_dir,
            expected,
            reference,
        } => measure(&oci_dir, expected.as_deref(), reference),
    }
}

/// Most bytes any single input file (quote, collateral, receipt, measurement, key, policy)
/// may have: far above any real one, far below what would exhaust memory.
const MAX_INPUT_BYTES: u64 = 64 << 20;

fn read(p: &Path) -> Result<Vec<u8>, Error> {
    crate::iexec::archive::read_regular(p, MAX_INPUT_BYTES)
}

fn json_file<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T, Error> {
    serde_json::from_slice(&read(p)?).map_err(|e| Error::malformed(p.display().to_string(), e))
}

fn time_arg(at: Option<&str>) -> Result<i64, Error> {
    Ok(match at {
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| Error::malformed("system clock", e))?
            .as_secs() as i64,
        Some(t) => match t.parse::<i64>() {
            Ok(n) => n,
            Err(_) => parse_time(t)?,
        },
    })
}

fn trust_arg(root_ca: Option<&Path>) -> Result<Trust, Error> {
    Ok(match root_ca {
        None => Trust::default(),
        Some(p) => {
            let raw = read(p)?;
            let der = pem_certs(&raw, "root CA")
                .map(|mut v| v.remove(0))
                .unwrap_or(raw);
            Trust {
                root_sha256: hex::encode(Sha256::digest(&der)),
            }
        }
    })
}

fn policy_arg(policy: Option<&Path>) -> Result<Policy, Error> {
    policy
        .map(json_file)
        .transpose()
        .map(Option::unwrap_or_default)
}

impl QuoteChecks {
    /// The trusted root, the time and the policy, read.
    fn read(&self) -> Result<(Trust, i64, Policy), Error> {
        Ok((
            trust_arg(self.root_ca.as_deref())?,
            time_arg(self.at.as_deref())?,
            policy_arg(self.policy.as_deref())?,
        ))
    }
}

fn decode(quote: &Path) -> Result<Verdict, Error> {
    let bytes = quote::decode_file_bytes(&read(quote)?)?;
    let q = quote::parse(&bytes)?;
    let fields = crate::tdx::decode::fields(&q);
    let report = Report {
        checks: crate::tdx::dcap::verify_signatures(&q),
    };
    let mut text = String::new();
    for (k, v) in &fields {
        text.push_str(&format!("{k:<24} {}\n", printable(v)));
    }
    text.push_str(&report.human());
    Ok(Verdict {
        passed: report.passed(),
        json: json!({"fields": fields, "signatures_verified": report.passed(),
                     "checks": report.checks}),
        text,
    })
}

fn collateral_arg(a: &CheckQuoteArgs) -> Result<Collateral, Error> {
    match (
        &a.collateral,
        &a.tcb_info,
        &a.qe_identity,
        &a.pck_crl,
        &a.root_crl,
        &a.tcb_signing_chain,
    ) {
        (Some(b), ..) => Collateral::from_bundle(&read(b)?),
        (None, Some(t), Some(qi), Some(pc), Some(rc), Some(ch)) => Collateral::from_files(
            &read(t)?,
            &read(qi)?,
            &read(pc)?,
            &read(rc)?,
            &read(ch)?,
        ),
        _ => Err(Error::malformed(
            "collateral",
            "give --collateral, or all of --tcb-info --qe-identity --pck-crl --root-crl --tcb-signing-chain",
        )),
    }
}

fn bundle(a: BundleArgs) -> Result<Verdict, Error> {
    use crate::bundle::{CollateralIn, Contents};
    let key = a.key.as_deref().map(read).transpose()?;
    let key = key.as_deref().map(rsa_key).transpose()?;
    let result_zip = if a.result.is_dir() {
        let (files, dirs) = crate::iexec::archive::read_tree(&a.result)?;
        crate::bundle::deterministic_zip(&files, &dirs, None)?
    } else {
        crate::iexec::archive::read_regular(&a.result, crate::iexec::archive::MAX_TOTAL_BYTES)?
    };
    let (files, dirs) = crate::iexec::archive::read_zip(&result_zip)?;
    let opened = ResultArchive::from_files(files, dirs, key.as_ref()).ok();
    let collateral = match (&a.collateral, &a.collateral_cache) {
        (Some(b), _) => CollateralIn::Json(read(b)?),
        (None, Some(d)) => CollateralIn::Cache(d.clone()),
        (None, None) => CollateralIn::None,
    };
    // Only what parses as what it claims to be goes in.
    let receipt = read(&a.receipt)?;
    Receipt::from_json(&receipt)?;
    let measurement = read(&a.expected)?;
    serde_json::from_slice::<Measurement>(&measurement)
        .map_err(|e| Error::malformed(a.expected.display().to_string(), e))?;
    let bytes = crate::bundle::write(&Contents {
        result_zip,
        opened: opened.as_ref(),
        receipt,
        measurement,
        collateral,
    })?;
    std::fs::write(&a.out, &bytes).map_err(|e| Error::io(&a.out, e))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    Ok(Verdict {
        passed: true,
        text: format!(
            "wrote {} ({} bytes, sha256 {sha}){}\n",
            printable(&a.out.display().to_string()),
            bytes.len(),
            if opened.is_none() {
                "; the result is encrypted and no --key was given: its quote is inside it only"
            } else {
                ""
            }
        ),
        json: json!({"out": a.out, "size": bytes.len(), "sha256": sha}),
    })
}

fn fetch(a: FetchArgs) -> Result<Verdict, Error> {
    let bytes = quote::decode_file_bytes(&read(&a.quote)?)?;
    let q = quote::parse(&bytes)?;
    let source = match &a.pccs {
        Some(u) => pcs::Source::pccs(u)?,
        None => pcs::Source::pcs(),
    };
    let trust = trust_arg(a.root_ca.as_deref())?;
    let at = time_arg(a.at.as_deref())?;
    let f = pcs::fetch(
        &q,
        &source,
        &a.cache,
        at,
        &trust,
        std::time::Duration::from_secs(a.timeout.max(1)),
    )?;
    let text = format!(
        "{} collateral for FMSPC {} ({} CA), TCB evaluation data number {}, verified as of {at}: {}\n",
        if f.already_cached { "already cached:" } else { "fetched and cached:" },
        f.needs.fmspc,
        f.needs.ca,
        f.tcb_evaluation_data_number,
        printable(&f.dir.display().to_string())
    );
    Ok(Verdict {
        passed: true,
        json: json!({"cached": f.dir, "already_cached": f.already_cached,
                     "fmspc": f.needs.fmspc, "ca": f.needs.ca,
                     "tcb_evaluation_data_number": f.tcb_evaluation_data_number,
                     "verified_at": at}),
        text,
    })
}

fn check_quote(a: CheckQuoteArgs) -> Result<Verdict, Error> {
    let bytes = quote::decode_file_bytes(&read(&a.quote)?)?;
    let q = quote::parse(&bytes)?;
    let given = match &a.collateral_cache {
        Some(_) => None,
        None => Some(collateral_arg(&a)?),
    };
    let src = match (&given, &a.collateral_cache) {
        (Some(c), _) => CollateralSource::Given(c),
        (None, Some(d)) => CollateralSource::Cache(d),
        (None, None) => return Err(Error::malformed("collateral", "none given")),
    };
    let (trust, now, policy) = a.quote_checks.read()?;
    let v = judge(&q, src, now, &trust, &policy)?;
    let report = v.report;
    let status = v.tcb.as_ref().map(|t| t.status.name());
    let advisories = v
        .tcb
        .as_ref()
        .map(|t| t.advisory_ids.clone())
        .unwrap_or_default();
    let passed = report.passed();
    let mut text = report.human();
    for l in &v.timeline {
        text.push_str(&format!("time: {l}\n"));
    }
    match (passed, status) {
        (true, Some(s)) => text.push_str(&format!(
            "verified: TCB status {s}, advisories {}\n",
            printable(&format!("{advisories:?}"))
        )),
        (_, s) => text.push_str(&format!(
            "NOT verified: {} check(s) failed (TCB status {})\n",
            report.failures().count(),
            s.unwrap_or("not determined")
        )),
    }
    let failed: Vec<_> = report.failures().collect();
    Ok(Verdict {
        passed,
        json: json!({"verified": passed, "tcb_status": status,
                     "advisory_ids": advisories, "time": now, "timeline": v.json,
                     "root_ca_sha256": trust.root_sha256,
                     "checks": report.checks, "failed": failed}),
        text,
    })
}

enum ReceiptIn {
    /// The receipt, and the endpoint it was read from (empty for a file).
    Read(Box<Receipt>, String),
    /// The task is not finalized: the verdict says so.
    Pending(Verdict),
}

/// The receipt: read from the chain (`--task`), assembled from the SDK's outputs
/// (`--sdk-task`), or a file (`--receipt`).
fn receipt_in(a: &CheckResultArgs) -> Result<ReceiptIn, Error> {
    use crate::iexec::rpc;
    if let Some(task) = &a.task {
        let preset = a.chain.as_deref().and_then(crate::iexec::poco::preset);
        let endpoint = match (preset, &a.rpc, &a.poco, a.chain_id) {
            (Some(p), url, None, None) => rpc::Endpoint {
                url: url.clone().unwrap_or_else(|| p.rpc.into()),
                chain_id: p.chain_id,
                poco: p.poco.into(),
                timeout: std::time::Duration::from_secs(a.rpc_timeout),
            },
            (None, Some(url), Some(poco), Some(id)) => rpc::Endpoint {
                url: url.clone(),
                chain_id: id,
                poco: poco.to_ascii_lowercase(),
                timeout: std::time::Duration::from_secs(a.rpc_timeout),
            },
            _ => {
                return Err(Error::malformed(
                    "--task",
                    "give --chain NAME (and optionally --rpc URL), or --rpc URL with --poco 0x… and --chain-id N",
                ))
            }
        };
        let addr = crate::iexec::hex_bytes(&endpoint.poco)?;
        if addr.len() != 20 || !endpoint.poco.starts_with("0x") {
            return Err(Error::malformed("--poco", "not 0x + 40 hex digits"));
        }
        return match rpc::read_task(&endpoint, task)? {
            rpc::Read::Completed(r) => {
                if let Some(p) = &a.save_receipt {
                    let json = serde_json::to_string_pretty(&r)
                        .map_err(|e| Error::malformed("receipt", e))?;
                    std::fs::write(p, json + "\n").map_err(|e| Error::io(p, e))?;
                }
                Ok(ReceiptIn::Read(r, rpc::shown(&endpoint.url)))
            }
            rpc::Read::Pending { status, block } => {
                let report = Report {
                    checks: vec![crate::report::Check::fail(
                        "task status on chain is COMPLETED",
                        "COMPLETED",
                        status.clone(),
                    )],
                };
                let mut text = report.human();
                text.push_str(&if status == "FAILED" {
                    format!(
                        "NOT verified: task {} FAILED on chain {} (block {block}): it has no result.\n",
                        printable(task),
                        endpoint.chain_id
                    )
                } else {
                    format!(
                        "NOT verified: pending: task {} is {status} on chain {} at block {block} (not finalized); check again once it is COMPLETED.\n",
                        printable(task),
                        endpoint.chain_id
                    )
                });
                Ok(ReceiptIn::Pending(Verdict {
                    passed: false,
                    json: json!({"verified": false, "pending": status != "FAILED", "status": status,
                                 "block": block, "checks": report.checks}),
                    text,
                }))
            }
        };
    }
    if let Some(t) = &a.sdk_task {
        let (Some(d), Some(app), Some(c)) = (&a.sdk_deal, &a.sdk_app, &a.calldata) else {
            return Err(Error::malformed(
                "--sdk-task",
                "needs --sdk-deal, --sdk-app and --calldata",
            ));
        };
        let r = crate::iexec::sdk::receipt(&read(t)?, &read(d)?, &read(app)?, &read(c)?)?;
        return Ok(ReceiptIn::Read(Box::new(r), String::new()));
    }
    let r = Receipt::from_json(&read(a.receipt.as_deref().unwrap_or(Path::new("")))?)?;
    Ok(ReceiptIn::Read(Box::new(r), String::new()))
}

fn check_result(a: CheckResultArgs) -> Result<Verdict, Error> {
    let key = a.key.as_deref().map(read).transpose()?;
    let key = key.as_deref().map(rsa_key).transpose()?;
    let opened_bundle = if a.bundle {
        Some(crate::bundle::open(&read(&a.result)?)?)
    } else {
        None
    };
    if let Some(b) = opened_bundle
        .as_ref()
        .filter(|b| b.checks.iter().any(|c| !c.pass))
    {
        // Members that are not those the manifest lists are not read at all.
        let report = Report {
            checks: b.checks.clone(),
        };
        let failed: Vec<_> = report.failures().collect();
        let mut text = report.human();
        text.push_str(&format!(
            "NOT verified: {} of {} bundle checks failed; nothing else is read from a bundle whose members are not its manifest's.\n",
            failed.len(),
            report.checks.len()
        ));
        return Ok(Verdict {
            passed: false,
            json: json!({"verified": false, "checks": report.checks, "failed": failed}),
            text,
        });
    }
    // Removed however this function returns.
    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let scratch_dir = match &opened_bundle {
        Some(_) => Some(Scratch(crate::replay::fresh_private_dir(
            "verifier-bundle",
        )?)),
        None => None,
    };
    let scratch = scratch_dir
        .as_ref()
        .map(|s| s.0.join("collateral"))
        .unwrap_or_default();
    let mut bundle_measurement: Option<(Measurement, bool)> = None;
    let mut read_from: Option<String> = None;
    let (archive, receipt, expected, mut collateral_in) = match &opened_bundle {
        Some(b) => {
            let (files, dirs) = crate::iexec::archive::read_zip(b.member("result.zip")?)?;
            let theirs = serde_json::from_slice::<Measurement>(b.member("measurement.json")?)
                .map_err(|e| Error::malformed("bundle measurement.json", e))?;
            let m = match &a.expected {
                Some(p) => json_file::<Measurement>(p)?,
                None => theirs.clone(),
            };
            bundle_measurement = Some((theirs, a.expected.is_some()));
            (
                ResultArchive::from_files(files, dirs, key.as_ref())?,
                Receipt::from_json(b.member("receipt.json")?)?,
                m,
                b.collateral(&scratch)?,
            )
        }
        None => (
            ResultArchive::open(&a.result, key.as_ref())?,
            match receipt_in(&a)? {
                ReceiptIn::Read(r, url) => {
                    read_from = Some(url);
                    *r
                }
                ReceiptIn::Pending(v) => return Ok(v),
            },
            json_file::<Measurement>(a.expected.as_deref().unwrap_or(Path::new("")))?,
            crate::bundle::CollateralIn::None,
        ),
    };
    if let Some(b) = &a.collateral {
        collateral_in = crate::bundle::CollateralIn::Json(read(b)?);
    }
    if let Some(d) = &a.collateral_cache {
        collateral_in = crate::bundle::CollateralIn::Cache(d.clone());
    }
    let collateral = match &collateral_in {
        crate::bundle::CollateralIn::Json(b) => Some(Collateral::from_bundle(b)?),
        _ => None,
    };
    let source = match (&collateral, &collateral_in) {
        (Some(c), _) => Some(CollateralSource::Given(c)),
        (None, crate::bundle::CollateralIn::Cache(d)) => Some(CollateralSource::Cache(d)),
        _ => None,
    };
    let (trust, now, policy) = a.quote_checks.read()?;
    let mut o = check_result::check(&check_result::Inputs {
        archive: &archive,
        receipt: &receipt,
        expected: &expected,
        collateral: source,
        trust: &trust,
        policy: &policy,
        now,
        require_quote: a.require_quote,
        read_from: read_from.as_deref().filter(|u| !u.is_empty()),
    });
    if let Some(b) = &opened_bundle {
        let mut checks = b.checks.clone();
        checks.extend(b.attestation_checks(&archive));
        match &bundle_measurement {
            Some((theirs, true)) => checks.push(crate::report::Check::equal(
                "bundle: measurement's manifest digest = --expected's",
                &expected.manifest_digest,
                &theirs.manifest_digest,
            )),
            _ => o.trusted.push(
                "the image measurement is the bundle's own: rebuild the image and give its measurement.json with --expected to prove the build".into(),
            ),
        }
        checks.append(&mut o.report.checks);
        o.report.checks = checks;
    }
    let replay_prompt = match (&a.replay_prompt_file, &a.replay_protected_data) {
        (Some(f), _) => Some(crate::replay::PromptInput::Text(read(f)?)),
        (_, Some(z)) => Some(crate::replay::PromptInput::ProtectedData(read(z)?)),
        _ => None,
    };
    if let (Some(prompt), Some(image)) = (replay_prompt, &a.image) {
        let system = a.replay_system_file.as_deref().map(read).transpose()?;
        let r = run_replay(
            &archive,
            image,
            &expected,
            prompt,
            system,
            crate::replay::Runner::Auto,
        )?;
        let ok = r.report.passed();
        o.report
            .checks
            .extend(r.report.checks.into_iter().map(|mut c| {
                c.name = format!("replay: {}", c.name);
                c
            }));
        if ok {
            o.proven.push(format!(
                "replay: the measured binary on the measured model, given this prompt, writes this result again ({})",
                r.summary
            ));
        }
    }
    let passed = o.report.passed();
    let mut text = o.report.human();
    for e in &o.events {
        text.push_str(&format!(
            "  RTMR{} event {}{}\n",
            e.rtmr,
            printable(&e.name),
            if e.payload.is_empty() {
                String::new()
            } else {
                format!(" = {}", printable(&e.payload))
            }
        ));
    }
    if passed {
        text.push_str(&format!("VERIFIED ({} checks).\n", o.report.checks.len()));
    } else {
        text.push_str(&format!(
            "NOT verified: {} of {} checks failed.\n",
            o.report.failures().count(),
            o.report.checks.len()
        ));
    }
    for p in &o.proven {
        text.push_str(&format!("proven:  {}\n", printable(p)));
    }
    if o.timeline.is_empty() {
        let made = time_arg(None)?;
        text.push_str(&format!(
            "time:    verdict made at {} for the time {}\n",
            crate::tdx::judge::utc(made),
            crate::tdx::judge::utc(now)
        ));
    }
    for l in &o.timeline {
        text.push_str(&format!("time:    {l}\n"));
    }
    for t in &o.trusted {
        text.push_str(&format!("trusted: {}\n", printable(t)));
    }
    let failed: Vec<_> = o.report.failures().collect();
    Ok(Verdict {
        passed,
        json: json!({"verified": passed, "result_digest": o.result_digest,
                     "attestation": o.attestation, "tcb_status": o.tcb_status,
                     "checks": o.report.checks, "failed": failed,
                     "events": o.events, "proven": o.proven,
                     "trusted": o.trusted, "time": now, "timeline": o.timeline_json}),
        text,
    })
}

fn measure(
    oci_dir: &Path,
    expected: Option<&Path>,
    reference: Option<String>,
) -> Result<Verdict, Error> {
    let expected: Option<Measurement> = expected.map(json_file).transpose()?;
    let reference = reference.or_else(|| expected.as_ref().map(|m| m.reference.clone()));
    let (measured, mut report) = crate::image::measure::measure(oci_dir, reference.as_deref())?;
    if let Some(m) = &expected {
        crate::image::measure::compare(&measured, m, &mut report);
    }
    let passed = report.passed();
    let digest = &measured.manifest_digest;
    let mut text = report.human();
    if passed {
        text.push_str(&format!(
            "verified: the layout is the measured image {}\n",
            printable(digest)
        ));
    } else {
        text.push_str(&format!(
            "NOT verified: {} check(s) failed\n",
            report.failures().count()
        ));
    }
    let failed: Vec<_> = report.failures().collect();
    Ok(Verdict {
        passed,
        json: json!({"verified": passed, "manifest_digest": digest,
                     "checks": report.checks, "failed": failed}),
        text,
    })
}

fn replay(a: ReplayArgs) -> Result<Verdict, Error> {
    let key = a.key.as_deref().map(read).transpose()?;
    let key = key.as_deref().map(rsa_key).transpose()?;
    let archive = ResultArchive::open(&a.result, key.as_ref())?;
    let expected: Measurement = json_file(&a.expected)?;
    let prompt = match (&a.prompt_file, &a.prompt_env, &a.protected_data) {
        (Some(f), _, _) => crate::replay::PromptInput::Text(read(f)?),
        (_, Some(v), _) => crate::replay::PromptInput::Text(
            std::env::var_os(v)
                .ok_or_else(|| Error::malformed("--prompt-env", format!("{v} is not set")))?
                .into_encoded_bytes(),
        ),
        (_, _, Some(z)) => crate::replay::PromptInput::ProtectedData(read(z)?),
        _ => {
            return Err(Error::malformed(
                "prompt",
                "give --prompt-file, --prompt-env or --protected-data",
            ))
        }
    };
    let system = a.system_file.as_deref().map(read).transpose()?;
    let runner = match a.run.as_str() {
        "runc" => crate::replay::Runner::Runc,
        "direct" => crate::replay::Runner::Direct,
        _ => crate::replay::Runner::Auto,
    };
    let r = run_replay(&archive, &a.image, &expected, prompt, system, runner)?;
    let passed = r.report.passed();
    let mut text = r.report.human();
    text.push_str(&format!("replayed: {}\n", printable(&r.summary)));
    let failed: Vec<_> = r.report.failures().collect();
    Ok(Verdict {
        passed,
        json: json!({"replayed": passed, "summary": r.summary, "stopped_on_time": r.stopped_on_time, "ran": r.ran,
                     "checks": r.report.checks, "failed": failed}),
        text,
    })
}

/// A replay in a fresh scratch directory, removed after; the engine settings of this
/// process's environment (they choose a kernel path or thread count, never the bytes).
fn run_replay(
    archive: &ResultArchive,
    layout: &Path,
    expected: &Measurement,
    prompt: crate::replay::PromptInput,
    system: Option<Vec<u8>>,
    runner: crate::replay::Runner,
) -> Result<crate::replay::Replay, Error> {
    let work = crate::replay::scratch()?;
    let r = crate::replay::replay(&crate::replay::Inputs {
        archive,
        layout,
        expected,
        prompt,
        system,
        work: &work,
        engine_env: ["IEXEC_LLM_SIMD", "IEXEC_LLM_THREADS", "IEXEC_LLM_ENGINE"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect(),
        runner,
    });
    let _ = std::fs::remove_dir_all(&work);
    r
}
