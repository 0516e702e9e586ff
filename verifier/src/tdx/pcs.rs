//! Collateral from Intel's PCS or a PCCS, verified before it is kept, then used offline.
//!
//! `verifier collateral fetch` asks for what one quote needs (Intel "PCS API v4"):
//!
//! | what | request | issuer chain header |
//! |---|---|---|
//! | TDX TCB info | `GET {base}/tdx/certification/v4/tcb?fmspc={FMSPC}` | `TCB-Info-Issuer-Chain` |
//! | TD QE identity | `GET {base}/tdx/certification/v4/qe/identity` | `SGX-Enclave-Identity-Issuer-Chain` |
//! | PCK CRL | `GET {base}/sgx/certification/v4/pckcrl?ca={platform,processor}&encoding=der` | `SGX-PCK-CRL-Issuer-Chain` |
//! | root CA CRL | PCS: `https://certificates.trustedservices.intel.com/IntelSGXRootCA.der`; PCCS: `GET {base}/sgx/certification/v4/rootcacrl` | — |
//!
//! Every answer must be `200`; redirects are not followed; each body is capped; the whole
//! fetch has one deadline. What was served is then verified against the quote exactly as
//! `check-quote` would at the given time (signatures, chains to the trusted root, CRLs,
//! windows, FMSPC), except the TCB status (a platform's status is a verdict, not a property
//! of the collateral). Only then are the bytes written, **exactly as served** (bodies and
//! header values), into one directory of the cache, made under a temporary name and renamed
//! into place: a failed fetch writes nothing.
//!
//! Cache layout, one directory per collateral set:
//! `{cache}/{FMSPC}/{ca}/{tcbEvaluationDataNumber}-{issueDate}/` holding `tcb_info.json`,
//! `tcb_info.issuer-chain`, `qe_identity.json`, `qe_identity.issuer-chain`, `pck_crl`,
//! `pck_crl.issuer-chain`, `root_ca_crl`, and `source.json` (schema
//! `iexec-llm/collateral-cache/v1`: where each file came from and its sha256, checked on
//! every read).

use crate::error::Error;
use crate::report::printable;
use crate::tdx::chain::Trust;
use crate::tdx::collateral::{parse_time, Collateral, Served};
use crate::tdx::quote::Quote;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Intel's Provisioning Certification Service.
pub const PCS_BASE: &str = "https://api.trustedservices.intel.com";
/// Where Intel publishes the SGX Root CA's CRL (the root certificate's CRL distribution point).
pub const PCS_ROOT_CRL: &str = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// Most bytes one answer may have (real ones are a few KiB).
const MAX_BODY: u64 = 1 << 20;
/// The schema of `source.json`.
pub const CACHE_SCHEMA: &str = "iexec-llm/collateral-cache/v1";

/// Where collateral comes from.
#[derive(Debug, Clone)]
pub struct Source {
    /// Base URL, without a trailing slash and without `/sgx/certification/v4`.
    pub base: String,
    /// The root CA CRL's URL.
    pub root_crl: String,
}

impl Source {
    /// Intel's PCS.
    pub fn pcs() -> Self {
        Source {
            base: PCS_BASE.into(),
            root_crl: PCS_ROOT_CRL.into(),
        }
    }

    /// A PCCS at `url` (e.g. `https://pccs.example:8081`, with or without the
    /// `/sgx/certification/v4` suffix its clients are configured with).
    ///
    /// # Errors
    /// [`Error::Malformed`] if `url` is not an `http://` or `https://` URL.
    pub fn pccs(url: &str) -> Result<Self, Error> {
        let mut base = url.trim_end_matches('/').to_string();
        for suffix in ["/sgx/certification/v4", "/tdx/certification/v4"] {
            if let Some(b) = base.strip_suffix(suffix) {
                base = b.to_string();
            }
        }
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::malformed("--pccs", "not an http:// or https:// URL"));
        }
        Ok(Source {
            root_crl: format!("{base}/sgx/certification/v4/rootcacrl"),
            base,
        })
    }
}

/// What a quote needs from the PCS: its FMSPC and which PCK CA issued its PCK certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// FMSPC, upper-case hex, as PCS requests name it.
    pub fmspc: String,
    /// `platform` or `processor`.
    pub ca: &'static str,
}

/// Reads FMSPC and PCK CA from the quote's PCK certificate.
///
/// # Errors
/// [`Error::Malformed`] if the quote carries no readable PCK certificate.
pub fn needs(q: &Quote<'_>) -> Result<Needs, Error> {
    let ders = crate::tdx::dcap::pck_chain_der(q.qe.cert_data)
        .map_err(|e| Error::malformed("quote", e))?;
    let leaf = ders
        .first()
        .ok_or_else(|| Error::malformed("quote", "no PCK certificate"))?;
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|e| Error::malformed("quote's PCK certificate", e))?;
    let ext = crate::tdx::pck::extensions(&cert)
        .map_err(|e| Error::malformed("quote's PCK certificate", e))?;
    let issuer = cert.issuer().to_string();
    let ca = if issuer.contains("PCK Platform CA") {
        "platform"
    } else if issuer.contains("PCK Processor CA") {
        "processor"
    } else {
        return Err(Error::malformed(
            "quote's PCK certificate",
            format!(
                "issued by {}, neither the PCK Platform CA nor the PCK Processor CA",
                printable(&issuer)
            ),
        ));
    };
    Ok(Needs {
        fmspc: hex::encode_upper(&ext.fmspc),
        ca,
    })
}

/// One file of a cached set, as `source.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRecord {
    /// File name inside the set's directory.
    pub name: String,
    /// Where it came from (a URL, or the header of the answer from that URL).
    pub from: String,
    /// sha256 of the bytes, hex.
    pub sha256: String,
}

/// `source.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceRecord {
    /// [`CACHE_SCHEMA`].
    pub schema: String,
    /// FMSPC, upper-case hex.
    pub fmspc: String,
    /// `platform` or `processor`.
    pub ca: String,
    /// The time the set was verified at when it was fetched, Unix seconds.
    pub verified_at: i64,
    /// Every file, in order.
    pub files: Vec<FileRecord>,
}

/// A collateral set read from the cache.
#[derive(Debug, Clone)]
pub struct CachedSet {
    /// Its directory.
    pub dir: PathBuf,
    /// The collateral.
    pub collateral: Collateral,
    /// TCB info's `tcbEvaluationDataNumber` (0 when absent).
    pub tcb_evaluation_data_number: u32,
    /// The latest of the TCB info's and QE identity's `issueDate`, Unix seconds: the
    /// set exists from then on.
    pub issued: i64,
}

/// The files of a cached set besides `source.json`, in order.
pub const SET_FILES: [&str; 7] = [
    "tcb_info.json",
    "tcb_info.issuer-chain",
    "qe_identity.json",
    "qe_identity.issuer-chain",
    "pck_crl",
    "pck_crl.issuer-chain",
    "root_ca_crl",
];

/// The seven parts of a served set, in cache order: (file name, bytes, from).
type Parts = Vec<(&'static str, Vec<u8>, String)>;

fn served_of(parts: &Parts) -> Result<Collateral, Error> {
    let get = |n: &str| {
        parts
            .iter()
            .find(|p| p.0 == n)
            .map(|p| p.1.as_slice())
            .unwrap_or_default()
    };
    let text = |n: &str| -> Result<&str, Error> {
        std::str::from_utf8(get(n)).map_err(|_| Error::malformed(n.to_string(), "not text"))
    };
    Collateral::from_served(&Served {
        tcb_info: get("tcb_info.json"),
        tcb_info_chain: text("tcb_info.issuer-chain")?,
        qe_identity: get("qe_identity.json"),
        qe_identity_chain: text("qe_identity.issuer-chain")?,
        pck_crl: get("pck_crl"),
        pck_crl_chain: text("pck_crl.issuer-chain")?,
        root_ca_crl: get("root_ca_crl"),
    })
}

fn numbers(c: &Collateral) -> Result<(u32, i64), Error> {
    let t = c.tcb_info()?;
    let q = c.qe_identity()?;
    let issued = parse_time(&t.issue_date)?.max(parse_time(&q.issue_date)?);
    Ok((t.tcb_evaluation_data_number.unwrap_or(0), issued))
}

/// How a fetch went.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The set's directory in the cache.
    pub dir: PathBuf,
    /// Whether the same bytes were already there.
    pub already_cached: bool,
    /// What was asked for.
    pub needs: Needs,
    /// TCB info's `tcbEvaluationDataNumber`.
    pub tcb_evaluation_data_number: u32,
}

/// Fetches, verifies at `at` with `trust`, and caches the collateral `q` needs.
///
/// # Errors
/// [`Error::Malformed`] naming the request and the reason for any answer that is not a
/// `200` with a usable body in time, and for collateral that does not verify the quote;
/// nothing is written then. [`Error::Io`] if the cache cannot be written.
pub fn fetch(
    q: &Quote<'_>,
    source: &Source,
    cache: &Path,
    at: i64,
    trust: &Trust,
    timeout: Duration,
) -> Result<Fetched, Error> {
    let needs = needs(q)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("iexec-llm-verifier/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let deadline = std::time::Instant::now() + timeout;
    let get = |url: &str, header: Option<&str>| -> Result<(Vec<u8>, Option<String>), Error> {
        let why = |e: String| Error::malformed(format!("GET {}", printable(url)), e);
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(why(format!(
                "no time left ({} s for the whole fetch)",
                timeout.as_secs_f32()
            )));
        }
        // Each request gets only what is left of the one deadline.
        let mut r = agent
            .get(url)
            .config()
            .timeout_global(Some(left))
            .build()
            .call()
            .map_err(|e| why(e.to_string()))?;
        if r.status() != 200 {
            return Err(why(format!(
                "HTTP {} (only 200 is accepted; redirects are not followed)",
                r.status().as_u16()
            )));
        }
        let h = match header {
            None => None,
            Some(h) => Some(
                r.headers()
                    .get(h)
                    .ok_or_else(|| why(format!("no {h} header")))?
                    .to_str()
                    .map_err(|_| why(format!("the {h} header is not text")))?
                    .to_string(),
            ),
        };
        let body = r
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| why(format!("body: {e}")))?;
        Ok((body, h))
    };
    let b = &source.base;
    let tcb_url = format!("{b}/tdx/certification/v4/tcb?fmspc={}", needs.fmspc);
    let qe_url = format!("{b}/tdx/certification/v4/qe/identity");
    let crl_url = format!(
        "{b}/sgx/certification/v4/pckcrl?ca={}&encoding=der",
        needs.ca
    );
    let (tcb, tcb_chain) = get(&tcb_url, Some("TCB-Info-Issuer-Chain"))?;
    let (qe, qe_chain) = get(&qe_url, Some("SGX-Enclave-Identity-Issuer-Chain"))?;
    let (crl, crl_chain) = get(&crl_url, Some("SGX-PCK-CRL-Issuer-Chain"))?;
    let (root, _) = get(&source.root_crl, None)?;
    let header = |url: &str, h: &str| format!("{url} ({h} header)");
    let parts: Parts = vec![
        ("tcb_info.json", tcb, tcb_url.clone()),
        (
            "tcb_info.issuer-chain",
            tcb_chain.unwrap_or_default().into_bytes(),
            header(&tcb_url, "TCB-Info-Issuer-Chain"),
        ),
        ("qe_identity.json", qe, qe_url.clone()),
        (
            "qe_identity.issuer-chain",
            qe_chain.unwrap_or_default().into_bytes(),
            header(&qe_url, "SGX-Enclave-Identity-Issuer-Chain"),
        ),
        ("pck_crl", crl, crl_url.clone()),
        (
            "pck_crl.issuer-chain",
            crl_chain.unwrap_or_default().into_bytes(),
            header(&crl_url, "SGX-PCK-CRL-Issuer-Chain"),
        ),
        ("root_ca_crl", root, source.root_crl.clone()),
    ];

    // Verified before anything is kept.
    let c = served_of(&parts)?;
    let t = c.tcb_info()?;
    if !t.fmspc.eq_ignore_ascii_case(&needs.fmspc) {
        return Err(Error::malformed(
            format!("GET {}", printable(&tcb_url)),
            format!(
                "the TCB info served is for FMSPC {}, the quote's is {}",
                printable(&t.fmspc),
                needs.fmspc
            ),
        ));
    }
    let v = crate::tdx::verify::verify(q, &c, at, trust);
    let failed: Vec<String> = v
        .report
        .failures()
        .filter(|c| !c.name.starts_with("TCB evaluation"))
        .map(|c| format!("{} (found {})", c.name, c.found))
        .collect();
    if !failed.is_empty() {
        return Err(Error::malformed(
            "collateral served",
            format!(
                "it does not verify the quote at {at}: {}",
                printable(&failed.join("; "))
            ),
        ));
    }
    let (n, issued) = numbers(&c)?;
    let record = SourceRecord {
        schema: CACHE_SCHEMA.into(),
        fmspc: needs.fmspc.clone(),
        ca: needs.ca.into(),
        verified_at: at,
        files: parts
            .iter()
            .map(|(name, bytes, from)| FileRecord {
                name: (*name).into(),
                from: from.clone(),
                sha256: hex::encode(Sha256::digest(bytes)),
            })
            .collect(),
    };
    let (dir, already_cached) = store(cache, &needs, n, issued, &parts, &record)?;
    Ok(Fetched {
        dir,
        already_cached,
        needs,
        tcb_evaluation_data_number: n,
    })
}

fn compact_time(t: i64) -> String {
    // YYYYMMDDThhmmssZ; the proleptic Gregorian calendar from a day count.
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn store(
    cache: &Path,
    needs: &Needs,
    n: u32,
    issued: i64,
    parts: &Parts,
    record: &SourceRecord,
) -> Result<(PathBuf, bool), Error> {
    let parent = cache.join(&needs.fmspc).join(needs.ca);
    let dir = parent.join(format!("{n}-{}", compact_time(issued)));
    if let Ok(existing) = load_set(&dir) {
        let same = parts.iter().all(|(name, bytes, _)| {
            std::fs::read(existing.dir.join(name)).is_ok_and(|b| &b == bytes)
        });
        if same {
            return Ok((dir, true));
        }
    }
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = parent.join(format!(".tmp-{}-{nanos}", std::process::id()));
    let write = || -> Result<(), Error> {
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        for (name, bytes, _) in parts {
            std::fs::write(tmp.join(name), bytes).map_err(|e| Error::io(&tmp, e))?;
        }
        let json =
            serde_json::to_vec_pretty(record).map_err(|e| Error::malformed("source.json", e))?;
        std::fs::write(tmp.join("source.json"), json).map_err(|e| Error::io(&tmp, e))?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    r.map(|()| (dir, false))
}

/// Reads one cached set, checking every file against `source.json`.
///
/// # Errors
/// [`Error::Malformed`] naming the file that is missing, not a regular file, or not the
/// bytes `source.json` records.
pub fn load_set(dir: &Path) -> Result<CachedSet, Error> {
    let read = |n: &str| crate::iexec::archive::read_regular(&dir.join(n), MAX_BODY * 2);
    let record: SourceRecord = serde_json::from_slice(&read("source.json")?)
        .map_err(|e| Error::malformed(dir.join("source.json").display().to_string(), e))?;
    if record.schema != CACHE_SCHEMA {
        return Err(Error::malformed(
            dir.join("source.json").display().to_string(),
            format!("schema {:?}, not {CACHE_SCHEMA}", printable(&record.schema)),
        ));
    }
    let mut parts: Parts = Vec::new();
    for name in SET_FILES {
        let bytes = read(name)?;
        let recorded: Vec<&FileRecord> = record.files.iter().filter(|f| f.name == name).collect();
        let sha = hex::encode(Sha256::digest(&bytes));
        match recorded.as_slice() {
            [r] if r.sha256 == sha => {}
            [r] => {
                return Err(Error::malformed(
                    dir.join(name).display().to_string(),
                    format!("sha256 {sha}, source.json records {}", printable(&r.sha256)),
                ))
            }
            _ => {
                return Err(Error::malformed(
                    dir.join("source.json").display().to_string(),
                    format!("{name} is recorded {} times, not once", recorded.len()),
                ))
            }
        }
        parts.push((name, bytes, String::new()));
    }
    let collateral = served_of(&parts)?;
    let (n, issued) = numbers(&collateral)?;
    Ok(CachedSet {
        dir: dir.to_path_buf(),
        collateral,
        tcb_evaluation_data_number: n,
        issued,
    })
}

/// Every cached set for `needs`, oldest first (by TCB evaluation data number, then issue
/// time).
///
/// # Errors
/// [`Error`] if the cache cannot be listed or a set in it cannot be read.
pub fn sets(cache: &Path, needs: &Needs) -> Result<Vec<CachedSet>, Error> {
    let set_of = |p: &Path| -> Result<CachedSet, Error> {
        let s = load_set(p)?;
        let t = s.collateral.tcb_info()?;
        if !t.fmspc.eq_ignore_ascii_case(&needs.fmspc) {
            return Err(Error::malformed(
                p.display().to_string(),
                format!(
                    "a set for FMSPC {} filed under {}",
                    printable(&t.fmspc),
                    needs.fmspc
                ),
            ));
        }
        Ok(s)
    };
    let parent = cache.join(&needs.fmspc).join(needs.ca);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&parent, e)),
    };
    for e in entries {
        let e = e.map_err(|e| Error::io(&parent, e))?;
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // an interrupted fetch's temporary directory
        }
        out.push(set_of(&e.path())?);
    }
    out.sort_by_key(|s| (s.tcb_evaluation_data_number, s.issued));
    Ok(out)
}

/// The sets a verdict at `at` uses: the newest issued at or before `at`, and the newest of
/// all when that is a later one.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The set the verdict is made with.
    pub used: CachedSet,
    /// A newer set in the cache, issued after `at`.
    pub newest: Option<CachedSet>,
    /// How many sets the cache holds for this quote.
    pub count: usize,
}

/// Picks the sets for a quote with `needs` at `at`.
///
/// # Errors
/// [`Error::Malformed`] when the cache holds no set for the quote, or none issued by `at`.
pub fn select(cache: &Path, needs: &Needs, at: i64) -> Result<Selection, Error> {
    let all = sets(cache, needs)?;
    let count = all.len();
    let shown = cache.display().to_string();
    if all.is_empty() {
        return Err(Error::malformed(
            shown,
            format!(
                "no collateral for FMSPC {} ({} CA): run `verifier collateral fetch` first",
                needs.fmspc, needs.ca
            ),
        ));
    }
    let used = all
        .iter()
        .filter(|s| s.issued <= at)
        .max_by_key(|s| (s.tcb_evaluation_data_number, s.issued))
        .cloned()
        .ok_or_else(|| {
            Error::malformed(
                shown,
                format!(
                    "no collateral for FMSPC {} issued at or before {at}",
                    needs.fmspc
                ),
            )
        })?;
    let newest = all.last().filter(|n| n.dir != used.dir).cloned();
    Ok(Selection {
        used,
        newest,
        count,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn compact_times() {
        assert_eq!(compact_time(0), "19700101T000000Z");
        assert_eq!(compact_time(1_752_919_234), "20250719T100034Z");
        assert_eq!(compact_time(951_782_400), "20000229T000000Z");
    }

    #[test]
    fn pccs_urls() {
        let s = Source::pccs("https://h:8081/sgx/certification/v4/").unwrap();
        assert_eq!(s.base, "https://h:8081");
        assert_eq!(s.root_crl, "https://h:8081/sgx/certification/v4/rootcacrl");
        assert!(Source::pccs("file:///etc/passwd").is_err());
    }
}
