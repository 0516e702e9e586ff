//! The Intel SGX extensions of a PCK certificate (OID 1.2.840.113741.1.13.1): the platform's
//! TCB (16 CPU SVN components and the PCE SVN), PCE-ID and FMSPC, which select the TCB info
//! and the TCB level. Spec: Intel "SGX PCK Certificate and CRL Profile", section 1.5.

use x509_parser::der_parser::ber::BerObject;
use x509_parser::der_parser::parse_der;
use x509_parser::prelude::X509Certificate;

/// OID of the SGX extensions.
const SGX_EXTENSIONS: &str = "1.2.840.113741.1.13.1";

/// What the PCK certificate says about the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckExtensions {
    /// TCB component SVNs 1..16 (OIDs …1.2.1 to …1.2.16).
    pub cpu_svn_components: [u8; 16],
    /// PCE SVN (…1.2.17).
    pub pce_svn: u16,
    /// FMSPC (…1.4), 6 bytes.
    pub fmspc: Vec<u8>,
    /// PCE-ID (…1.3), 2 bytes.
    pub pce_id: Vec<u8>,
}

/// Reads the SGX extensions of a PCK certificate.
///
/// # Errors
/// A message naming what is missing or malformed.
pub fn extensions(cert: &X509Certificate<'_>) -> Result<PckExtensions, String> {
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == SGX_EXTENSIONS)
        .ok_or("the PCK certificate has no SGX extensions")?;
    let (_, seq) = parse_der(ext.value).map_err(|e| format!("SGX extensions: {e}"))?;
    let mut out = PckExtensions {
        cpu_svn_components: [0; 16],
        pce_svn: 0,
        fmspc: Vec::new(),
        pce_id: Vec::new(),
    };
    let (mut have_tcb, mut n_comp) = (false, 0);
    for item in entries(&seq)? {
        let (oid, value) = item;
        match oid.as_str() {
            "1.2.840.113741.1.13.1.2" => {
                have_tcb = true;
                for (sub, v) in entries(value)? {
                    let Some(idx) = sub.strip_prefix("1.2.840.113741.1.13.1.2.") else {
                        continue;
                    };
                    let idx: usize = idx.parse().map_err(|_| format!("TCB OID {sub}"))?;
                    match idx {
                        1..=16 => {
                            let svn = v
                                .as_u32()
                                .map_err(|e| format!("TCB component {idx}: {e}"))?;
                            let slot = out.cpu_svn_components.get_mut(idx - 1).ok_or("index")?;
                            *slot = u8::try_from(svn)
                                .map_err(|_| format!("component {idx} = {svn}"))?;
                            n_comp += 1;
                        }
                        17 => {
                            let svn = v.as_u32().map_err(|e| format!("PCESVN: {e}"))?;
                            out.pce_svn =
                                u16::try_from(svn).map_err(|_| format!("PCESVN {svn}"))?;
                        }
                        _ => {}
                    }
                }
            }
            "1.2.840.113741.1.13.1.3" => {
                out.pce_id = value
                    .as_slice()
                    .map_err(|e| format!("PCE-ID: {e}"))?
                    .to_vec()
            }
            "1.2.840.113741.1.13.1.4" => {
                out.fmspc = value
                    .as_slice()
                    .map_err(|e| format!("FMSPC: {e}"))?
                    .to_vec()
            }
            _ => {}
        }
    }
    if !have_tcb || n_comp != 16 || out.fmspc.len() != 6 || out.pce_id.len() != 2 {
        return Err(format!(
            "incomplete SGX extensions (TCB: {have_tcb}, {n_comp} components, FMSPC {} bytes, PCE-ID {} bytes)",
            out.fmspc.len(),
            out.pce_id.len()
        ));
    }
    Ok(out)
}

/// The (OID, value) pairs of a SEQUENCE OF SEQUENCE { OID, value }.
fn entries<'a, 'b>(seq: &'b BerObject<'a>) -> Result<Vec<(String, &'b BerObject<'a>)>, String> {
    let items = seq
        .as_sequence()
        .map_err(|e| format!("SGX extensions: {e}"))?;
    let mut out = Vec::new();
    for item in items {
        let pair = item
            .as_sequence()
            .map_err(|e| format!("SGX extension entry: {e}"))?;
        if let [oid, value] = pair.as_slice() {
            let oid = oid
                .as_oid()
                .map_err(|e| format!("SGX extension OID: {e}"))?;
            out.push((oid.to_id_string(), value));
        }
    }
    Ok(out)
}
