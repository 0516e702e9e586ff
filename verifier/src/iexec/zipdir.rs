//! A zip's directory, read by hand before any entry is decompressed, so that no entry can hide
//! behind another (APPNOTE.TXT 6.3: §4.3.16 end of central directory, §4.3.12 central
//! directory headers, §4.3.7 local file headers).
//!
//! The zip crate keeps one entry per name: a zip holding a forged `result.json` and then the
//! genuine one was verified from the genuine one while `unzip -n` extracts the forged one.
//! Here every central-directory entry is listed, and a zip is refused when:
//! - the end record declares more than [`MAX_ENTRIES`] entries, or a directory larger than
//!   the file (checked before a single entry is read), or is ZIP64, spanned, or not unique;
//! - two names are equal after normalising (`a/./b`, `a//b`, a trailing `/`, ASCII case, as
//!   case-insensitive file systems unpack them), or a name is not a plain relative path;
//! - a central entry disagrees with its local header about the name, or two entries' data
//!   overlap (one stored stream read as two files).

use crate::error::Error;

/// Most entries a result archive may hold.
pub const MAX_ENTRIES: usize = 10_000;

const EOCD_SIG: u32 = 0x0605_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
/// End record without its comment.
const EOCD_LEN: usize = 22;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;

/// One central-directory entry, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The name as stored.
    pub name: String,
    /// The name normalised (no `./`, no empty components, no trailing `/`).
    pub normalised: String,
    /// Whether the name ends with `/` (a directory).
    pub is_dir: bool,
    /// Whether the entry's external attributes mark a symbolic link (Unix mode 0o120000).
    pub is_symlink: bool,
    /// Offset of the local header.
    pub local_offset: u64,
    /// Compressed size.
    pub compressed: u64,
    /// Uncompressed size, as declared.
    pub size: u64,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::malformed("result archive", reason.into())
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, Error> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or_else(|| bad("truncated zip structure"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, Error> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| bad("truncated zip structure"))
}

/// `name` normalised, or why it is not a plain relative path.
///
/// # Errors
/// [`Error::Malformed`] naming the entry.
pub fn normalise(name: &str) -> Result<String, Error> {
    let refuse = |why: &str| {
        bad(format!(
            "entry {name:?} is not a plain relative path ({why})"
        ))
    };
    if name.starts_with('/') || name.contains('\\') {
        return Err(refuse("absolute, or a backslash"));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse("a control character"));
    }
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(refuse("a .. component")),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(refuse("empty"));
    }
    Ok(parts.join("/"))
}

/// Lists the central directory of `zip` and checks it as the module docs say.
///
/// # Errors
/// [`Error::Malformed`] naming the first problem.
pub fn list(zip: &[u8]) -> Result<Vec<RawEntry>, Error> {
    let eocd = find_eocd(zip)?;
    let disk = u16_at(zip, eocd + 4)?;
    let cd_disk = u16_at(zip, eocd + 6)?;
    let here = usize::from(u16_at(zip, eocd + 8)?);
    let total = usize::from(u16_at(zip, eocd + 10)?);
    let cd_size = u32_at(zip, eocd + 12)? as usize;
    let cd_offset = u32_at(zip, eocd + 16)? as usize;
    if disk != 0 || cd_disk != 0 || here != total {
        return Err(bad("a spanned (multi-disk) zip"));
    }
    if total == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        return Err(bad(
            "a ZIP64 archive (a result is far smaller than ZIP64's 4 GiB)",
        ));
    }
    if eocd >= 20 && u32_at(zip, eocd - 20)? == ZIP64_LOCATOR_SIG {
        return Err(bad(
            "a ZIP64 archive (a ZIP64 locator precedes the end record)",
        ));
    }
    if total > MAX_ENTRIES {
        return Err(bad(format!(
            "{total} entries declared, more than {MAX_ENTRIES}"
        )));
    }
    if cd_offset.checked_add(cd_size) != Some(eocd) {
        return Err(bad(format!(
            "the central directory ({cd_size} B at {cd_offset}) does not end at the end record ({eocd})"
        )));
    }
    let mut entries = Vec::with_capacity(total);
    let mut at = cd_offset;
    while at < eocd {
        if entries.len() == total {
            return Err(bad(format!(
                "more central entries than the {total} declared"
            )));
        }
        let (entry, next) = central_entry(zip, at)?;
        entries.push(entry);
        at = next;
    }
    if entries.len() != total || at != eocd {
        return Err(bad(format!(
            "{} central entries, {total} declared",
            entries.len()
        )));
    }
    check_unique(&entries)?;
    check_local_headers(zip, &entries, cd_offset)?;
    Ok(entries)
}

/// The one end-of-central-directory record, whose comment runs exactly to the end.
fn find_eocd(zip: &[u8]) -> Result<usize, Error> {
    let last = zip
        .len()
        .checked_sub(EOCD_LEN)
        .ok_or_else(|| bad("not a zip: too short"))?;
    let first = last.saturating_sub(0xFFFF);
    let found: Vec<usize> = (first..=last)
        .rev()
        .filter(|&i| u32_at(zip, i).ok() == Some(EOCD_SIG))
        .filter(|&i| u16_at(zip, i + 20).is_ok_and(|c| i + EOCD_LEN + usize::from(c) == zip.len()))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(bad("not a zip: no end of central directory record")),
        _ => Err(bad("more than one end of central directory record")),
    }
}

fn central_entry(zip: &[u8], at: usize) -> Result<(RawEntry, usize), Error> {
    if u32_at(zip, at)? != CENTRAL_SIG {
        return Err(bad(format!("no central directory header at {at}")));
    }
    let compressed = u64::from(u32_at(zip, at + 20)?);
    let size = u64::from(u32_at(zip, at + 24)?);
    let name_len = usize::from(u16_at(zip, at + 28)?);
    let extra_len = usize::from(u16_at(zip, at + 30)?);
    let comment_len = usize::from(u16_at(zip, at + 32)?);
    let external = u32_at(zip, at + 38)?;
    let local_offset = u64::from(u32_at(zip, at + 42)?);
    if compressed == 0xFFFF_FFFF || size == 0xFFFF_FFFF || local_offset == 0xFFFF_FFFF {
        return Err(bad("a ZIP64 entry"));
    }
    let name_at = at + CENTRAL_LEN;
    let raw = zip
        .get(name_at..name_at + name_len)
        .ok_or_else(|| bad("truncated central directory"))?;
    let name = std::str::from_utf8(raw)
        .map_err(|_| bad(format!("entry at {at}: its name is not UTF-8")))?
        .to_string();
    let normalised = normalise(&name)?;
    let is_symlink = (external >> 16) & 0o170000 == 0o120000;
    let next = name_at + name_len + extra_len + comment_len;
    Ok((
        RawEntry {
            is_dir: name.ends_with('/'),
            name,
            normalised,
            is_symlink,
            local_offset,
            compressed,
            size,
        },
        next,
    ))
}

fn check_unique(entries: &[RawEntry]) -> Result<(), Error> {
    let mut seen = std::collections::BTreeMap::new();
    for e in entries {
        let key = e.normalised.to_ascii_lowercase();
        if let Some(first) = seen.insert(key, &e.name) {
            return Err(bad(format!(
                "entries {first:?} and {:?} name the same file once unpacked",
                e.name
            )));
        }
    }
    Ok(())
}

/// Every local header has the central entry's name, and no two entries' data overlap.
fn check_local_headers(zip: &[u8], entries: &[RawEntry], cd_offset: usize) -> Result<(), Error> {
    let mut spans = Vec::with_capacity(entries.len());
    for e in entries {
        let at = usize::try_from(e.local_offset).map_err(|_| bad("offset out of range"))?;
        if u32_at(zip, at)? != LOCAL_SIG {
            return Err(bad(format!("{:?}: no local header at {at}", e.name)));
        }
        let name_len = usize::from(u16_at(zip, at + 26)?);
        let extra_len = usize::from(u16_at(zip, at + 28)?);
        let local_name = zip.get(at + LOCAL_LEN..at + LOCAL_LEN + name_len);
        if local_name != Some(e.name.as_bytes()) {
            return Err(bad(format!(
                "{:?}: its local header names another file",
                e.name
            )));
        }
        let data = at + LOCAL_LEN + name_len + extra_len;
        let end = usize::try_from(e.compressed)
            .ok()
            .and_then(|c| data.checked_add(c))
            .filter(|end| *end <= cd_offset)
            .ok_or_else(|| bad(format!("{:?}: its data runs past the directory", e.name)))?;
        spans.push((at, end, &e.name));
    }
    spans.sort();
    for pair in spans.windows(2) {
        if let [(_, end, a), (start, _, b)] = pair {
            if start < end {
                return Err(bad(format!("entries {a:?} and {b:?} overlap")));
            }
        }
    }
    Ok(())
}
