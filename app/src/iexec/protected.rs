//! Protected data as iExec's DataProtector makes it: `createZipFromObject` stores an object
//! as an uncompressed zip, one entry per key (nested keys as folders, with folder entries of
//! their own), and the worker's pre-compute writes that zip, decrypted, to
//! `$IEXEC_IN/$IEXEC_DATASET_FILENAME`.
//!
//! Values are decoded as the official reader (`@iexec/dataprotector-deserializer` 0.1.1,
//! `getValue`, default "optimistic" mode) decodes them, for both serializations:
//! - DataProtector 2.x writes borsh: a string is a u32 little-endian byte length and UTF-8, a
//!   number an f64 (8 bytes LE), a bigint an i128 (16 bytes LE);
//! - DataProtector 0.5.x writes a string as raw UTF-8 and a number as decimal text; a string
//!   whose first four bytes are not a length that fits the entry is raw UTF-8 (the reader's
//!   fallback).
//!
//! Where the official reader would hand an app something that is not the text a user
//! protected, we refuse instead, naming the field: text that is not valid UTF-8 (it decodes
//! leniently or replaces bytes with U+FFFD), a borsh string followed by more bytes (a number
//! stored where the prompt should be reads as `""` there), a text field holding control
//! characters (a boolean reads as `"\u{1}"`). And a long string decodes whole (the official
//! reader hits a call-stack limit past ~123,000 characters and returns the raw bytes, length
//! prefix included).
//!
//! The fields read: `prompt` (required), `system`, and the task parameters of
//! [`crate::params::KNOWN`] but `prompt`/`system`, so that they stay off chain. Any other
//! field is an error naming it: a misspelt parameter must not be silently ignored.

use crate::error::Error;
use std::io::Read;

/// Most entries a protected-data zip may hold (folders included).
pub const MAX_ENTRIES: usize = 64;
/// Most bytes a field may hold: the prompt limit and its length prefix.
pub const MAX_FIELD_BYTES: u64 = crate::iexec::MAX_PROMPT_BYTES + 4;

/// What a protected dataset holds, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Protected {
    /// The prompt.
    pub prompt: String,
    /// The system prompt, if the dataset has one.
    pub system: Option<String>,
    /// Task parameters, as `key=value` text for [`crate::params`].
    pub params: Vec<(String, String)>,
    /// Every field read, sorted (recorded in `result.json`; never their values).
    pub fields: Vec<String>,
}

/// Whether a dataset is a zip (a local file header first).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

fn bad(why: impl std::fmt::Display) -> Error {
    Error::Input(format!("the protected dataset: {why}"))
}

/// How a field is typed.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Integer,
    Number,
}

fn kind(field: &str) -> Option<Kind> {
    Some(match field {
        "prompt" | "system" | "template" => Kind::Text,
        "max_tokens" | "seed" | "context" | "time_budget" => Kind::Integer,
        "temperature" | "top_p" => Kind::Number,
        _ => return None,
    })
}

/// Reads a DataProtector zip.
///
/// # Errors
/// [`Error::Input`] for a damaged or oversized zip, an entry outside the archive, a missing
/// `prompt`, a field of another type or an unknown field, each naming the field.
pub fn read(bytes: &[u8]) -> Result<Protected, Error> {
    let declared = declared_entries(bytes)?;
    if declared > MAX_ENTRIES {
        return Err(bad(format!(
            "{declared} entries, more than the {MAX_ENTRIES} a prompt needs"
        )));
    }
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("not a readable zip: {e}")))?;
    if z.len() != declared {
        return Err(bad("two entries have the same name"));
    }
    let mut out = Protected {
        prompt: String::new(),
        system: None,
        params: Vec::new(),
        fields: Vec::new(),
    };
    let mut prompt = None;
    for i in 0..z.len() {
        let mut f = z.by_index(i).map_err(|e| bad(format!("entry {i}: {e}")))?;
        let name = f
            .enclosed_name()
            .and_then(|p| p.to_str().map(String::from))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad(format!("entry {i} is not a plain relative path")))?;
        if f.is_dir() {
            continue; // nested objects' folders; their fields, if any, are refused below
        }
        if f.is_symlink() {
            return Err(bad(format!("field {name} is a symbolic link")));
        }
        let k = kind(&name).ok_or_else(|| {
            bad(format!(
                "unknown field {name:?} (known: {})",
                crate::params::KNOWN.join(", ")
            ))
        })?;
        if f.size() > MAX_FIELD_BYTES {
            return Err(bad(format!(
                "field {name} declares {} bytes, more than {MAX_FIELD_BYTES}",
                f.size()
            )));
        }
        let mut value = Vec::new();
        (&mut f)
            .take(MAX_FIELD_BYTES + 1)
            .read_to_end(&mut value)
            .map_err(|e| bad(format!("field {name}: {e}")))?;
        if value.len() as u64 > MAX_FIELD_BYTES {
            return Err(bad(format!(
                "field {name} is more than {MAX_FIELD_BYTES} bytes"
            )));
        }
        let text = match k {
            Kind::Text => text(&name, &value)?,
            Kind::Integer => integer(&name, &value)?,
            Kind::Number => number(&name, &value)?,
        };
        match name.as_str() {
            "prompt" => prompt = Some(text),
            "system" => out.system = Some(text),
            _ => out.params.push((name.clone(), text)),
        }
        out.fields.push(name);
    }
    out.prompt = prompt.ok_or_else(|| bad("no field \"prompt\""))?;
    out.fields.sort();
    Ok(out)
}

/// Entries the end-of-central-directory record declares (the zip crate keeps one entry per
/// name, so a smaller count after reading means a repeated name).
fn declared_entries(bytes: &[u8]) -> Result<usize, Error> {
    const EOCD: &[u8] = b"PK\x05\x06";
    let from = bytes.len().saturating_sub(22 + 0xFFFF);
    let at = bytes
        .get(from..)
        .and_then(|tail| tail.windows(4).rposition(|w| w == EOCD))
        .map(|i| from + i)
        .ok_or_else(|| bad("not a zip: no end of central directory (truncated?)"))?;
    let n = bytes
        .get(at + 10..at + 12)
        .ok_or_else(|| bad("truncated end of central directory"))?;
    Ok(usize::from(u16::from_le_bytes([n[0], n[1]])))
}

/// A string: borsh (length-prefixed) when the prefix fits the entry, else raw UTF-8. A text
/// field must be text: bytes after a borsh string (a number read as one) or control
/// characters other than tab and line breaks (a boolean, raw bytes) are an error, where the
/// official reader would hand the app an empty string or `"\u{1}"`.
fn text(field: &str, v: &[u8]) -> Result<String, Error> {
    let borsh = v.get(..4).and_then(|p| {
        let n = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize;
        v.get(4..4usize.checked_add(n)?)
            .map(|s| (s, v.len() - 4 - n))
    });
    let bytes = match borsh {
        Some((_, trailing)) if trailing > 0 => {
            return Err(bad(format!(
                "field {field} is not a string ({} bytes: a {}-byte borsh string and {trailing} \
                 more)",
                v.len(),
                v.len() - trailing
            )))
        }
        Some((s, _)) => s,
        None => v,
    };
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
        bad(format!(
            "field {field} is not valid UTF-8 text (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(bad(format!(
            "field {field} is not text (it holds control characters)"
        )));
    }
    Ok(text)
}

/// Decimal text as 0.5.x writes numbers (`Number.toString()`): digits, sign, point, exponent.
fn decimal_text(v: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(v).ok()?;
    (!s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)))
    .then_some(s)
}

/// A number field: decimal text, an f64, as the parameter parser reads it.
fn number(field: &str, v: &[u8]) -> Result<String, Error> {
    if let Some(s) = decimal_text(v) {
        return Ok(s.to_string());
    }
    match <[u8; 8]>::try_from(v) {
        Ok(b) => Ok(f64::from_le_bytes(b).to_string()),
        Err(_) => Err(bad(format!(
            "field {field} is {} bytes, not a number (an f64, or decimal text)",
            v.len()
        ))),
    }
}

/// An integer field: decimal text, an integral f64, or an i128 (a JavaScript bigint).
fn integer(field: &str, v: &[u8]) -> Result<String, Error> {
    if let Some(s) = decimal_text(v) {
        return Ok(s.to_string());
    }
    if let Ok(b) = <[u8; 16]>::try_from(v) {
        return Ok(i128::from_le_bytes(b).to_string());
    }
    match <[u8; 8]>::try_from(v) {
        Ok(b) => {
            let x = f64::from_le_bytes(b);
            if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e19 {
                Ok(format!("{x:.0}"))
            } else {
                Err(bad(format!("field {field} is {x}, not an integer")))
            }
        }
        Err(_) => Err(bad(format!(
            "field {field} is {} bytes, not an integer (an f64, a bigint, or decimal text)",
            v.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn borsh(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u32).to_le_bytes().to_vec();
        v.extend(s.as_bytes());
        v
    }

    #[test]
    fn values_decode_as_the_official_reader_decodes_them() {
        assert_eq!(text("p", &borsh("hi")).unwrap(), "hi");
        assert_eq!(text("p", &borsh("")).unwrap(), "");
        assert_eq!(text("p", b"What is it?").unwrap(), "What is it?"); // 0.5.x raw
        assert_eq!(text("p", b"ab").unwrap(), "ab"); // shorter than a prefix
        let mut trailing = borsh("hi");
        trailing.extend(b"XYZ");
        assert!(text("p", &trailing)
            .unwrap_err()
            .to_string()
            .contains("not a string"));
        assert!(text("p", &42f64.to_le_bytes())
            .unwrap_err()
            .to_string()
            .contains("not a string"));
        assert!(text("p", &[1])
            .unwrap_err()
            .to_string()
            .contains("not text"));
        assert_eq!(number("t", &0.7f64.to_le_bytes()).unwrap(), "0.7");
        assert_eq!(number("t", b"0.5").unwrap(), "0.5");
        assert_eq!(integer("m", &64f64.to_le_bytes()).unwrap(), "64");
        assert_eq!(integer("m", b"64").unwrap(), "64");
        assert_eq!(
            integer("s", &(1i128 << 70).to_le_bytes()).unwrap(),
            "1180591620717411303424"
        );
        assert!(integer("m", &1.5f64.to_le_bytes())
            .unwrap_err()
            .to_string()
            .contains("not an integer"));
        assert!(integer("m", &[1])
            .unwrap_err()
            .to_string()
            .contains("1 bytes"));
        assert!(text("p", b"\xff\xfe")
            .unwrap_err()
            .to_string()
            .contains("not valid UTF-8"));
    }
}
