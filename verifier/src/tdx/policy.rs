//! Policy: what the relying party accepts, separate from the cryptographic checks. Intel's
//! QVL gives a TCB status; whether a debug TD, a status other than UpToDate or a given MRTD is
//! acceptable is decided here.
//!
//! Defaults are strict: only `UpToDate`, no debug TD (TDATTRIBUTES.TUD.DEBUG, bit 0), SEPT #VE
//! disabled (TDATTRIBUTES bit 28, so the host cannot inject #VE on EPT violations), and
//! MRSERVICETD all zero (no service TD bound). Each loosening has a name that says so.
//! Expected values, when given, must match exactly.

use crate::report::Check;
use crate::tdx::quote::{Body, Quote};
use crate::tdx::tcb::TcbResult;
use serde::Deserialize;

/// A policy, as read from a JSON file (`--policy`); every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Accepted TCB statuses [default: `["UpToDate"]`].
    #[serde(default)]
    pub accepted_tcb_statuses: Option<Vec<String>>,
    /// Accept a TD whose DEBUG attribute is set (its memory can be read by the host).
    #[serde(default)]
    pub allow_debug_td: bool,
    /// Accept a TD with SEPT_VE_DISABLE clear.
    #[serde(default)]
    pub allow_sept_ve_enabled: bool,
    /// Accept any MRSERVICETD (TD 1.5), when `mr_servicetd` is not given.
    #[serde(default)]
    pub allow_any_mr_servicetd: bool,
    /// Expected MRTD, hex.
    pub mr_td: Option<String>,
    /// Expected RTMR0..3, hex; `null` entries are not checked.
    #[serde(default)]
    pub rtmr: [Option<String>; 4],
    /// Expected MRCONFIGID, hex.
    pub mr_config_id: Option<String>,
    /// Expected MROWNER, hex.
    pub mr_owner: Option<String>,
    /// Expected MROWNERCONFIG, hex.
    pub mr_owner_config: Option<String>,
    /// Expected REPORTDATA, hex.
    pub report_data: Option<String>,
    /// Expected XFAM, hex.
    pub xfam: Option<String>,
    /// Minimum TEE_TCB_SVN, hex (16 bytes, compared component by component).
    pub min_tee_tcb_svn: Option<String>,
    /// Expected MRSERVICETD, hex (TD 1.5 quotes).
    pub mr_servicetd: Option<String>,
    /// Refuse collateral (TCB info and QE identity) older than this TCB evaluation data
    /// number: a platform judged against an earlier TCB recovery may look better than it is.
    pub min_tcb_evaluation_data_number: Option<u32>,
    /// Accept `OutOfDate` (and `OutOfDateConfigurationNeeded` when that is accepted with
    /// its configuration) for this many days after the newer TCB level's `tcbDate`: the time a
    /// fleet needs to patch.
    pub out_of_date_grace_days: Option<u32>,
}

/// What a verdict knows about time: when it is made, and the collateral's recovery numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Freshness {
    /// The verification time, Unix seconds.
    pub now: i64,
    /// The TCB info's `tcbEvaluationDataNumber`.
    pub tcb_info: Option<u32>,
    /// The QE identity's `tcbEvaluationDataNumber`.
    pub qe_identity: Option<u32>,
}

/// `Some(why)` when an out-of-date platform is within the policy's grace period: the status
/// is OutOfDate (or OutOfDateConfigurationNeeded with ConfigurationNeeded accepted) and the
/// oldest newer level is dated less than the grace period before `now`.
fn grace(p: &Policy, t: &TcbResult, now: i64, accepted: &[String]) -> Option<String> {
    use crate::tdx::tcb::Status;
    let days = p.out_of_date_grace_days?;
    let ok_status = match t.status {
        Status::OutOfDate => true,
        Status::OutOfDateConfigurationNeeded => accepted.iter().any(|a| a == "ConfigurationNeeded"),
        _ => false,
    };
    // Every part (platform, TDX module, QE) up to date or out of date with a known date; the
    // one behind the longest counts.
    let mut since: Option<(i64, &str)> = None;
    for p in &t.components {
        match p.status {
            Status::UpToDate => {}
            Status::OutOfDate | Status::OutOfDateConfigurationNeeded => {
                let d = p.behind_since.as_deref()?;
                let at = crate::tdx::collateral::parse_time(d).ok()?;
                if since.is_none_or(|(s, _)| at < s) {
                    since = Some((at, d));
                }
            }
            _ => return None,
        }
    }
    let (since, date) = since?;
    let age = now.checked_sub(since)?;
    (ok_status && (0..=i64::from(days) * 86_400).contains(&age)).then(|| {
        format!(
            "within the grace period: out of date since {date} ({} days)",
            age.div_euclid(86_400)
        )
    })
}

/// The policy checks for a quote whose TCB evaluation gave `tcb`.
pub fn check(p: &Policy, q: &Quote<'_>, tcb: Option<&TcbResult>, f: &Freshness) -> Vec<Check> {
    let mut out = Vec::new();
    let accepted = p
        .accepted_tcb_statuses
        .clone()
        .unwrap_or_else(|| vec!["UpToDate".into()]);
    if let Some(t) = tcb {
        let name = t.status.name();
        let graced = grace(p, t, f.now, &accepted);
        out.push(Check {
            name: "policy: TCB status accepted".into(),
            pass: accepted.iter().any(|a| a == name) || graced.is_some(),
            expected: match p.out_of_date_grace_days {
                Some(d) => format!("{} (OutOfDate within {d} days)", accepted.join(" | ")),
                None => accepted.join(" | "),
            },
            found: match graced {
                Some(g) => format!("{name}, {g}"),
                None => name.into(),
            },
        });
    }
    if let Some(min) = p.min_tcb_evaluation_data_number {
        for (what, n) in [("TCB info", f.tcb_info), ("QE identity", f.qe_identity)] {
            out.push(Check {
                name: format!("policy: {what} TCB evaluation data number"),
                pass: n.is_some_and(|n| n >= min),
                expected: format!(">= {min}"),
                found: n.map_or_else(|| "absent".into(), |n| n.to_string()),
            });
        }
    }
    let Body::Td(td) = &q.body else { return out };
    let bit = |byte: usize, bit: u8| {
        td.td_attributes
            .get(byte)
            .is_some_and(|b| b & (1 << bit) != 0)
    };
    if !p.allow_debug_td {
        out.push(Check {
            name: "policy: not a debug TD (TDATTRIBUTES.DEBUG = 0)".into(),
            pass: !td.debug(),
            expected: "0".into(),
            found: if td.debug() {
                "1 (debug TD)".into()
            } else {
                "0".into()
            },
        });
    }
    if !p.allow_sept_ve_enabled {
        let set = bit(3, 4); // bit 28
        out.push(Check {
            name: "policy: SEPT_VE_DISABLE set (TDATTRIBUTES bit 28)".into(),
            pass: set,
            expected: "1".into(),
            found: if set { "1".into() } else { "0".into() },
        });
    }
    let mut eq = |name: &str, want: &Option<String>, got: &[u8]| {
        if let Some(w) = want {
            out.push(Check::equal(
                format!("policy: {name}"),
                &w.to_ascii_lowercase(),
                &hex::encode(got),
            ));
        }
    };
    eq("MRTD", &p.mr_td, td.mr_td);
    for (i, want) in p.rtmr.iter().enumerate() {
        if let Some(r) = td.rtmr.get(i) {
            eq(&format!("RTMR{i}"), want, *r);
        }
    }
    eq("MRCONFIGID", &p.mr_config_id, td.mr_config_id);
    eq("MROWNER", &p.mr_owner, td.mr_owner);
    eq("MROWNERCONFIG", &p.mr_owner_config, td.mr_owner_config);
    eq("REPORTDATA", &p.report_data, td.report_data);
    eq("XFAM", &p.xfam, td.xfam);
    if let Some(min) = &p.min_tee_tcb_svn {
        let ok = hex::decode(min)
            .ok()
            .filter(|m| m.len() == 16)
            .is_some_and(|m| td.tee_tcb_svn.iter().zip(&m).all(|(v, m)| v >= m));
        out.push(Check {
            name: "policy: TEE_TCB_SVN at least the minimum".into(),
            pass: ok,
            expected: format!(">= {min}"),
            found: hex::encode(td.tee_tcb_svn),
        });
    }
    if let Some(st) = td.mr_servicetd {
        match &p.mr_servicetd {
            Some(w) => out.push(Check::equal(
                "policy: MRSERVICETD",
                &w.to_ascii_lowercase(),
                &hex::encode(st),
            )),
            None if !p.allow_any_mr_servicetd => out.push(Check::equal(
                "policy: MRSERVICETD is zero (no service TD)",
                &"00".repeat(48),
                &hex::encode(st),
            )),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tdx::tcb::{Part, Status};

    const DAY: i64 = 86_400;
    // 2024-11-13T00:00:00Z and 2023-02-14T00:00:00Z.
    const NOV_2024: i64 = 1_731_456_000;

    fn result(parts: &[(&'static str, Status, Option<&str>)]) -> TcbResult {
        TcbResult {
            status: parts
                .iter()
                .fold(Status::UpToDate, |s, (_, p, _)| s.converge(*p)),
            advisory_ids: vec![],
            platform_level: None,
            newer_levels: vec![],
            components: parts
                .iter()
                .map(|(n, s, d)| Part {
                    name: n,
                    status: *s,
                    behind_since: d.map(String::from),
                })
                .collect(),
        }
    }

    fn graced(t: &TcbResult, now: i64) -> bool {
        let p = Policy {
            out_of_date_grace_days: Some(30),
            ..Default::default()
        };
        grace(&p, t, now, &["UpToDate".into()]).is_some()
    }

    #[test]
    fn the_grace_period_counts_from_the_part_behind_the_longest() {
        let nov = Some("2024-11-13T00:00:00Z");
        let old = Some("2023-02-14T00:00:00Z");
        let platform = result(&[
            ("platform", Status::OutOfDate, nov),
            ("QE", Status::UpToDate, None),
        ]);
        assert!(graced(&platform, NOV_2024 + 30 * DAY));
        assert!(!graced(&platform, NOV_2024 + 30 * DAY + 1));
        // A QE out of date for much longer: no grace, whatever the platform's date.
        let qe = result(&[
            ("platform", Status::OutOfDate, nov),
            ("QE", Status::OutOfDate, old),
        ]);
        assert!(!graced(&qe, NOV_2024 + DAY));
        // A part in another status than out of date: never graced.
        let hardening = result(&[
            ("platform", Status::SWHardeningNeeded, None),
            ("TDX module", Status::OutOfDate, nov),
        ]);
        assert!(!graced(&hardening, NOV_2024 + DAY));
        // No date known, or a time before the date (no overflow): no grace.
        assert!(!graced(
            &result(&[("platform", Status::OutOfDate, None)]),
            NOV_2024
        ));
        assert!(!graced(&platform, i64::MIN));
    }
}
