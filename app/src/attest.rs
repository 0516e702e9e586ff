//! TDX attestation of the result, where the platform offers it.
//!
//! The quote's REPORTDATA binds the result: `SHA-512("iexec-llm/reportdata/v1" ‖ 0x00 ‖ C)`
//! where `C` is `result.json` without its `attestation` member in canonical JSON (object keys
//! sorted by their UTF-8 bytes, no whitespace, serde_json's string escapes and number form).
//! Anyone can recompute it from the downloaded `result.json` (`verifier check-result` does).
//!
//! Two ways to get a quote, tried in order:
//! - Linux configfs-tsm (`/sys/kernel/config/tsm/report`): create an entry, write the 64
//!   bytes to `inblob`, read the quote from `outblob`, check `generation` (another writer
//!   would have bumped it), remove the entry;
//! - the dstack guest agent (`/var/run/dstack.sock`): `GET /GetQuote?report_data=<hex>`, which
//!   also returns the TD event log.
//!
//! The quote is written to `quote.bin` next to the result, the event log (the ACPI CCEL data
//! table where readable, or dstack's) to `eventlog.bin`/`eventlog.json`. When neither way
//! exists (today's iExec TDX workers give containers no TDX device) the result records
//! `unavailable` and why, and the task runs normally.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha512};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Identifies the REPORTDATA scheme.
pub const REPORTDATA_SCHEME: &str = "iexec-llm/reportdata/v1";
/// Where the quote is written in the output directory.
pub const QUOTE_FILE: &str = "quote.bin";
/// Where a CCEL event log is written.
pub const CCEL_FILE: &str = "eventlog.bin";
/// Where a dstack event log is written.
pub const DSTACK_LOG_FILE: &str = "eventlog.json";

/// The attestation record in `result.json` (not part of the claims it binds).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attestation {
    /// `configfs-tsm`, `dstack` or `unavailable`.
    pub method: &'static str,
    /// [`REPORTDATA_SCHEME`], when a quote was requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reportdata_scheme: Option<&'static str>,
    /// The REPORTDATA asked for, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_data: Option<String>,
    /// The quote's file name in the output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_file: Option<&'static str>,
    /// The event log's file name in the output, when one was readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_log_file: Option<&'static str>,
    /// configfs-tsm's `provider` (e.g. `tdx_guest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Why there is no quote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Attestation {
    fn unavailable(reason: impl Into<String>) -> Self {
        Attestation {
            method: "unavailable",
            reportdata_scheme: None,
            report_data: None,
            quote_file: None,
            event_log_file: None,
            provider: None,
            reason: Some(reason.into()),
        }
    }
}

/// Where the platform's interfaces are.
#[derive(Debug, Clone)]
pub struct Platform {
    /// configfs-tsm report directory.
    pub tsm_report: PathBuf,
    /// The ACPI CCEL data table (the TD event log).
    pub ccel: PathBuf,
    /// The dstack guest agent's socket.
    pub dstack_socket: PathBuf,
    /// How long to wait for a quote.
    pub timeout: Duration,
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            tsm_report: "/sys/kernel/config/tsm/report".into(),
            ccel: "/sys/firmware/acpi/tables/data/CCEL".into(),
            dstack_socket: "/var/run/dstack.sock".into(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Writes `v` in the canonical encoding.
pub fn canonical_json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(Value::from(k.as_str()).to_string().into_bytes());
                out.push(b':');
                canonical_json(x, out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(x, out);
            }
            out.push(b']');
        }
        other => out.extend(other.to_string().into_bytes()),
    }
}

/// REPORTDATA for the claims (`result.json` as a value; its `attestation` is left out).
pub fn report_data(result: &Value) -> [u8; 64] {
    let mut claims = result.clone();
    if let Value::Object(m) = &mut claims {
        m.shift_remove("attestation");
    }
    let mut c = Vec::new();
    canonical_json(&claims, &mut c);
    let mut h = Sha512::new();
    h.update(REPORTDATA_SCHEME.as_bytes());
    h.update([0u8]);
    h.update(&c);
    h.finalize().into()
}

/// Asks the platform for a quote over `report_data`, writes it (and the event log) into
/// `out`, and says what happened. Never fails the task.
pub fn attest(p: &Platform, report_data: &[u8; 64], out: &Path) -> Attestation {
    let requested = |method, provider, log: Option<&'static str>| Attestation {
        method,
        reportdata_scheme: Some(REPORTDATA_SCHEME),
        report_data: Some(hex::encode(report_data)),
        quote_file: Some(QUOTE_FILE),
        event_log_file: log,
        provider,
        reason: None,
    };
    if p.tsm_report.is_dir() {
        return match tsm_quote(p, report_data) {
            Ok((quote, provider)) => {
                if let Err(e) = std::fs::write(out.join(QUOTE_FILE), &quote) {
                    return Attestation::unavailable(format!("writing the quote: {e}"));
                }
                // The event log, where the kernel lets us read it.
                let log = std::fs::read(&p.ccel)
                    .ok()
                    .filter(|b| !b.is_empty())
                    .and_then(|b| std::fs::write(out.join(CCEL_FILE), b).ok())
                    .map(|()| CCEL_FILE);
                requested("configfs-tsm", provider, log)
            }
            Err(e) => Attestation::unavailable(format!("configfs-tsm: {e}")),
        };
    }
    if p.dstack_socket.exists() {
        return match dstack_quote(p, report_data) {
            Ok((quote, log)) => {
                if let Err(e) = std::fs::write(out.join(QUOTE_FILE), &quote) {
                    return Attestation::unavailable(format!("writing the quote: {e}"));
                }
                let log = log
                    .and_then(|l| std::fs::write(out.join(DSTACK_LOG_FILE), l).ok())
                    .map(|()| DSTACK_LOG_FILE);
                requested("dstack", None, log)
            }
            Err(e) => Attestation::unavailable(format!("dstack guest agent: {e}")),
        };
    }
    Attestation::unavailable(format!(
        "no TDX quote interface in this container: neither configfs-tsm ({}) nor a dstack \
         guest agent ({})",
        p.tsm_report.display(),
        p.dstack_socket.display()
    ))
}

fn tsm_quote(p: &Platform, report_data: &[u8; 64]) -> Result<(Vec<u8>, Option<String>), String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let entry = p
        .tsm_report
        .join(format!("iexec-llm-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&entry).map_err(|e| format!("creating {}: {e}", entry.display()))?;
    let result = (|| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(entry.join("inblob"))
            .and_then(|mut f| f.write_all(report_data))
            .map_err(|e| format!("writing inblob: {e}"))?;
        // The kernel produces the quote when outblob is read; wait while it is not there yet.
        let deadline = Instant::now() + p.timeout;
        let quote = loop {
            match std::fs::read(entry.join("outblob")) {
                Ok(q) if !q.is_empty() => break q,
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(_) => return Err("outblob stayed empty".to_string()),
                Err(e) => return Err(format!("reading outblob: {e}")),
            }
        };
        let provider = std::fs::read_to_string(entry.join("provider"))
            .ok()
            .map(|s| s.trim().to_string());
        if let Ok(g) = std::fs::read_to_string(entry.join("generation")) {
            if g.trim() != "1" {
                return Err(format!(
                    "generation is {} (another writer used the entry): the quote may not be ours",
                    g.trim()
                ));
            }
        }
        Ok((quote, provider))
    })();
    // configfs entries go with rmdir; a plain directory (not the kernel's) may refuse.
    let _ = std::fs::remove_dir(&entry);
    result
}

fn dstack_quote(
    p: &Platform,
    report_data: &[u8; 64],
) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    use std::os::unix::net::UnixStream;
    let mut s = UnixStream::connect(&p.dstack_socket).map_err(|e| format!("connecting: {e}"))?;
    s.set_read_timeout(Some(p.timeout))
        .map_err(|e| e.to_string())?;
    // One write: a `write!` on an unbuffered socket sends each piece of the
    // format separately, and an agent may act on the first segment it reads.
    let req = format!(
        "GET /GetQuote?report_data={} HTTP/1.1\r\nHost: dstack\r\nConnection: close\r\n\r\n",
        hex::encode(report_data)
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("sending: {e}"))?;
    let mut raw = Vec::new();
    s.take(16 << 20)
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading: {e}"))?;
    let body = http_body(&raw)?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| format!("response: {e}"))?;
    let quote = v
        .get("quote")
        .and_then(Value::as_str)
        .ok_or("the response has no quote")?;
    let quote = hex::decode(quote.trim_start_matches("0x")).map_err(|e| format!("quote: {e}"))?;
    let log = v
        .get("event_log")
        .and_then(Value::as_str)
        .map(|l| l.as_bytes().to_vec());
    Ok((quote, log))
}

/// The body of an HTTP/1.1 response (Content-Length, chunked, or up to the close).
fn http_body(raw: &[u8]) -> Result<Vec<u8>, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let head = String::from_utf8_lossy(raw.get(..split).unwrap_or_default()).to_ascii_lowercase();
    let body = raw.get(split + 4..).unwrap_or_default();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("HTTP status {status}"));
    }
    if !head.contains("transfer-encoding: chunked") {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let nl = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("malformed chunk")?;
        let size_text = String::from_utf8_lossy(rest.get(..nl).unwrap_or_default()).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "malformed chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(nl + 2..nl + 2 + size).ok_or("truncated chunk")?;
        out.extend(chunk);
        rest = rest.get(nl + 4 + size..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("attest-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn platform(root: &Path) -> Platform {
        Platform {
            tsm_report: root.join("tsm/report"),
            ccel: root.join("CCEL"),
            dstack_socket: root.join("dstack.sock"),
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn canonical_form_sorts_keys_and_drops_the_attestation() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,2.5,"x"],"x":null},"attestation":{"m":1}}"#)
                .unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,2.5,"x"]},"b":1}"#).unwrap();
        let mut c = Vec::new();
        canonical_json(&b, &mut c);
        assert_eq!(
            String::from_utf8(c).unwrap(),
            r#"{"a":{"x":null,"y":[1,2.5,"x"]},"b":1}"#
        );
        assert_eq!(report_data(&a), report_data(&b));
        let other: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,2.5,"X"]},"b":1}"#).unwrap();
        assert_ne!(report_data(&other), report_data(&b));
    }

    #[test]
    fn without_an_interface_the_record_says_unavailable_and_why() {
        let root = tmp("none");
        let a = attest(&platform(&root), &[1; 64], &root);
        assert_eq!(a.method, "unavailable");
        assert!(a.reason.unwrap().contains("tsm/report"));
        assert!(!root.join(QUOTE_FILE).exists());
    }

    #[test]
    fn configfs_tsm_entry_is_used_like_the_kernel_interface() {
        let root = tmp("tsm");
        let p = platform(&root);
        std::fs::create_dir_all(&p.tsm_report).unwrap();
        std::fs::write(&p.ccel, b"event log bytes").unwrap();
        // A stand-in for the kernel: answer each entry's inblob with "quote:" + inblob.
        let dir = p.tsm_report.clone();
        let t = std::thread::spawn(move || {
            for _ in 0..400 {
                for e in std::fs::read_dir(&dir).unwrap().flatten() {
                    let inblob = e.path().join("inblob");
                    if let Ok(b) = std::fs::read(&inblob) {
                        if b.len() == 64 {
                            let mut q = b"quote:".to_vec();
                            q.extend(b);
                            std::fs::write(e.path().join("generation"), "1\n").unwrap();
                            std::fs::write(e.path().join("outblob.tmp"), q).unwrap();
                            std::fs::rename(e.path().join("outblob.tmp"), e.path().join("outblob"))
                                .unwrap();
                            return;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        let out = root.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let a = attest(&p, &[7; 64], &out);
        t.join().unwrap();
        assert_eq!(a.method, "configfs-tsm", "{a:?}");
        assert_eq!(a.report_data.as_deref(), Some("07".repeat(64).as_str()));
        let q = std::fs::read(out.join(QUOTE_FILE)).unwrap();
        assert_eq!(&q[..6], b"quote:");
        assert_eq!(&q[6..], &[7; 64]);
        assert_eq!(
            std::fs::read(out.join(CCEL_FILE)).unwrap(),
            b"event log bytes"
        );
        assert_eq!(a.event_log_file, Some(CCEL_FILE));
    }

    #[test]
    fn a_bumped_generation_is_refused() {
        let root = tmp("gen");
        let p = platform(&root);
        std::fs::create_dir_all(&p.tsm_report).unwrap();
        let dir = p.tsm_report.clone();
        let t = std::thread::spawn(move || {
            for _ in 0..400 {
                for e in std::fs::read_dir(&dir).unwrap().flatten() {
                    if e.path().join("inblob").exists() {
                        std::fs::write(e.path().join("generation"), "2\n").unwrap();
                        std::fs::write(e.path().join("outblob"), b"q").unwrap();
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        let out = root.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let a = attest(&p, &[7; 64], &out);
        t.join().unwrap();
        assert_eq!(a.method, "unavailable");
        assert!(a.reason.unwrap().contains("generation is 2"));
    }

    #[test]
    fn dstack_guest_agent_over_its_socket() {
        use std::os::unix::net::UnixListener;
        let root = tmp("dstack");
        let p = platform(&root);
        let l = UnixListener::bind(&p.dstack_socket).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            // Read up to the end of the headers, however the bytes arrive.
            let mut req = Vec::new();
            let mut byte = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
                req.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap()
                .to_string();
            let body = format!(r#"{{"quote":"abcd","event_log":"[]","req":"{line}"}}"#);
            // Chunked, in two pieces.
            let (a, b) = body.split_at(10);
            write!(
                s,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
            .unwrap();
            line
        });
        let out = root.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let a = attest(&p, &[0xab; 64], &out);
        let line = t.join().unwrap();
        assert_eq!(
            line,
            format!("GET /GetQuote?report_data={} HTTP/1.1", "ab".repeat(64))
        );
        assert_eq!(a.method, "dstack", "{a:?}");
        assert_eq!(
            std::fs::read(out.join(QUOTE_FILE)).unwrap(),
            vec![0xab, 0xcd]
        );
        assert_eq!(std::fs::read(out.join(DSTACK_LOG_FILE)).unwrap(), b"[]");
    }
}
