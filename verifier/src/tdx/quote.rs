//! Bytes → [`Quote`]: typed, borrowed views of an Intel DCAP quote, and nothing else.
//!
//! Layouts (Intel "TDX DCAP Quoting Library API" and "SGX ECDSA Quote Library API"):
//! - header, 48 bytes: version, attestation key type, TEE type, QE/PCE SVNs (v3) or
//!   reserved (v4/v5), QE vendor id, user data;
//! - v3: SGX report body (384); v4: TD report body TD 1.0 (584); v5: body type (u16: 1 SGX,
//!   2 TD 1.0, 3 TD 1.5) and body size (u32), then the body (TD 1.5: 648 bytes, adding
//!   TEE_TCB_SVN2 and MRSERVICETD);
//! - signature data: its length (u32), the ECDSA-P256 signature over header ‖ body (everything
//!   before the length), the attestation public key, then certification data. For v4/v5 that is
//!   type 6 (QE report certification data: QE report, its signature, QE authentication data
//!   and nested certification data, type 5 = PCK certificate chain); v3 carries the QE report
//!   fields directly.
//!
//! **Trailing bytes.** Bytes after the signature data (some quote producers pad the buffer)
//! are covered by no signature. The parser accepts them, never reads them, and reports their
//! count ([`Quote::trailing`]), so a verifier can show them; they never change a verdict.

use crate::error::Error;

/// Header size.
pub const HEADER_LEN: usize = 48;
/// SGX report body (also the QE report) size.
pub const SGX_REPORT_LEN: usize = 384;
/// TD 1.0 report body size.
pub const TD10_REPORT_LEN: usize = 584;
/// TD 1.5 report body size.
pub const TD15_REPORT_LEN: usize = 648;
/// ECDSA-P256 signature (r ‖ s) and public key (x ‖ y) sizes.
pub const SIG_LEN: usize = 64;
/// TEE type of SGX quotes.
pub const TEE_SGX: u32 = 0x0000_0000;
/// TEE type of TDX quotes.
pub const TEE_TDX: u32 = 0x0000_0081;
/// Attestation key type ECDSA-256-with-P-256.
pub const ATT_KEY_ECDSA_P256: u16 = 2;
/// Certification data: PCK certificate chain (PEM).
pub const CERT_PCK_CHAIN: u16 = 5;
/// Certification data: QE report certification data.
pub const CERT_QE_REPORT: u16 = 6;
/// Largest quote accepted (real ones are about 5 KB).
pub const MAX_QUOTE_LEN: usize = 1 << 20;

/// A parsed quote. Fields borrow from the input bytes.
#[derive(Debug, Clone)]
pub struct Quote<'a> {
    /// The 48-byte header.
    pub header: Header<'a>,
    /// The report body.
    pub body: Body<'a>,
    /// The bytes the attestation key signs: header and body (v5: with body type and size).
    pub signed: &'a [u8],
    /// Attestation key's ECDSA-P256 signature, r ‖ s.
    pub signature: &'a [u8; SIG_LEN],
    /// Attestation public key, x ‖ y.
    pub attestation_key: &'a [u8; SIG_LEN],
    /// The QE report and the PCK chain that certifies it.
    pub qe: QeCertification<'a>,
    /// Number of bytes after the signature data (covered by no signature).
    pub trailing: usize,
}

/// Quote header.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// 3, 4 or 5.
    pub version: u16,
    /// Attestation key type (2 = ECDSA-P256).
    pub att_key_type: u16,
    /// [`TEE_SGX`] or [`TEE_TDX`].
    pub tee_type: u32,
    /// QE SVN (v3), reserved (v4/v5).
    pub qe_svn: u16,
    /// PCE SVN (v3), reserved (v4/v5).
    pub pce_svn: u16,
    /// QE vendor id (Intel: 939a7233f79c4ca9940a0db3957f0607).
    pub qe_vendor_id: &'a [u8; 16],
    /// User data (first 16 bytes: platform identifier of the QE).
    pub user_data: &'a [u8; 20],
}

/// The report body of a quote.
#[derive(Debug, Clone)]
pub enum Body<'a> {
    /// An SGX enclave report (v3, or v5 body type 2).
    Sgx(SgxReport<'a>),
    /// A TD report (v4: TD 1.0; v5: TD 1.0 or TD 1.5).
    Td(TdReport<'a>),
}

/// SGX report body (also the layout of the QE report). Intel SGX SDM `REPORTBODY`.
#[derive(Debug, Clone)]
pub struct SgxReport<'a> {
    /// The raw 384 bytes.
    pub raw: &'a [u8; SGX_REPORT_LEN],
    /// CPUSVN.
    pub cpu_svn: &'a [u8; 16],
    /// MISCSELECT.
    pub misc_select: u32,
    /// ATTRIBUTES (flags ‖ XFRM).
    pub attributes: &'a [u8; 16],
    /// MRENCLAVE.
    pub mr_enclave: &'a [u8; 32],
    /// MRSIGNER.
    pub mr_signer: &'a [u8; 32],
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// REPORTDATA.
    pub report_data: &'a [u8; 64],
}

/// TD report body. Intel TDX Module spec, `TDREPORT`/`TDINFO` as carried in quotes.
#[derive(Debug, Clone)]
pub struct TdReport<'a> {
    /// TEE_TCB_SVN: [0] module SVN, [1] module major version, [2..] other components.
    pub tee_tcb_svn: &'a [u8; 16],
    /// MRSEAM.
    pub mr_seam: &'a [u8; 48],
    /// MRSIGNERSEAM (zero for Intel's module).
    pub mr_signer_seam: &'a [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: &'a [u8; 8],
    /// TDATTRIBUTES; bit 0 of byte 0 is DEBUG (TUD.DEBUG).
    pub td_attributes: &'a [u8; 8],
    /// XFAM.
    pub xfam: &'a [u8; 8],
    /// MRTD: measurement of the initial TD contents.
    pub mr_td: &'a [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: &'a [u8; 48],
    /// MROWNER.
    pub mr_owner: &'a [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: &'a [u8; 48],
    /// RTMR0..3.
    pub rtmr: [&'a [u8; 48]; 4],
    /// REPORTDATA.
    pub report_data: &'a [u8; 64],
    /// TD 1.5 only: TEE_TCB_SVN2.
    pub tee_tcb_svn2: Option<&'a [u8; 16]>,
    /// TD 1.5 only: MRSERVICETD.
    pub mr_servicetd: Option<&'a [u8; 48]>,
}

impl TdReport<'_> {
    /// TDATTRIBUTES.TUD.DEBUG: the TD can be inspected by the host.
    pub fn debug(&self) -> bool {
        self.td_attributes[0] & 1 == 1
    }
}

/// The QE report and its certification.
#[derive(Debug, Clone)]
pub struct QeCertification<'a> {
    /// The QE's SGX report.
    pub report: SgxReport<'a>,
    /// PCK's ECDSA-P256 signature over the QE report, r ‖ s.
    pub report_signature: &'a [u8; SIG_LEN],
    /// QE authentication data (bound into the QE report's REPORTDATA).
    pub auth_data: &'a [u8],
    /// Certification data type (5 = PCK chain).
    pub cert_type: u16,
    /// Certification data (type 5: PEM certificates, leaf first).
    pub cert_data: &'a [u8],
}

/// A cursor that hands out fixed-size borrowed pieces of the input.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(malformed(format!(
                "truncated: {what} needs {n} bytes at offset {}, {} left",
                self.pos,
                self.bytes.len().saturating_sub(self.pos)
            )));
        };
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| malformed("bad slice".into()))?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<&'a [u8; N], Error> {
        self.take(N, what)?
            .try_into()
            .map_err(|_| malformed(format!("{what}: bad length")))
    }

    fn u16(&mut self, what: &str) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(*self.array::<2>(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(*self.array::<4>(what)?))
    }
}

fn malformed(reason: String) -> Error {
    Error::malformed("quote", reason)
}

/// Parses a quote (v3 SGX, v4 TDX, v5 TDX/SGX).
///
/// # Errors
/// [`Error::Malformed`] naming the first problem: an unsupported version, TEE or key type, a
/// length that runs past the end, an unknown body or certification data type.
pub fn parse(bytes: &[u8]) -> Result<Quote<'_>, Error> {
    if bytes.len() > MAX_QUOTE_LEN {
        return Err(malformed(format!(
            "{} bytes is too large for a quote",
            bytes.len()
        )));
    }
    let mut r = Reader { bytes, pos: 0 };
    // Step 1: header.
    let version = r.u16("version")?;
    let att_key_type = r.u16("attestation key type")?;
    let tee_type = r.u32("TEE type")?;
    let qe_svn = r.u16("QE SVN")?;
    let pce_svn = r.u16("PCE SVN")?;
    let qe_vendor_id = r.array::<16>("QE vendor id")?;
    let user_data = r.array::<20>("user data")?;
    if att_key_type != ATT_KEY_ECDSA_P256 {
        return Err(malformed(format!(
            "attestation key type {att_key_type} (only 2, ECDSA-P256)"
        )));
    }
    let header = Header {
        version,
        att_key_type,
        tee_type,
        qe_svn,
        pce_svn,
        qe_vendor_id,
        user_data,
    };

    // Step 2: body.
    let body = match (version, tee_type) {
        (3, TEE_SGX) => Body::Sgx(sgx_report(r.array("SGX report body")?)?),
        (4, TEE_TDX) => Body::Td(td_report(&mut r, false)?),
        (5, TEE_SGX | TEE_TDX) => {
            let body_type = r.u16("body type")?;
            let size = r.u32("body size")? as usize;
            let (want, body) = match body_type {
                1 => (SGX_REPORT_LEN, None),
                2 => (TD10_REPORT_LEN, Some(false)),
                3 => (TD15_REPORT_LEN, Some(true)),
                t => return Err(malformed(format!("body type {t} (1, 2 or 3)"))),
            };
            if size != want {
                return Err(malformed(format!(
                    "body type {body_type} has size {size}, not {want}"
                )));
            }
            match (body, tee_type) {
                (None, TEE_SGX) => Body::Sgx(sgx_report(r.array("SGX report body")?)?),
                (Some(td15), TEE_TDX) => Body::Td(td_report(&mut r, td15)?),
                _ => {
                    return Err(malformed(format!(
                        "body type {body_type} in a TEE {tee_type:#x} quote"
                    )))
                }
            }
        }
        (v, t) => {
            return Err(malformed(format!(
                "version {v} with TEE type {t:#x} is not supported"
            )))
        }
    };
    let signed = bytes
        .get(..r.pos)
        .ok_or_else(|| malformed("bad slice".into()))?;

    // Step 3: signature data.
    let sig_len = r.u32("signature data length")? as usize;
    let sig_data = r.take(sig_len, "signature data")?;
    let trailing = bytes.len().saturating_sub(r.pos);
    let mut s = Reader {
        bytes: sig_data,
        pos: 0,
    };
    let signature = s.array::<SIG_LEN>("quote signature")?;
    let attestation_key = s.array::<SIG_LEN>("attestation key")?;
    let qe = if version == 3 {
        qe_certification(&mut s)?
    } else {
        let cert_type = s.u16("certification data type")?;
        let size = s.u32("certification data size")? as usize;
        if cert_type != CERT_QE_REPORT {
            return Err(malformed(format!(
                "certification data type {cert_type} (expected 6)"
            )));
        }
        let mut inner = Reader {
            bytes: s.take(size, "QE report certification data")?,
            pos: 0,
        };
        qe_certification(&mut inner)?
    };
    Ok(Quote {
        header,
        body,
        signed,
        signature,
        attestation_key,
        qe,
        trailing,
    })
}

fn qe_certification<'a>(r: &mut Reader<'a>) -> Result<QeCertification<'a>, Error> {
    let report = sgx_report(r.array("QE report")?)?;
    let report_signature = r.array::<SIG_LEN>("QE report signature")?;
    let auth_len = r.u16("QE authentication data size")? as usize;
    let auth_data = r.take(auth_len, "QE authentication data")?;
    let cert_type = r.u16("PCK certification data type")?;
    let cert_len = r.u32("PCK certification data size")? as usize;
    let cert_data = r.take(cert_len, "PCK certification data")?;
    if cert_type != CERT_PCK_CHAIN {
        return Err(malformed(format!(
            "PCK certification data type {cert_type} (only 5, the PCK certificate chain)"
        )));
    }
    Ok(QeCertification {
        report,
        report_signature,
        auth_data,
        cert_type,
        cert_data,
    })
}

/// Splits an SGX report body into its fields (offsets: Intel SGX SDM, REPORTBODY).
fn sgx_report(raw: &[u8; SGX_REPORT_LEN]) -> Result<SgxReport<'_>, Error> {
    const _: () = assert!(16 + 4 + 28 + 16 + 32 + 32 + 32 + 96 + 2 + 2 + 60 + 64 == SGX_REPORT_LEN);
    let mut r = Reader { bytes: raw, pos: 0 };
    let w = "SGX report body";
    let cpu_svn = r.array(w)?;
    let misc_select = r.u32(w)?;
    r.take(28, w)?;
    let attributes = r.array(w)?;
    let mr_enclave = r.array(w)?;
    r.take(32, w)?;
    let mr_signer = r.array(w)?;
    r.take(96, w)?;
    let isv_prod_id = r.u16(w)?;
    let isv_svn = r.u16(w)?;
    r.take(60, w)?;
    let report_data = r.array(w)?;
    Ok(SgxReport {
        raw,
        cpu_svn,
        misc_select,
        attributes,
        mr_enclave,
        mr_signer,
        isv_prod_id,
        isv_svn,
        report_data,
    })
}

fn td_report<'a>(r: &mut Reader<'a>, td15: bool) -> Result<TdReport<'a>, Error> {
    let w = "TD report body";
    Ok(TdReport {
        tee_tcb_svn: r.array(w)?,
        mr_seam: r.array(w)?,
        mr_signer_seam: r.array(w)?,
        seam_attributes: r.array(w)?,
        td_attributes: r.array(w)?,
        xfam: r.array(w)?,
        mr_td: r.array(w)?,
        mr_config_id: r.array(w)?,
        mr_owner: r.array(w)?,
        mr_owner_config: r.array(w)?,
        rtmr: [r.array(w)?, r.array(w)?, r.array(w)?, r.array(w)?],
        report_data: r.array(w)?,
        tee_tcb_svn2: if td15 { Some(r.array(w)?) } else { None },
        mr_servicetd: if td15 { Some(r.array(w)?) } else { None },
    })
}

/// Reads a quote file: binary, or hex text (whitespace ignored, optional `0x`).
///
/// # Errors
/// [`Error::Malformed`] if a text file is not valid hex.
pub fn decode_file_bytes(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let text = std::str::from_utf8(bytes).ok().map(str::trim);
    match text {
        Some(t)
            if !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace() || b == b'x') =>
        {
            let clean: String = t
                .trim_start_matches("0x")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            hex::decode(clean).map_err(|e| Error::malformed("quote hex", e))
        }
        _ => Ok(bytes.to_vec()),
    }
}
