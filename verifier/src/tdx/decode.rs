//! Every field of a parsed quote as (name, value) pairs, in quote order, for `verifier decode`.

use crate::tdx::quote::{Body, Quote, SgxReport};

/// The fields of a quote, hex-encoded where they are bytes.
pub fn fields(q: &Quote<'_>) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: String| f.push((k.to_string(), v));
    let h = &q.header;
    add("version", h.version.to_string());
    add("att_key_type", h.att_key_type.to_string());
    add(
        "tee_type",
        format!(
            "{:#04x} ({})",
            h.tee_type,
            if h.tee_type == 0 { "SGX" } else { "TDX" }
        ),
    );
    add("qe_svn", h.qe_svn.to_string());
    add("pce_svn", h.pce_svn.to_string());
    add("qe_vendor_id", hex::encode(h.qe_vendor_id));
    add("user_data", hex::encode(h.user_data));
    match &q.body {
        Body::Td(td) => {
            add(
                "body",
                if td.tee_tcb_svn2.is_some() {
                    "TD 1.5".into()
                } else {
                    "TD 1.0".into()
                },
            );
            add("tee_tcb_svn", hex::encode(td.tee_tcb_svn));
            add("mr_seam", hex::encode(td.mr_seam));
            add("mr_signer_seam", hex::encode(td.mr_signer_seam));
            add("seam_attributes", hex::encode(td.seam_attributes));
            add(
                "td_attributes",
                format!(
                    "{}{}",
                    hex::encode(td.td_attributes),
                    if td.debug() { " (DEBUG)" } else { "" }
                ),
            );
            add("xfam", hex::encode(td.xfam));
            add("mr_td", hex::encode(td.mr_td));
            add("mr_config_id", hex::encode(td.mr_config_id));
            add("mr_owner", hex::encode(td.mr_owner));
            add("mr_owner_config", hex::encode(td.mr_owner_config));
            for (i, r) in td.rtmr.iter().enumerate() {
                add(&format!("rtmr{i}"), hex::encode(r));
            }
            add("report_data", hex::encode(td.report_data));
            if let (Some(svn2), Some(st)) = (td.tee_tcb_svn2, td.mr_servicetd) {
                add("tee_tcb_svn2", hex::encode(svn2));
                add("mr_servicetd", hex::encode(st));
            }
        }
        Body::Sgx(r) => {
            add("body", "SGX enclave".into());
            sgx(&mut add, "", r);
        }
    }
    add("signature", hex::encode(q.signature));
    add("attestation_key", hex::encode(q.attestation_key));
    sgx(&mut add, "qe_report.", &q.qe.report);
    add("qe_report_signature", hex::encode(q.qe.report_signature));
    add("qe_auth_data", hex::encode(q.qe.auth_data));
    add("cert_data_type", q.qe.cert_type.to_string());
    add("cert_data_bytes", q.qe.cert_data.len().to_string());
    add("trailing_bytes", q.trailing.to_string());
    f
}

fn sgx(add: &mut impl FnMut(&str, String), p: &str, r: &SgxReport<'_>) {
    add(&format!("{p}cpu_svn"), hex::encode(r.cpu_svn));
    add(
        &format!("{p}misc_select"),
        format!("{:#010x}", r.misc_select),
    );
    add(&format!("{p}attributes"), hex::encode(r.attributes));
    add(&format!("{p}mr_enclave"), hex::encode(r.mr_enclave));
    add(&format!("{p}mr_signer"), hex::encode(r.mr_signer));
    add(&format!("{p}isv_prod_id"), r.isv_prod_id.to_string());
    add(&format!("{p}isv_svn"), r.isv_svn.to_string());
    add(&format!("{p}report_data"), hex::encode(r.report_data));
}
