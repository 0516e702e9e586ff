//! Image config, manifest and index, serialized as canonical JSON (keys sorted, no
//! whitespace) so their digests depend only on their content.
//!
//! Spec: OCI Image Format v1.1 ("Image Configuration", "Image Manifest", "Image Index").
//! Types come from oci-spec; its annotation maps are hash maps, hence the canonical writer.

use crate::blob::Blob;
use crate::Error;
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use serde_json::Value;
use std::collections::HashMap;

/// The annotation naming an image in `index.json` (`oci:DIR:REF` in skopeo).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Canonical JSON: object keys sorted by bytes, no insignificant whitespace.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(*k) {
                    write_canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn to_canonical<T: serde::Serialize>(what: &str, t: &T) -> Result<String, Error> {
    let v = serde_json::to_value(t).map_err(|e| Error::Input(format!("{what}: {e}")))?;
    Ok(canonical(&v))
}

fn spec_err(what: &str) -> impl Fn(oci_spec::OciSpecError) -> Error + '_ {
    move |e| Error::Input(format!("{what}: {e}"))
}

fn descriptor(media: MediaType, blob: &Blob) -> Result<Descriptor, Error> {
    let digest: oci_spec::image::Digest = blob.digest.parse().map_err(spec_err("digest"))?;
    Ok(Descriptor::new(media, blob.size, digest))
}

/// The image config (amd64/linux, no timestamps) as canonical JSON.
///
/// # Errors
/// [`Error::Input`] if a value cannot be represented.
pub fn config_json(
    entrypoint: &[String],
    env: &[String],
    working_dir: &str,
    diff_ids: &[String],
) -> Result<String, Error> {
    let config = ConfigBuilder::default()
        .entrypoint(entrypoint.to_vec())
        .env(env.to_vec())
        .working_dir(working_dir.to_string())
        .build()
        .map_err(spec_err("config"))?;
    let rootfs = RootFsBuilder::default()
        .typ("layers".to_string())
        .diff_ids(diff_ids.to_vec())
        .build()
        .map_err(spec_err("rootfs"))?;
    let image = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config)
        .rootfs(rootfs)
        .build()
        .map_err(spec_err("image config"))?;
    to_canonical("image config", &image)
}

/// The manifest for a config blob and gzip layers, as canonical JSON.
///
/// # Errors
/// [`Error::Input`] if a digest is malformed.
pub fn manifest_json(config: &Blob, layers: &[Blob]) -> Result<String, Error> {
    let layers = layers
        .iter()
        .map(|l| descriptor(MediaType::ImageLayerGzip, l))
        .collect::<Result<Vec<_>, _>>()?;
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, config)?)
        .layers(layers)
        .build()
        .map_err(spec_err("manifest"))?;
    to_canonical("manifest", &m)
}

/// `index.json` naming the manifest `reference`, as canonical JSON.
///
/// # Errors
/// [`Error::Input`] if a digest is malformed.
pub fn index_json(manifest: &Blob, reference: &str) -> Result<String, Error> {
    let mut d = descriptor(MediaType::ImageManifest, manifest)?;
    d.set_annotations(Some(HashMap::from([(
        REF_NAME.to_string(),
        reference.to_string(),
    )])));
    d.set_platform(Some(
        PlatformBuilder::default()
            .architecture(Arch::Amd64)
            .os(Os::Linux)
            .build()
            .map_err(spec_err("platform"))?,
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![d])
        .build()
        .map_err(spec_err("index"))?;
    to_canonical("index", &index)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": 1, "a": "x\n"}], "a": null }"#).unwrap();
        assert_eq!(canonical(&v), r#"{"a":null,"b":[1,{"a":"x\n","z":1}]}"#);
    }
}
