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

use crate::collateral::{IsvLevel, QeIdentity, TcbInfo};
use crate::pck::PckExtensions;
use crate::quote::{SgxReport, TdReport};

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
        }
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
    // Step 1: platform level.
    let svn = td.map(|t| t.tee_tcb_svn);
    let tdx_from = match svn {
        Some(s) if s[1] > 0 => 2,
        _ => 0,
    };
    let level = tcb
        .tcb_levels
        .iter()
        .find(|l| {
            let sgx_ok = l.tcb.sgxtcbcomponents.len() == 16
                && l.tcb
                    .sgxtcbcomponents
                    .iter()
                    .zip(pck.cpu_svn_components)
                    .all(|(c, p)| p >= c.svn);
            let pce_ok = pck.pce_svn >= l.tcb.pcesvn;
            let tdx_ok = match svn {
                None => true,
                Some(s) => {
                    l.tcb.tdxtcbcomponents.len() == 16
                        && l.tcb
                            .tdxtcbcomponents
                            .iter()
                            .zip(s.iter())
                            .skip(tdx_from)
                            .all(|(c, v)| *v >= c.svn)
                }
            };
            sgx_ok && pce_ok && tdx_ok
        })
        .ok_or(TcbError::NoMatchingTcbLevel)?;
    let mut status = Status::parse(&level.tcb_status)?;
    advisories.extend(level.advisory_ids.iter().cloned());

    // Step 2: TDX module.
    if let Some(td) = td {
        let s = td.tee_tcb_svn;
        if s[1] == 0 {
            if let Some(m) = &tcb.tdx_module {
                if !hex_eq_masked(td.mr_signer_seam, &m.mrsigner, &"FF".repeat(48))
                    || !hex_eq_masked(td.seam_attributes, &m.attributes, &m.attributes_mask)
                {
                    return Err(TcbError::TdxModuleMismatch(
                        "MRSIGNERSEAM or SEAMATTRIBUTES differ from tdxModule".into(),
                    ));
                }
            }
        } else {
            let id = format!("TDX_{:02X}", s[1]);
            let m = tcb
                .tdx_module_identities
                .iter()
                .find(|m| m.id == id)
                .ok_or_else(|| TcbError::TdxModuleMismatch(format!("no module identity {id}")))?;
            if !hex_eq_masked(td.mr_signer_seam, &m.mrsigner, &"FF".repeat(48))
                || !hex_eq_masked(td.seam_attributes, &m.attributes, &m.attributes_mask)
            {
                return Err(TcbError::TdxModuleMismatch(format!(
                    "MRSIGNERSEAM or SEAMATTRIBUTES differ from {id}"
                )));
            }
            let ml = first_isv_level(&m.tcb_levels, u16::from(s[0]))
                .ok_or_else(|| TcbError::NoMatchingTdxModuleLevel(id.clone()))?;
            status = status.converge(Status::parse(&ml.tcb_status)?);
            advisories.extend(ml.advisory_ids.iter().cloned());
        }
    }

    // Step 3: QE identity.
    let q = qe_id;
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
    let ql = first_isv_level(&q.tcb_levels, qe.isv_svn)
        .ok_or(TcbError::NoMatchingQeLevel(qe.isv_svn))?;
    status = status.converge(Status::parse(&ql.tcb_status)?);
    advisories.extend(ql.advisory_ids.iter().cloned());

    advisories.sort();
    advisories.dedup();
    Ok(TcbResult {
        status,
        advisory_ids: advisories,
    })
}

fn first_isv_level(levels: &[IsvLevel], svn: u16) -> Option<&IsvLevel> {
    levels.iter().find(|l| svn >= l.tcb.isvsvn)
}
