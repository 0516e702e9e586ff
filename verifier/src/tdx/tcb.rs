//! TCB evaluation, following Intel's Quote Verification Library (QVL) where implementations
//! diverge (`TcbLevelCheck.cpp`, `TdxModuleCheck.cpp`, QE identity checks):
//!
//! 1. Platform level: the first TCB level (Intel lists them newest first) whose 16 SGX
//!    components are each ≤ the PCK certificate's and whose PCE SVN is ≤ the PCK's; for TDX
//!    also whose TDX components are ≤ TEE_TCB_SVN — from index 2 when TEE_TCB_SVN[1] > 0,
//!    because bytes 0 and 1 (module SVN and version) are then judged by the module identity.
//!    No such level: the TCB is not supported (reject).
//! 2. TDX module: with TEE_TCB_SVN[1] = 0, MRSIGNERSEAM and SEAMATTRIBUTES must match
//!    `tdxModule`; otherwise the identity `TDX_%02X` of TEE_TCB_SVN[1] must exist and match,
//!    and its first level with isvsvn ≤ TEE_TCB_SVN[0] gives the module status, converged with
//!    the platform's: module OutOfDate makes UpToDate/SWHardeningNeeded OutOfDate and
//!    Configuration(AndSWHardening)Needed OutOfDateConfigurationNeeded; Revoked is Revoked.
//! 3. QE identity: MRSIGNER and ISVPRODID equal, MISCSELECT and ATTRIBUTES equal under their
//!    masks; the first level with isvsvn ≤ the QE's ISVSVN gives the QE status, converged the
//!    same way.
//!
//! Advisory IDs are the union of those of every level that contributed.

use crate::tdx::collateral::{IsvLevel, QeIdentity, TcbInfo};
use crate::tdx::pck::PckExtensions;
use crate::tdx::quote::{SgxReport, TdReport};

/// Why no status could be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcbError {
    /// No platform TCB level matches (Intel: TCB_NOT_SUPPORTED).
    NoMatchingTcbLevel,
    /// The TDX module does not match the TCB info (Intel: TDX_MODULE_MISMATCH).
    TdxModuleMismatch(String),
    /// No TDX module level matches TEE_TCB_SVN[0].
    NoMatchingTdxModuleLevel(String),
    /// The QE does not match its identity (Intel: QE_IDENTITY_MISMATCH).
    QeIdentityMismatch(String),
    /// No QE identity level matches the QE's ISVSVN.
    NoMatchingQeLevel(u16),
    /// A level has a status name Intel does not define.
    UnknownStatus(String),
}

impl std::fmt::Display for TcbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TcbError::NoMatchingTcbLevel => write!(f, "no matching TCB level (TCB not supported)"),
            TcbError::TdxModuleMismatch(m) => write!(f, "TDX module mismatch: {m}"),
            TcbError::NoMatchingTdxModuleLevel(id) => {
                write!(f, "no matching TCB level in TDX module identity {id}")
            }
            TcbError::QeIdentityMismatch(m) => write!(f, "QE identity mismatch: {m}"),
            TcbError::NoMatchingQeLevel(svn) => write!(f, "no QE identity level for ISVSVN {svn}"),
            TcbError::UnknownStatus(s) => write!(f, "unknown TCB status {s:?}"),
        }
    }
}

/// Intel's TCB statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[allow(missing_docs)]
pub enum Status {
    UpToDate,
    SWHardeningNeeded,
    ConfigurationNeeded,
    ConfigurationAndSWHardeningNeeded,
    OutOfDate,
    OutOfDateConfigurationNeeded,
    Revoked,
    /// TD 1.5: the platform and running module are current but the TD was launched on an
    /// out-of-date module; relaunching it would make it UpToDate.
    TDRelaunchAdvised,
    /// As [`Status::TDRelaunchAdvised`], with configuration needed.
    TDRelaunchAdvisedConfigurationNeeded,
}

impl Status {
    /// Parses Intel's name.
    ///
    /// # Errors
    /// [`TcbError::UnknownStatus`].
    pub fn parse(s: &str) -> Result<Self, TcbError> {
        Ok(match s {
            "UpToDate" => Status::UpToDate,
            "SWHardeningNeeded" => Status::SWHardeningNeeded,
            "ConfigurationNeeded" => Status::ConfigurationNeeded,
            "ConfigurationAndSWHardeningNeeded" => Status::ConfigurationAndSWHardeningNeeded,
            "OutOfDate" => Status::OutOfDate,
            "OutOfDateConfigurationNeeded" => Status::OutOfDateConfigurationNeeded,
            "Revoked" => Status::Revoked,
            other => return Err(TcbError::UnknownStatus(other.into())),
        })
    }

    /// Intel's name.
    pub fn name(self) -> &'static str {
        match self {
            Status::UpToDate => "UpToDate",
            Status::SWHardeningNeeded => "SWHardeningNeeded",
            Status::ConfigurationNeeded => "ConfigurationNeeded",
            Status::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            Status::OutOfDate => "OutOfDate",
            Status::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            Status::Revoked => "Revoked",
            Status::TDRelaunchAdvised => "TDRelaunchAdvised",
            Status::TDRelaunchAdvisedConfigurationNeeded => "TDRelaunchAdvisedConfigurationNeeded",
        }
    }

    fn configuration_needed(self) -> bool {
        matches!(
            self,
            Status::ConfigurationNeeded
                | Status::OutOfDateConfigurationNeeded
                | Status::ConfigurationAndSWHardeningNeeded
                | Status::TDRelaunchAdvisedConfigurationNeeded
        )
    }

    /// Converges a platform status with a module or QE status (QVL's rules).
    pub fn converge(self, other: Status) -> Status {
        match other {
            Status::Revoked => Status::Revoked,
            Status::OutOfDate | Status::OutOfDateConfigurationNeeded => match self {
                Status::UpToDate | Status::SWHardeningNeeded | Status::OutOfDate => {
                    Status::OutOfDate
                }
                Status::ConfigurationNeeded
                | Status::ConfigurationAndSWHardeningNeeded
                | Status::OutOfDateConfigurationNeeded => Status::OutOfDateConfigurationNeeded,
                Status::Revoked => Status::Revoked,
                relaunch => relaunch,
            },
            _ => self,
        }
    }
}

/// The outcome of TCB evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbResult {
    /// Merged status.
    pub status: Status,
    /// Union of advisory IDs, sorted.
    pub advisory_ids: Vec<String>,
    /// The platform TCB level the quote matched: its `tcbDate` and `tcbStatus`.
    pub platform_level: Option<(String, String)>,
    /// The TCB levels above it in the TCB info (newest first): how far behind the platform
    /// is. Empty when it is at the newest level.
    pub newer_levels: Vec<(String, String)>,
    /// Each part judged (platform, TDX module, QE): its status and, when it is out of date,
    /// the `tcbDate` of the level just above the one it matched (when it fell behind).
    pub components: Vec<Part>,
}

/// One part of a TCB evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `platform`, `TDX module` or `QE`.
    pub name: &'static str,
    /// Its own status.
    pub status: Status,
    /// For an out-of-date part: the date of the level above its own, when there is one.
    pub behind_since: Option<String>,
}

fn part<T>(
    name: &'static str,
    status: Status,
    levels: &[T],
    level: &T,
    date: impl Fn(&T) -> &str,
) -> Part {
    let at = levels.iter().position(|l| std::ptr::eq(l, level));
    let behind_since = match (status, at) {
        (Status::OutOfDate | Status::OutOfDateConfigurationNeeded, Some(i)) if i > 0 => {
            levels.get(i - 1).map(|l| date(l).to_string())
        }
        _ => None,
    };
    Part {
        name,
        status,
        behind_since,
    }
}

/// The matched level and those above it, from TCB info's list (newest first).
fn placed(
    levels: &[crate::tdx::collateral::TcbLevel],
    level: &crate::tdx::collateral::TcbLevel,
    mut r: TcbResult,
) -> TcbResult {
    let at = levels
        .iter()
        .position(|l| std::ptr::eq(l, level))
        .unwrap_or(0);
    r.platform_level = Some((level.tcb_date.clone(), level.tcb_status.clone()));
    r.newer_levels = levels[..at]
        .iter()
        .map(|l| (l.tcb_date.clone(), l.tcb_status.clone()))
        .collect();
    r
}

fn hex_eq_masked(value: &[u8], expected_hex: &str, mask_hex: &str) -> bool {
    let (Ok(e), Ok(m)) = (hex::decode(expected_hex), hex::decode(mask_hex)) else {
        return false;
    };
    e.len() == value.len()
        && m.len() == value.len()
        && value.iter().zip(&m).zip(&e).all(|((v, m), e)| v & m == *e)
}

/// Evaluates the platform, TDX module (for TD quotes) and QE against the collateral.
///
/// # Errors
/// [`TcbError`] when a level or identity does not match.
pub fn evaluate(
    pck: &PckExtensions,
    td: Option<&TdReport<'_>>,
    qe: &SgxReport<'_>,
    tcb: &TcbInfo,
    qe_id: &QeIdentity,
) -> Result<TcbResult, TcbError> {
    let mut advisories: Vec<String> = Vec::new();

    // Step 0: the QE identity first: its status takes part in the TD relaunch rule.
    let ql = qe_level(qe, qe_id)?;
    let qe_status = Status::parse(&ql.tcb_status)?;

    // Step 1: platform level. SGX: components and PCE SVN; TDX: also TEE_TCB_SVN.
    let sgx_level = tcb
        .tcb_levels
        .iter()
        .find(|l| sgx_matches(pck, l))
        .ok_or(TcbError::NoMatchingTcbLevel)?;
    let sgx_status = Status::parse(&sgx_level.tcb_status)?;
    let Some(td) = td else {
        advisories.extend(sgx_level.advisory_ids.iter().cloned());
        advisories.extend(ql.advisory_ids.iter().cloned());
        let mut r = finish(sgx_status.converge(qe_status), advisories);
        r.components = vec![
            part("platform", sgx_status, &tcb.tcb_levels, sgx_level, |l| {
                &l.tcb_date
            }),
            part("QE", qe_status, &qe_id.tcb_levels, ql, |l| &l.tcb_date),
        ];
        return Ok(placed(&tcb.tcb_levels, sgx_level, r));
    };
    let s = td.tee_tcb_svn;
    let tdx_from = if s[1] > 0 { 2 } else { 0 };
    let level = tcb
        .tcb_levels
        .iter()
        .filter(|l| sgx_matches(pck, l))
        .find(|l| {
            l.tcb.tdxtcbcomponents.len() == 16
                && l.tcb
                    .tdxtcbcomponents
                    .iter()
                    .zip(s.iter())
                    .skip(tdx_from)
                    .all(|(c, v)| *v >= c.svn)
        })
        .ok_or(TcbError::NoMatchingTcbLevel)?;
    advisories.extend(level.advisory_ids.iter().cloned());

    // Step 2: TDX module identity and status.
    let (module_status, module_part) = module(td, tcb, &mut advisories)?;
    let mut status = Status::parse(&level.tcb_status)?.converge(module_status);
    if status == Status::Revoked {
        return Ok(placed(&tcb.tcb_levels, level, finish(status, advisories)));
    }

    // Step 2b: TD 1.5 relaunch (QVL TDRelaunchCheck).
    if relaunch_advised(td, tcb, qe_status, sgx_status, status, module_status)? {
        status = if sgx_status.configuration_needed() || status.configuration_needed() {
            Status::TDRelaunchAdvisedConfigurationNeeded
        } else {
            Status::TDRelaunchAdvised
        };
    }

    // Step 3: the QE.
    advisories.extend(ql.advisory_ids.iter().cloned());
    let mut r = finish(status.converge(qe_status), advisories);
    let platform_status = Status::parse(&level.tcb_status)?;
    r.components = vec![
        part("platform", platform_status, &tcb.tcb_levels, level, |l| {
            &l.tcb_date
        }),
        module_part,
        part("QE", qe_status, &qe_id.tcb_levels, ql, |l| &l.tcb_date),
    ];
    Ok(placed(&tcb.tcb_levels, level, r))
}

/// The QE report against the QE identity; its first level at or below the QE's ISVSVN.
fn qe_level<'a>(
    qe: &SgxReport<'_>,
    q: &'a QeIdentity,
) -> Result<&'a crate::tdx::collateral::IsvLevel, TcbError> {
    let mismatch = |what: &str| TcbError::QeIdentityMismatch(what.into());
    if !hex_eq_masked(qe.mr_signer, &q.mrsigner, &"FF".repeat(32)) {
        return Err(mismatch("MRSIGNER"));
    }
    if qe.isv_prod_id != q.isvprodid {
        return Err(mismatch("ISVPRODID"));
    }
    if !hex_eq_masked(
        &qe.misc_select.to_be_bytes(),
        &q.miscselect,
        &q.miscselect_mask,
    ) {
        return Err(mismatch("MISCSELECT"));
    }
    if !hex_eq_masked(qe.attributes, &q.attributes, &q.attributes_mask) {
        return Err(mismatch("ATTRIBUTES"));
    }
    first_isv_level(&q.tcb_levels, qe.isv_svn).ok_or(TcbError::NoMatchingQeLevel(qe.isv_svn))
}

/// Whether the PCK's SGX components and PCE SVN reach a level.
fn sgx_matches(pck: &PckExtensions, l: &crate::tdx::collateral::TcbLevel) -> bool {
    l.tcb.sgxtcbcomponents.len() == 16
        && l.tcb
            .sgxtcbcomponents
            .iter()
            .zip(pck.cpu_svn_components)
            .all(|(c, p)| p >= c.svn)
        && pck.pce_svn >= l.tcb.pcesvn
}

/// Step 2: the TDX module's identity (MRSIGNERSEAM, SEAMATTRIBUTES) and its status: the
/// `tdxModule` of the TCB info when TEE_TCB_SVN[1] is 0, else `tdxModuleIdentities`.
fn module(
    td: &TdReport<'_>,
    tcb: &TcbInfo,
    advisories: &mut Vec<String>,
) -> Result<(Status, Part), TcbError> {
    let s = td.tee_tcb_svn;
    let (mrsigner, attributes, mask) = if s[1] == 0 {
        match &tcb.tdx_module {
            Some(m) => (&m.mrsigner, &m.attributes, &m.attributes_mask),
            None => {
                return Err(TcbError::TdxModuleMismatch(
                    "the TCB info has no tdxModule".into(),
                ))
            }
        }
    } else {
        let m = module_identity(tcb, s[1])?;
        (&m.mrsigner, &m.attributes, &m.attributes_mask)
    };
    if !hex_eq_masked(td.mr_signer_seam, mrsigner, &"FF".repeat(48)) {
        return Err(TcbError::TdxModuleMismatch(
            "MRSIGNERSEAM differs from the TCB info".into(),
        ));
    }
    if !hex_eq_masked(td.seam_attributes, attributes, mask) {
        return Err(TcbError::TdxModuleMismatch(
            "SEAMATTRIBUTES differ from the TCB info".into(),
        ));
    }
    let up = Part {
        name: "TDX module",
        status: Status::UpToDate,
        behind_since: None,
    };
    if s[1] == 0 {
        return Ok((Status::UpToDate, up));
    }
    let id = format!("TDX_{:02X}", s[1]);
    let levels = &module_identity(tcb, s[1])?.tcb_levels;
    let ml =
        first_isv_level(levels, u16::from(s[0])).ok_or(TcbError::NoMatchingTdxModuleLevel(id))?;
    advisories.extend(ml.advisory_ids.iter().cloned());
    let st = Status::parse(&ml.tcb_status)?;
    Ok((st, part("TDX module", st, levels, ml, |l| &l.tcb_date)))
}

/// Step 2b: a TD 1.5 runs on an out-of-date module while the platform is current and
/// TEE_TCB_SVN2 (the module it would get on relaunch) reaches the newest level.
fn relaunch_advised(
    td: &TdReport<'_>,
    tcb: &TcbInfo,
    qe_status: Status,
    sgx_status: Status,
    status: Status,
    module_status: Status,
) -> Result<bool, TcbError> {
    let Some(svn2) = td.tee_tcb_svn2 else {
        return Ok(false);
    };
    let qe_ok = matches!(qe_status, Status::UpToDate);
    let sgx_ok = matches!(
        sgx_status,
        Status::UpToDate
            | Status::SWHardeningNeeded
            | Status::ConfigurationNeeded
            | Status::ConfigurationAndSWHardeningNeeded
    );
    let tdx_out = matches!(
        status,
        Status::OutOfDate | Status::OutOfDateConfigurationNeeded
    );
    if !(qe_ok && sgx_ok && tdx_out && module_status == Status::OutOfDate) {
        return Ok(false);
    }
    let latest = tcb.tcb_levels.first().ok_or(TcbError::NoMatchingTcbLevel)?;
    let comp = |i: usize| latest.tcb.tdxtcbcomponents.get(i).map_or(0, |c| c.svn);
    let module_ok = if svn2[1] == 0 {
        svn2[0] >= comp(0)
    } else {
        let m2 = module_identity(tcb, svn2[1])?;
        let newest = m2
            .tcb_levels
            .first()
            .ok_or_else(|| TcbError::NoMatchingTdxModuleLevel(m2.id.clone()))?;
        u16::from(svn2[0]) >= newest.tcb.isvsvn
    };
    Ok(module_ok && svn2[2] >= comp(2))
}

fn module_identity(
    tcb: &TcbInfo,
    version: u8,
) -> Result<&crate::tdx::collateral::TdxModuleIdentity, TcbError> {
    let id = format!("TDX_{version:02X}");
    tcb.tdx_module_identities
        .iter()
        .find(|m| m.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| TcbError::TdxModuleMismatch(format!("no module identity {id}")))
}

fn finish(status: Status, mut advisories: Vec<String>) -> TcbResult {
    advisories.sort();
    advisories.dedup();
    TcbResult {
        status,
        advisory_ids: advisories,
        platform_level: None,
        newer_levels: Vec::new(),
        components: Vec::new(),
    }
}

fn first_isv_level(levels: &[IsvLevel], svn: u16) -> Option<&IsvLevel> {
    levels.iter().find(|l| svn >= l.tcb.isvsvn)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tdx::collateral::{QeIdentity, TcbInfo};

    fn tcb_info() -> TcbInfo {
        let comps = |v: [u8; 3]| {
            let mut c: Vec<serde_json::Value> =
                v.iter().map(|s| serde_json::json!({"svn": s})).collect();
            c.resize(16, serde_json::json!({"svn": 0}));
            c
        };
        serde_json::from_value(serde_json::json!({
            "id": "TDX", "version": 3, "issueDate": "2026-01-01T00:00:00Z",
            "nextUpdate": "2026-02-01T00:00:00Z", "fmspc": "00", "pceId": "0000",
            "tdxModule": {"mrsigner": "00".repeat(48), "attributes": "0000000000000000",
                          "attributesMask": "FFFFFFFFFFFFFFFF"},
            "tdxModuleIdentities": [{"id": "TDX_01", "mrsigner": "00".repeat(48),
                "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF",
                "tcbLevels": [
                    {"tcb": {"isvsvn": 4}, "tcbDate": "x", "tcbStatus": "UpToDate"},
                    {"tcb": {"isvsvn": 2}, "tcbDate": "x", "tcbStatus": "OutOfDate",
                     "advisoryIDs": ["INTEL-SA-1"]}]}],
            "tcbLevels": [
                {"tcb": {"sgxtcbcomponents": comps([2, 2, 2]), "pcesvn": 11,
                         "tdxtcbcomponents": comps([4, 1, 3])},
                 "tcbDate": "x", "tcbStatus": "UpToDate"},
                {"tcb": {"sgxtcbcomponents": comps([2, 2, 2]), "pcesvn": 11,
                         "tdxtcbcomponents": comps([2, 1, 2])},
                 "tcbDate": "x", "tcbStatus": "OutOfDate", "advisoryIDs": ["INTEL-SA-2"]}]
        }))
        .unwrap()
    }

    fn qe_identity() -> QeIdentity {
        serde_json::from_value(serde_json::json!({
            "id": "TD_QE", "version": 2, "issueDate": "x", "nextUpdate": "x",
            "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
            "attributes": "00".repeat(16), "attributesMask": "00".repeat(16),
            "mrsigner": "11".repeat(32), "isvprodid": 2,
            "tcbLevels": [{"tcb": {"isvsvn": 4}, "tcbDate": "x", "tcbStatus": "UpToDate"}]
        }))
        .unwrap()
    }

    /// (TEE_TCB_SVN[0..3], TEE_TCB_SVN2[0..3] or none) -> status and advisories.
    fn eval(svn: [u8; 3], svn2: Option<[u8; 3]>) -> Result<TcbResult, TcbError> {
        let pck = PckExtensions {
            cpu_svn_components: [2; 16],
            pce_svn: 11,
            fmspc: vec![0; 6],
            pce_id: vec![0; 2],
        };
        let raw = [0u8; 384];
        let (z16, z32, z48, z64, z8) = ([0u8; 16], [0x11u8; 32], [0u8; 48], [0u8; 64], [0u8; 8]);
        let qe = SgxReport {
            raw: &raw,
            cpu_svn: &z16,
            misc_select: 0,
            attributes: &z16,
            mr_enclave: &z32,
            mr_signer: &z32,
            isv_prod_id: 2,
            isv_svn: 4,
            report_data: &z64,
        };
        let mut tee = [0u8; 16];
        tee[..3].copy_from_slice(&svn);
        let mut tee2 = [0u8; 16];
        if let Some(s2) = svn2 {
            tee2[..3].copy_from_slice(&s2);
        }
        let td = TdReport {
            tee_tcb_svn: &tee,
            mr_seam: &z48,
            mr_signer_seam: &z48,
            seam_attributes: &z8,
            td_attributes: &z8,
            xfam: &z8,
            mr_td: &z48,
            mr_config_id: &z48,
            mr_owner: &z48,
            mr_owner_config: &z48,
            rtmr: [&z48, &z48, &z48, &z48],
            report_data: &z64,
            tee_tcb_svn2: svn2.map(|_| &tee2),
            mr_servicetd: svn2.map(|_| &z48),
        };
        evaluate(&pck, Some(&td), &qe, &tcb_info(), &qe_identity())
    }

    #[test]
    fn module_and_relaunch_rules_follow_intel_qvl() {
        let s = |r: Result<TcbResult, TcbError>| r.map(|t| (t.status, t.advisory_ids));
        let adv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Current module on a current platform.
        assert_eq!(s(eval([4, 1, 3], None)), Ok((Status::UpToDate, adv(&[]))));
        // Out-of-date module: the platform level is current (index 0/1 are the module's), the
        // module level converges it to OutOfDate.
        assert_eq!(
            s(eval([2, 1, 3], None)),
            Ok((Status::OutOfDate, adv(&["INTEL-SA-1"])))
        );
        // TD 1.5 on that module, whose relaunch would get the newest module: relaunch advised.
        assert_eq!(
            s(eval([2, 1, 3], Some([4, 1, 3]))),
            Ok((Status::TDRelaunchAdvised, adv(&["INTEL-SA-1"])))
        );
        // ... but not when the relaunch module is not the newest either.
        assert_eq!(
            s(eval([2, 1, 3], Some([3, 1, 3]))).map(|x| x.0),
            Ok(Status::OutOfDate)
        );
        // A TD behind on TDX component 2 too is advised to relaunch when TEE_TCB_SVN2 (what a
        // relaunch gets) reaches the newest level on both module and component 2...
        assert_eq!(
            s(eval([2, 1, 2], Some([4, 1, 3]))).map(|x| x.0),
            Ok(Status::TDRelaunchAdvised)
        );
        // ... and not when component 2 would stay behind.
        assert_eq!(
            s(eval([2, 1, 2], Some([4, 1, 2]))).map(|x| x.0),
            Ok(Status::OutOfDate)
        );
        // Unknown module version, no level at all.
        assert!(matches!(
            eval([4, 7, 3], None),
            Err(TcbError::TdxModuleMismatch(_))
        ));
        assert_eq!(
            eval([1, 1, 3], None),
            Err(TcbError::NoMatchingTdxModuleLevel("TDX_01".into()))
        );
        assert_eq!(eval([4, 0, 1], None), Err(TcbError::NoMatchingTcbLevel));
    }
}
