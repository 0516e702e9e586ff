//! Deterministic OCI image layouts for the iApp: the same inputs give the same bytes, so the
//! manifest digest is a measurement anyone can reproduce.
//!
//! [`build`] writes, in order: one gzip layer per concern (the model files, which rarely
//! change, below the app binary; see [`tar`]), the image config and manifest as canonical JSON
//! ([`manifest`]), `index.json` with a ref name, `oci-layout`, and returns the
//! [`Measurement`] that the caller writes beside the layout.
#![deny(missing_docs)]

pub mod blob;
pub mod iexec;
pub mod manifest;
pub mod measurement;
pub mod tar;

pub use measurement::Measurement;

use measurement::{AppMeasurement, FileMeasurement, LayerMeasurement};
use std::path::{Path, PathBuf};

/// Errors of the image writer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading an input or writing the layout failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The inputs are inconsistent.
    #[error("{0}")]
    Input(String),
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// What goes into the image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Ref name in `index.json` (e.g. `0.1.0`).
    pub reference: String,
    /// App version recorded in the measurement.
    pub app_version: String,
    /// The app binary on disk.
    pub binary: PathBuf,
    /// Its absolute path in the image (the entrypoint's first element).
    pub binary_path: String,
    /// Entrypoint arguments after the binary.
    pub entrypoint_args: Vec<String>,
    /// Model files: (source on disk, file name under `/models`).
    pub models: Vec<(PathBuf, String)>,
    /// `KEY=value` environment of the image.
    pub env: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// Modification time of every file and directory (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: u64,
}

/// Writes the OCI layout of `spec` into `out`, which must not exist or be empty.
///
/// # Errors
/// [`Error::Input`] for inconsistent inputs or a non-empty `out`; [`Error::Io`] otherwise.
///
/// # Example
/// ```no_run
/// let spec = oci_image::ImageSpec {
///     reference: "0.1.0".into(),
///     app_version: "0.1.0".into(),
///     binary: "target/iexec-llm".into(),
///     binary_path: "/app/iexec-llm".into(),
///     entrypoint_args: vec![],
///     models: vec![("model.gguf".into(), "model.gguf".into())],
///     env: vec!["PATH=/app".into()],
///     working_dir: "/".into(),
///     source_date_epoch: 1,
/// };
/// let m = oci_image::build(&spec, std::path::Path::new("out/oci"))?;
/// println!("{}", m.manifest_digest);
/// # Ok::<(), oci_image::Error>(())
/// ```
pub fn build(spec: &ImageSpec, out: &Path) -> Result<Measurement, Error> {
    // Step 1: an empty layout directory.
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(|e| Error::io(out, e))?;
        if entries.next().is_some() {
            return Err(Error::Input(format!("{} is not empty", out.display())));
        }
    }
    let binary_dest = spec
        .binary_path
        .strip_prefix('/')
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Error::Input(format!(
                "binary path {:?} must be absolute",
                spec.binary_path
            ))
        })?;
    if spec.models.is_empty() {
        return Err(Error::Input("no model files".into()));
    }
    let blobs = blob::BlobDir::create(out)?;

    // Step 2: the layers, models below the app.
    let model_files: Vec<tar::LayerFile> = spec
        .models
        .iter()
        .map(|(src, name)| tar::LayerFile {
            src: src.clone(),
            dest: format!("models/{name}"),
            executable: false,
        })
        .collect();
    let models = tar::write_layer(&blobs, &model_files, spec.source_date_epoch)?;
    let app_file = tar::LayerFile {
        src: spec.binary.clone(),
        dest: binary_dest.to_string(),
        executable: true,
    };
    let app = tar::write_layer(&blobs, &[app_file], spec.source_date_epoch)?;

    // Step 3: config, manifest, index, oci-layout.
    let mut entrypoint = vec![spec.binary_path.clone()];
    entrypoint.extend(spec.entrypoint_args.iter().cloned());
    let config = manifest::config_json(
        &entrypoint,
        &spec.env,
        &spec.working_dir,
        &[models.diff_id.clone(), app.diff_id.clone()],
    )?;
    let config_blob = blobs.put(config.as_bytes())?;
    let manifest = manifest::manifest_json(&config_blob, &[models.blob.clone(), app.blob.clone()])?;
    let manifest_blob = blobs.put(manifest.as_bytes())?;
    let index = manifest::index_json(&manifest_blob, &spec.reference)?;
    write(out.join("index.json"), index.as_bytes())?;
    write(out.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;

    // Step 4: the measurement.
    let layer = |concern: &str, l: &tar::Layer| LayerMeasurement {
        concern: concern.into(),
        digest: l.blob.digest.clone(),
        diff_id: l.diff_id.clone(),
        size: l.blob.size,
    };
    Ok(Measurement {
        schema: measurement::SCHEMA.into(),
        reference: spec.reference.clone(),
        manifest_digest: manifest_blob.digest,
        config_digest: config_blob.digest,
        layers: vec![layer("models", &models), layer("app", &app)],
        entrypoint,
        app: AppMeasurement {
            version: spec.app_version.clone(),
            path: spec.binary_path.clone(),
            sha256: app.files.values().next().cloned().unwrap_or_default(),
        },
        models: models
            .files
            .iter()
            .map(|(dest, sha)| FileMeasurement {
                path: format!("/{dest}"),
                sha256: sha.clone(),
            })
            .collect(),
    })
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))
}
