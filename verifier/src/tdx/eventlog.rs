//! TD event logs and their replay into RTMR0..3.
//!
//! Two formats:
//! - **CCEL** (ACPI "CC Event Log", TCG PC Client crypto-agile format): a legacy
//!   `TCG_PCClientPCREvent` header event ("Spec ID Event03", listing digest sizes), then
//!   `TCG_PCR_EVENT2` records {MR index u32, event type u32, digest count u32, (algorithm u16,
//!   digest)*, event size u32, event}. Parsing stops at an all-0xFF or all-zero header.
//! - **dstack JSON**: `[{imr, event_type, digest, event, event_payload}]`; for dstack runtime
//!   events (type 0x08000001) the digest is recomputed as SHA-384(le32(type) ‖ ":" ‖ event ‖
//!   ":" ‖ payload), so the names and payloads shown are the measured ones.
//!
//! Replay: every RTMR starts at 48 zero bytes; for each event that is not EV_NO_ACTION (3),
//! RTMR[i] = SHA-384(RTMR[i] ‖ SHA-384 digest). CCEL MR index 1..4 is RTMR0..3 (0 is MRTD).

use crate::error::Error;
use sha2::{Digest, Sha384};

/// EV_NO_ACTION: informational, not extended.
pub const EV_NO_ACTION: u32 = 3;
/// dstack runtime events.
pub const DSTACK_RUNTIME_EVENT: u32 = 0x0800_0001;
/// TCG algorithm id of SHA-384.
const ALG_SHA384: u16 = 0x000C;
/// Largest event accepted (real ones are a few KB).
const MAX_EVENT: usize = 1 << 24;

/// One measured event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// RTMR it extends (0..3), or `None` for MRTD / informational events.
    pub rtmr: Option<usize>,
    /// Event type.
    pub event_type: u32,
    /// SHA-384 digest extended into the RTMR.
    pub digest: [u8; 48],
    /// A name for people: the dstack event name, or the printable start of the event data.
    pub name: String,
    /// The measured payload, hex, where the format carries one apart from the name (dstack
    /// runtime events: e.g. the compose hash or app id); empty otherwise.
    pub payload: String,
}

/// RTMR0..3 after replaying `events`.
pub fn replay(events: &[Event]) -> [[u8; 48]; 4] {
    let mut rtmr = [[0u8; 48]; 4];
    for e in events {
        if e.event_type == EV_NO_ACTION {
            continue;
        }
        if let Some(r) = e.rtmr.and_then(|i| rtmr.get_mut(i)) {
            let mut h = Sha384::new();
            h.update(*r);
            h.update(e.digest);
            r.copy_from_slice(&h.finalize());
        }
    }
    rtmr
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| {
                Error::malformed(
                    "CCEL",
                    format!("truncated: {n} bytes needed at offset {}", self.pos),
                )
            })?;
        let s = self.b.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u16(&mut self) -> Result<u16, Error> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn peek_header_end(&self) -> bool {
        match self.b.get(self.pos..self.pos.saturating_add(8)) {
            None => true,
            Some(h) => h.iter().all(|x| *x == 0xFF) || h.iter().all(|x| *x == 0),
        }
    }
}

/// A printable label for event data: ASCII (or UTF-16LE ASCII) text up to 48 characters.
fn label(data: &[u8]) -> String {
    let ascii: String = data
        .iter()
        .take_while(|c| c.is_ascii_graphic() || **c == b' ')
        .take(48)
        .map(|c| *c as char)
        .collect();
    if ascii.len() >= 4 {
        return ascii;
    }
    let utf16: String = data
        .chunks_exact(2)
        .take_while(|c| c[1] == 0 && (c[0].is_ascii_graphic() || c[0] == b' '))
        .take(48)
        .map(|c| c[0] as char)
        .collect();
    if utf16.len() >= 4 {
        utf16
    } else {
        String::new()
    }
}

/// Parses a CCEL event log area.
///
/// # Errors
/// [`Error::Malformed`] for a truncated record, a missing Spec ID header, or a digest
/// algorithm the header does not declare.
pub fn parse_ccel(bytes: &[u8]) -> Result<Vec<Event>, Error> {
    let mut c = Cursor { b: bytes, pos: 0 };
    // Step 1: the legacy Spec ID event, which lists the digest algorithms and their sizes.
    let _pcr = c.u32()?;
    let ty = c.u32()?;
    c.take(20)?;
    let size = c.u32()? as usize;
    if ty != EV_NO_ACTION || size > MAX_EVENT {
        return Err(Error::malformed("CCEL", "no Spec ID header event"));
    }
    let spec = c.take(size)?;
    if !spec.starts_with(b"Spec ID Event03") {
        return Err(Error::malformed(
            "CCEL",
            "the header event is not Spec ID Event03",
        ));
    }
    let mut s = Cursor { b: spec, pos: 24 };
    let n_alg = s.u32()? as usize;
    let mut sizes = Vec::new();
    for _ in 0..n_alg.min(16) {
        let alg = s.u16()?;
        let sz = s.u16()? as usize;
        sizes.push((alg, sz));
    }
    // Step 2: crypto-agile events until the end marker.
    let mut events = Vec::new();
    while !c.peek_header_end() {
        let mr = c.u32()?;
        let event_type = c.u32()?;
        let count = c.u32()? as usize;
        if count > 16 {
            return Err(Error::malformed(
                "CCEL",
                format!("{count} digests in one event"),
            ));
        }
        let mut digest = None;
        for _ in 0..count {
            let alg = c.u16()?;
            let sz = sizes
                .iter()
                .find(|(a, _)| *a == alg)
                .map(|(_, s)| *s)
                .ok_or_else(|| {
                    Error::malformed("CCEL", format!("undeclared digest algorithm {alg:#06x}"))
                })?;
            let d = c.take(sz)?;
            if alg == ALG_SHA384 {
                digest = <[u8; 48]>::try_from(d).ok();
            }
        }
        let size = c.u32()? as usize;
        if size > MAX_EVENT {
            return Err(Error::malformed("CCEL", format!("event of {size} bytes")));
        }
        let data = c.take(size)?;
        let digest =
            digest.ok_or_else(|| Error::malformed("CCEL", "an event has no SHA-384 digest"))?;
        let rtmr = (1..=4).contains(&mr).then(|| mr as usize - 1);
        events.push(Event {
            rtmr,
            event_type,
            digest,
            name: label(data),
            payload: String::new(),
        });
    }
    Ok(events)
}

#[derive(serde::Deserialize)]
struct DstackEvent {
    imr: u32,
    event_type: u32,
    digest: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    event_payload: String,
}

/// Parses a dstack JSON event log (an array, or a string holding one).
///
/// # Errors
/// [`Error::Malformed`] for bad JSON, hex or an IMR outside 0..3.
pub fn parse_dstack(json: &str) -> Result<Vec<Event>, Error> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| Error::malformed("event log", e))?;
    let v = match v {
        serde_json::Value::String(s) => {
            serde_json::from_str(&s).map_err(|e| Error::malformed("event log", e))?
        }
        other => other,
    };
    let raw: Vec<DstackEvent> =
        serde_json::from_value(v).map_err(|e| Error::malformed("event log", e))?;
    raw.into_iter()
        .map(|e| {
            if e.imr > 3 {
                return Err(Error::malformed("event log", format!("imr {}", e.imr)));
            }
            let digest: [u8; 48] = if e.event_type == DSTACK_RUNTIME_EVENT {
                let payload = hex::decode(&e.event_payload)
                    .map_err(|x| Error::malformed("event payload", x))?;
                let mut h = Sha384::new();
                h.update(e.event_type.to_le_bytes());
                h.update(b":");
                h.update(e.event.as_bytes());
                h.update(b":");
                h.update(&payload);
                h.finalize().into()
            } else {
                let d = hex::decode(&e.digest).map_err(|x| Error::malformed("event digest", x))?;
                d.try_into()
                    .map_err(|_| Error::malformed("event digest", "not 48 bytes"))?
            };
            Ok(Event {
                rtmr: Some(e.imr as usize),
                event_type: e.event_type,
                digest,
                name: e.event,
                payload: if e.event_type == DSTACK_RUNTIME_EVENT {
                    e.event_payload
                } else {
                    String::new()
                },
            })
        })
        .collect()
}
