//! Recomputes an image's measurement from an OCI layout, trusting nothing in it: every blob
//! is hashed and compared with the digest that names it, every layer is decompressed (every
//! gzip member) and its tar hashed (the config's `diff_ids`), the layers are applied as an
//! unpacker applies them ([`super::tree`]), and every regular file of the final tree is
//! hashed. The result is then compared with an expected `measurement.json`.
//!
//! Blobs and documents must be regular files (a link to `/dev/zero` or a FIFO is refused
//! before it is opened) and are read with bounds.
//!
//! Spec: OCI Image Layout v1.1 (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), OCI Image
//! Manifest and Configuration v1.1.

use super::tree::{HashRead, Node, Tree};
use crate::error::Error;
use crate::report::{Check, Report};
use oci_image::Measurement;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Largest JSON document (index, manifest, config) read from a layout.
const MAX_JSON: u64 = 4 << 20;

/// What a layout holds, recomputed.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Manifest digest from `index.json`.
    pub manifest_digest: String,
    /// Config digest from the manifest.
    pub config_digest: String,
    /// Layers, bottom first.
    pub layers: Vec<MeasuredLayer>,
    /// The config's Entrypoint.
    pub entrypoint: Vec<String>,
    /// sha256 of every regular file of the unpacked tree, by absolute path.
    pub files: BTreeMap<String, String>,
    /// The unpacked tree, every node (links and directories too).
    pub tree: Tree,
}

/// One layer, recomputed.
#[derive(Debug, Clone)]
pub struct MeasuredLayer {
    /// Digest named by the manifest.
    pub digest: String,
    /// sha256 of the blob's bytes.
    pub blob_sha256: String,
    /// Size named by the manifest.
    pub size: u64,
    /// Bytes in the blob.
    pub blob_size: u64,
    /// `diff_id` named by the config.
    pub diff_id: String,
    /// sha256 of the decompressed tar.
    pub tar_sha256: String,
}

/// Reads a layout and recomputes its digests. Integrity failures (a blob whose bytes do not
/// match its name) are reported as failed checks in the returned report, naming the blob.
///
/// # Errors
/// [`Error`] when the layout cannot be read or parsed at all.
pub fn measure(layout: &Path, reference: Option<&str>) -> Result<(Measured, Report), Error> {
    let mut report = Report::default();

    // Step 1: index.json -> the manifest descriptor.
    let index = read_json(&layout.join("index.json"), "index.json")?;
    let manifests = index["manifests"]
        .as_array()
        .ok_or_else(|| Error::malformed("index.json", "no manifests array"))?;
    let chosen: Vec<&Value> = manifests
        .iter()
        .filter(|m| match reference {
            Some(r) => m["annotations"]["org.opencontainers.image.ref.name"] == r,
            None => true,
        })
        .collect();
    let [desc] = chosen.as_slice() else {
        return Err(Error::malformed(
            "index.json",
            format!(
                "{} manifests match {reference:?}; name exactly one",
                chosen.len()
            ),
        ));
    };
    let manifest_digest = str_field(desc, "digest", "index.json")?;

    // Step 2: the manifest blob, checked against its digest.
    let manifest = read_blob_json(layout, desc, "manifest", &mut report)?;
    let config_desc = &manifest["config"];
    let config_digest = str_field(config_desc, "digest", "manifest")?;

    // Step 3: the config blob.
    let config = read_blob_json(layout, config_desc, "config", &mut report)?;
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| Error::malformed("config", "no rootfs.diff_ids"))?
        .iter()
        .map(|d| d.as_str().unwrap_or_default().to_string())
        .collect();
    let entrypoint: Vec<String> = config["config"]["Entrypoint"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();

    // Step 4: every layer: blob digest, diff_id, and the files inside.
    let layer_descs = manifest["layers"]
        .as_array()
        .ok_or_else(|| Error::malformed("manifest", "no layers array"))?;
    if layer_descs.len() != diff_ids.len() {
        return Err(Error::malformed(
            "config",
            format!(
                "{} diff_ids for {} layers",
                diff_ids.len(),
                layer_descs.len()
            ),
        ));
    }
    let (layers, tree) = unpack(layout, layer_descs, &diff_ids, &mut report)?;
    Ok((
        Measured {
            manifest_digest,
            config_digest,
            layers,
            entrypoint,
            files: tree.files(),
            tree,
        },
        report,
    ))
}

/// Step 4 of [`measure`]: each layer's blob hashed and, when intact (and every layer below
/// it too), decompressed and applied onto the tree.
fn unpack(
    layout: &Path,
    layer_descs: &[Value],
    diff_ids: &[String],
    report: &mut Report,
) -> Result<(Vec<MeasuredLayer>, Tree), Error> {
    let mut layers = Vec::new();
    let mut tree = Tree::default();
    let mut unpacked = true;
    for (i, (ld, diff_id)) in layer_descs.iter().zip(diff_ids).enumerate() {
        let digest = str_field(ld, "digest", "manifest layer")?;
        let size = ld["size"].as_u64().unwrap_or(0);
        let path = blob_path(layout, &digest)?;
        let name = format!("layer {i} ({digest})");
        // The blob's bytes first; a blob that is not what its name says is not unpacked.
        let (blob_sha256, blob_size) = hash_file(&path)?;
        let intact = format!("sha256:{blob_sha256}") == digest;
        report.checks.push(Check::equal(
            format!("{name} blob sha256"),
            &digest,
            &format!("sha256:{blob_sha256}"),
        ));
        report.checks.push(Check::equal(
            format!("{name} size"),
            &size.to_string(),
            &blob_size.to_string(),
        ));
        let tar_sha256 = if intact && unpacked {
            let f = open_regular(&path)?;
            let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
            let t = tree.apply(&name, i == 0, gz)?;
            report.checks.push(Check::equal(
                format!("{name} diff_id"),
                diff_id,
                &format!("sha256:{t}"),
            ));
            t
        } else {
            // A layer above one not unpacked is not unpacked either: the tree would be wrong.
            unpacked = false;
            report.checks.push(Check {
                name: format!("{name} diff_id"),
                pass: false,
                expected: diff_id.clone(),
                found: "(not computed: the blob, or one below it, does not match its digest)"
                    .into(),
            });
            String::new()
        };
        layers.push(MeasuredLayer {
            digest,
            blob_sha256,
            size,
            blob_size,
            diff_id: diff_id.clone(),
            tar_sha256,
        });
    }
    Ok((layers, tree))
}

/// Compares a recomputed layout with the expected measurement; appends the checks.
pub fn compare(m: &Measured, expected: &Measurement, report: &mut Report) {
    let c = &mut report.checks;
    c.push(Check::equal(
        "manifest digest",
        &expected.manifest_digest,
        &m.manifest_digest,
    ));
    c.push(Check::equal(
        "config digest",
        &expected.config_digest,
        &m.config_digest,
    ));
    c.push(Check::equal(
        "layer count",
        &expected.layers.len().to_string(),
        &m.layers.len().to_string(),
    ));
    for (i, (want, got)) in expected.layers.iter().zip(&m.layers).enumerate() {
        let name = format!("layer {i} ({})", want.concern);
        c.push(Check::equal(
            format!("{name} digest"),
            &want.digest,
            &got.digest,
        ));
        c.push(Check::equal(
            format!("{name} diff_id"),
            &want.diff_id,
            &got.diff_id,
        ));
    }
    c.push(Check::equal(
        "entrypoint",
        &expected.entrypoint.join(" "),
        &m.entrypoint.join(" "),
    ));
    let file = |p: &str| match m.tree.nodes.get(p) {
        Some(Node::File { sha256, .. }) => sha256.clone(),
        Some(Node::Symlink(t)) => format!("(a symbolic link to {t}, not a file)"),
        Some(Node::Dir) => "(a directory, not a file)".into(),
        None => "(absent)".into(),
    };
    c.push(Check::equal(
        format!("app binary {} sha256", expected.app.path),
        &expected.app.sha256,
        &file(&expected.app.path),
    ));
    for f in &expected.models {
        c.push(Check::equal(
            format!("model {} sha256", f.path),
            &f.sha256,
            &file(&f.path),
        ));
    }
}

fn str_field(v: &Value, key: &str, what: &str) -> Result<String, Error> {
    v[key]
        .as_str()
        .map(String::from)
        .ok_or_else(|| Error::malformed(what, format!("no {key}")))
}

/// `blobs/sha256/<hex>` for a digest, refusing anything that is not 64 hex digits.
fn blob_path(layout: &Path, digest: &str) -> Result<std::path::PathBuf, Error> {
    match digest.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(layout.join("blobs").join("sha256").join(h))
        }
        _ => Err(Error::malformed(
            "descriptor",
            format!("unsupported digest {digest:?}"),
        )),
    }
}

/// Opens a regular file; anything else (a device, a FIFO, a link to one) is refused before
/// it is opened, since opening a FIFO waits for a writer and a device may never end.
fn open_regular(path: &Path) -> Result<std::fs::File, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::malformed(
            path.display().to_string(),
            "not a regular file",
        ));
    }
    std::fs::File::open(path).map_err(|e| Error::io(path, e))
}

fn read_json(path: &Path, what: &str) -> Result<Value, Error> {
    let f = open_regular(path)?;
    let mut bytes = Vec::new();
    f.take(MAX_JSON)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::malformed(what, e))
}

/// Reads a JSON blob named by `desc`, adding a check that its bytes match its digest.
fn read_blob_json(
    layout: &Path,
    desc: &Value,
    what: &str,
    report: &mut Report,
) -> Result<Value, Error> {
    let digest = str_field(desc, "digest", what)?;
    let path = blob_path(layout, &digest)?;
    let f = open_regular(&path)?;
    let mut bytes = Vec::new();
    f.take(MAX_JSON)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&path, e))?;
    let found = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    report
        .checks
        .push(Check::equal(format!("{what} blob sha256"), &digest, &found));
    serde_json::from_slice(&bytes).map_err(|e| Error::malformed(what, e))
}

fn hash_file(path: &Path) -> Result<(String, u64), Error> {
    let mut f = HashRead::new(open_regular(path)?);
    std::io::copy(&mut f, &mut std::io::sink()).map_err(|e| Error::io(path, e))?;
    let (_, sha, size) = f.finish();
    Ok((sha, size))
}
