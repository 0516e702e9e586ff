//! Layers applied the way unpackers apply them, so that the file measured is the file a
//! worker runs (OCI Image Layer Filesystem Changeset: "Applying Changesets", whiteouts).
//!
//! Each layer is a tar stream (gzip members concatenated, as Go's reader, hence Docker and
//! umoci, reads them). Its entries are applied in order onto the tree of the layers below:
//! a regular file (type 0) or a hard link replaces what was at its path; a hard link
//! takes the content of its target; a directory is created; `.wh.NAME` removes NAME from the
//! lower layers and `.wh..wh..opq` empties its directory. The measured files are the regular
//! files of the final tree.
//!
//! Where unpackers disagree, or a path could mean two things, the layer is refused rather
//! than guessed: a path with `..`, a path named twice in one layer (after normalising
//! `./a`, `a//b`, `/a`), a file replacing a directory or the reverse, an entry below a
//! symbolic link, a hard link to nothing, a whiteout in the bottom layer, and any entry type
//! other than files, directories, links and whiteouts (type 7, "contiguous", among them:
//! GNU tar unpacks it as a file, umoci refuses it).

use crate::error::Error;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Most entries a layer may hold.
pub const MAX_ENTRIES: usize = 100_000;
/// Most bytes a layer may decompress to.
pub const MAX_LAYER_BYTES: u64 = 16 << 30;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// One node of the unpacked tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file: its content's sha256 and size.
    File {
        /// Lowercase hex sha256.
        sha256: String,
        /// Bytes.
        size: u64,
    },
    /// A directory.
    Dir,
    /// A symbolic link and its target.
    Symlink(String),
}

/// The unpacked file system: normalised absolute paths (`/app/iexec-llm`) to nodes.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Every node.
    pub nodes: BTreeMap<String, Node>,
}

fn refuse(layer: &str, why: impl std::fmt::Display) -> Error {
    Error::malformed(layer, format!("ambiguous or unsupported layer: {why}"))
}

/// `/a/b` from a tar path, or why it is refused.
fn normalise(layer: &str, raw: &[u8]) -> Result<String, Error> {
    let s = std::str::from_utf8(raw).map_err(|_| refuse(layer, "a path that is not UTF-8"))?;
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(refuse(layer, format!("{s:?} has a .. component"))),
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => path.get(..i),
    }
}

impl Tree {
    /// The regular files, path → sha256.
    pub fn files(&self) -> BTreeMap<String, String> {
        self.nodes
            .iter()
            .filter_map(|(p, n)| match n {
                Node::File { sha256, .. } => Some((p.clone(), sha256.clone())),
                _ => None,
            })
            .collect()
    }

    fn remove_subtree(&mut self, path: &str) {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        self.nodes
            .retain(|p, _| p != path && !(p.starts_with(&prefix) || path == "/"));
    }

    /// Refuses a path whose parent, or any ancestor, is a symbolic link or a file.
    fn check_ancestors(&self, layer: &str, path: &str) -> Result<(), Error> {
        let mut p = path;
        while let Some(up) = parent(p) {
            match self.nodes.get(up) {
                Some(Node::Symlink(_)) => {
                    return Err(refuse(
                        layer,
                        format!("{path} is below the symbolic link {up}"),
                    ))
                }
                Some(Node::File { .. }) => {
                    return Err(refuse(layer, format!("{path} is below the file {up}")))
                }
                _ => {}
            }
            p = up;
        }
        Ok(())
    }

    /// Creates the missing parent directories of `path`, as unpackers do.
    fn make_parents(&mut self, path: &str) {
        let mut p = path;
        while let Some(up) = parent(p) {
            self.nodes.entry(up.to_string()).or_insert(Node::Dir);
            p = up;
        }
    }

    /// Applies one layer's tar stream; returns the stream's sha256 (its diff_id).
    ///
    /// # Errors
    /// [`Error::Malformed`] for an unreadable or ambiguous layer (module docs).
    pub fn apply<R: Read>(
        &mut self,
        layer: &str,
        bottom: bool,
        stream: R,
    ) -> Result<String, Error> {
        let mut hashed = HashRead::new(stream.take(MAX_LAYER_BYTES + 1));
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let lower = self.nodes.clone();
        {
            let mut tar = tar::Archive::new(&mut hashed);
            let entries = tar.entries().map_err(|e| Error::malformed(layer, e))?;
            for (n, entry) in entries.enumerate() {
                if n >= MAX_ENTRIES {
                    return Err(refuse(layer, format!("more than {MAX_ENTRIES} entries")));
                }
                let mut entry = entry.map_err(|e| Error::malformed(layer, e))?;
                let path = normalise(layer, &entry.path_bytes())?;
                if !seen.insert(path.clone()) {
                    return Err(refuse(layer, format!("{path} is named twice in the layer")));
                }
                self.apply_entry(layer, bottom, &lower, &path, &mut entry)?;
            }
        }
        // The rest of the stream (end blocks, padding) is part of the diff_id.
        std::io::copy(&mut hashed, &mut std::io::sink()).map_err(|e| Error::malformed(layer, e))?;
        let (_, sha, count) = hashed.finish();
        if count > MAX_LAYER_BYTES {
            return Err(refuse(layer, format!("more than {MAX_LAYER_BYTES} B")));
        }
        Ok(sha)
    }

    fn apply_entry<R: Read>(
        &mut self,
        layer: &str,
        bottom: bool,
        lower: &BTreeMap<String, Node>,
        path: &str,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), Error> {
        let base = path.rsplit('/').next().unwrap_or_default();
        if let Some(hidden) = base.strip_prefix(WHITEOUT) {
            if bottom {
                return Err(refuse(
                    layer,
                    format!("a whiteout {path} in the bottom layer"),
                ));
            }
            let dir = parent(path).unwrap_or("/");
            self.check_ancestors(layer, path)?;
            if base == OPAQUE {
                // Everything the lower layers had in `dir` goes; this layer's entries stay.
                let prefix = format!("{}/", dir.trim_end_matches('/'));
                self.nodes
                    .retain(|p, _| !(p.starts_with(&prefix) && lower.contains_key(p)));
                return Ok(());
            }
            let target = format!("{}/{hidden}", dir.trim_end_matches('/'));
            self.remove_subtree(&target);
            return Ok(());
        }
        if path == "/" {
            return Ok(()); // the root directory entry itself
        }
        self.check_ancestors(layer, path)?;
        let kind = entry.header().entry_type();
        let node = match kind {
            tar::EntryType::Regular => {
                let mut h = Sha256::new();
                let size = std::io::copy(entry, &mut h).map_err(|e| Error::malformed(layer, e))?;
                Node::File {
                    sha256: hex::encode(h.finalize()),
                    size,
                }
            }
            tar::EntryType::Directory => Node::Dir,
            tar::EntryType::Symlink => {
                let t = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse(layer, format!("{path}: a link with no target")))?;
                Node::Symlink(String::from_utf8_lossy(&t).into_owned())
            }
            tar::EntryType::Link => {
                let t = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse(layer, format!("{path}: a link with no target")))?;
                let target = normalise(layer, &t)?;
                match self.nodes.get(&target) {
                    Some(n @ Node::File { .. }) => n.clone(),
                    _ => {
                        return Err(refuse(
                            layer,
                            format!("{path} is a hard link to {target}, which is not a file"),
                        ))
                    }
                }
            }
            // Type 7 (contiguous) among them: GNU tar writes it as a file, umoci refuses it.
            other => return Err(refuse(layer, format!("{path}: entry type {other:?}"))),
        };
        match (self.nodes.get(path), &node) {
            (Some(Node::Dir), Node::Dir) => return Ok(()),
            (Some(Node::Dir), _) => {
                return Err(refuse(layer, format!("{path}: a file over a directory")))
            }
            (Some(Node::File { .. } | Node::Symlink(_)), Node::Dir) => {
                return Err(refuse(layer, format!("{path}: a directory over a file")))
            }
            _ => {}
        }
        self.make_parents(path);
        self.nodes.insert(path.to_string(), node);
        Ok(())
    }
}

/// A reader that hashes and counts what it reads.
pub struct HashRead<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R> HashRead<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The reader, the hex sha256 of what was read, and its length.
    pub fn finish(self) -> (R, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.count = self.count.saturating_add(n as u64);
        Ok(n)
    }
}
