//! A quote's verdict with its time: verification ([`crate::tdx::verify`]) and policy, with
//! the collateral given or chosen from a cache ([`crate::tdx::pcs`]), and the lines that say
//! when the verdict was made, for which time, with which collateral (its TCB evaluation data
//! numbers), how far behind the platform is, and — when the cache holds a newer set — what
//! that newer collateral says.

use crate::error::Error;
use crate::report::{printable, Report};
use crate::tdx::collateral::Collateral;
use crate::tdx::pcs;
use crate::tdx::policy::{self, Freshness, Policy};
use crate::tdx::quote::Quote;
use crate::tdx::tcb::TcbResult;
use crate::tdx::verify::{verify, Trust};
use serde_json::{json, Value};
use std::path::Path;

/// Where a verdict's collateral comes from.
#[derive(Debug, Clone, Copy)]
pub enum CollateralSource<'a> {
    /// Given as files or a bundle.
    Given(&'a Collateral),
    /// A cache made by `verifier collateral fetch`.
    Cache(&'a Path),
}

/// A verdict on a quote.
#[derive(Debug, Clone)]
pub struct Judged {
    /// Verification and policy checks, in order.
    pub report: Report,
    /// TCB status and levels, when evaluated.
    pub tcb: Option<TcbResult>,
    /// The time lines, for people.
    pub timeline: Vec<String>,
    /// The same, as JSON.
    pub json: Value,
}

/// `t` as a UTC date and time.
pub fn utc(t: i64) -> String {
    x509_parser::time::ASN1Time::from_timestamp(t)
        .map(|a| a.to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// TCB info and QE identity numbers and dates of a collateral set, as text and JSON.
fn describe(c: &Collateral, label: &str) -> (String, Value, Freshness) {
    let t = c.tcb_info().ok();
    let q = c.qe_identity().ok();
    let num = |n: Option<u32>| n.map_or_else(|| "?".into(), |n| n.to_string());
    let tn = t.as_ref().and_then(|t| t.tcb_evaluation_data_number);
    let qn = q.as_ref().and_then(|q| q.tcb_evaluation_data_number);
    let text = format!(
        "{label}: TCB info #{} issued {} (next update {}), QE identity #{} issued {}",
        num(tn),
        t.as_ref().map_or("?", |t| t.issue_date.as_str()),
        t.as_ref().map_or("?", |t| t.next_update.as_str()),
        num(qn),
        q.as_ref().map_or("?", |q| q.issue_date.as_str()),
    );
    let j = json!({
        "source": label,
        "tcb_info": {"tcb_evaluation_data_number": tn,
                     "issue_date": t.as_ref().map(|t| t.issue_date.clone()),
                     "next_update": t.as_ref().map(|t| t.next_update.clone())},
        "qe_identity": {"tcb_evaluation_data_number": qn,
                        "issue_date": q.as_ref().map(|q| q.issue_date.clone()),
                        "next_update": q.as_ref().map(|q| q.next_update.clone())},
    });
    (
        printable(&text),
        j,
        Freshness {
            now: 0,
            tcb_info: tn,
            qe_identity: qn,
        },
    )
}

fn behind(tcb: Option<&TcbResult>) -> (String, Value) {
    let Some(t) = tcb else {
        return ("platform: TCB level not determined".into(), Value::Null);
    };
    let level = t
        .platform_level
        .as_ref()
        .map_or_else(|| "?".to_string(), |(d, s)| format!("{d} ({s})"));
    let newer: Vec<String> = t
        .newer_levels
        .iter()
        .map(|(d, s)| format!("{d} {s}"))
        .collect();
    let text = if newer.is_empty() {
        format!("platform: TCB level {level}, the newest of this collateral")
    } else {
        format!(
            "platform: TCB level {level}, {} newer level(s): {}",
            newer.len(),
            newer.join(", ")
        )
    };
    let j = json!({"status": t.status.name(), "level": t.platform_level, "newer_levels": t.newer_levels});
    (printable(&text), j)
}

fn one(
    q: &Quote<'_>,
    c: &Collateral,
    at: i64,
    trust: &Trust,
    p: &Policy,
) -> (Report, Option<TcbResult>, Freshness) {
    let v = verify(q, c, at, trust);
    let mut report = v.report;
    let (_, _, mut f) = describe(c, "");
    f.now = at;
    report
        .checks
        .extend(policy::check(p, q, v.tcb.as_ref(), &f));
    (report, v.tcb, f)
}

/// Verifies `q` at `at` with collateral from `src`, then applies `p`.
///
/// # Errors
/// [`Error`] when the cache cannot be read or holds no collateral for the quote.
pub fn judge(
    q: &Quote<'_>,
    src: CollateralSource<'_>,
    at: i64,
    trust: &Trust,
    p: &Policy,
) -> Result<Judged, Error> {
    let selection = match src {
        CollateralSource::Given(_) => None,
        CollateralSource::Cache(dir) => Some(pcs::select(dir, &pcs::needs(q)?, at)?),
    };
    let (used, label) = match (&src, &selection) {
        (CollateralSource::Given(c), _) => (*c, "collateral given".to_string()),
        (_, Some(s)) => (
            &s.used.collateral,
            format!("cached set {}", s.used.dir.display()),
        ),
        (CollateralSource::Cache(_), None) => unreachable!("a cache source always selects"),
    };
    let (report, tcb, _) = one(q, used, at, trust, p);
    let made = wall_clock();
    let (used_text, used_json, _) = describe(used, &format!("collateral used: {label}"));
    let (behind_text, behind_json) = behind(tcb.as_ref());
    let mut timeline = vec![
        format!("verdict made at {} for the time {}", utc(made), utc(at)),
        used_text,
        behind_text,
    ];
    let mut newest_json = Value::Null;
    if let Some(s) = &selection {
        if let Some(n) = &s.newest {
            let when = at.max(n.issued);
            let (r, t, _) = one(q, &n.collateral, when, trust, p);
            let failed: Vec<String> = r.failures().map(|c| c.name.clone()).collect();
            let (text, j, _) = describe(&n.collateral, "newest collateral in the cache");
            let (b, bj) = behind(t.as_ref());
            let verdict = if failed.is_empty() {
                "verified".to_string()
            } else {
                format!(
                    "NOT verified, {} check(s) failed: {}",
                    failed.len(),
                    failed.join("; ")
                )
            };
            timeline.push(text);
            timeline.push(printable(&format!(
                "under it, as of {}: {verdict}; TCB status {}; {b}",
                utc(when),
                t.as_ref().map_or("not determined", |t| t.status.name())
            )));
            newest_json = json!({"collateral": j, "time": when, "verified": failed.is_empty(),
                                 "failed": failed, "platform": bj});
        }
        timeline.push(format!(
            "the cache holds {} set(s) for this quote's FMSPC",
            s.count
        ));
    }
    let json = json!({
        "made_at": made, "time": at,
        "collateral": used_json, "platform": behind_json,
        "newest_in_cache": newest_json,
    });
    Ok(Judged {
        report,
        tcb,
        timeline,
        json,
    })
}
