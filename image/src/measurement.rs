//! `measurement.json`: what a build of the image must look like. Written beside the layout by
//! the builder; `verifier measure` recomputes every value from a layout and compares.

use serde::{Deserialize, Serialize};

/// Identifies this format.
pub const SCHEMA: &str = "iexec-llm/measurement/v1";

/// The expected measurement of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    /// [`SCHEMA`].
    pub schema: String,
    /// The ref name in `index.json`.
    pub reference: String,
    /// Digest of the manifest: the `@sha256:` of the pushed image, iExec's app `checksum`.
    pub manifest_digest: String,
    /// Digest of the image config.
    pub config_digest: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerMeasurement>,
    /// The config's Entrypoint.
    pub entrypoint: Vec<String>,
    /// The app binary.
    pub app: AppMeasurement,
    /// Model files.
    pub models: Vec<FileMeasurement>,
}

/// One layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeasurement {
    /// What the layer holds (`models`, `app`).
    pub concern: String,
    /// Digest of the compressed blob.
    pub digest: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    /// Size of the compressed blob.
    pub size: u64,
}

/// The app binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppMeasurement {
    /// App version.
    pub version: String,
    /// Absolute path in the image.
    pub path: String,
    /// sha256 of the binary, lowercase hex (what `result.json` states as `binary_sha256`).
    pub sha256: String,
}

/// A file in the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeasurement {
    /// Absolute path in the image.
    pub path: String,
    /// sha256, lowercase hex.
    pub sha256: String,
}
