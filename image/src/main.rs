//! `oci-image`: the command the flake calls to write the image layout, and the helper that
//! fills `iexec.json` from a build's `measurement.json`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use oci_image::{ImageSpec, Measurement};
use std::path::PathBuf;
use std::process::ExitCode;

/// Deterministic OCI images for the iExec LLM app.
#[derive(Parser)]
#[command(name = "oci-image", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write OUT/oci (an OCI image layout) and OUT/measurement.json.
    ///
    /// Every file gets mtime SOURCE_DATE_EPOCH, owner 0:0 and mode 0644 (0755 for the
    /// binary); entries are sorted; layers are gzip level 6 with a zero header time. Same
    /// inputs, same bytes.
    Build {
        /// The app binary (statically linked).
        #[arg(long, value_name = "PATH")]
        binary: PathBuf,
        /// Where the binary goes in the image; it is the entrypoint.
        #[arg(long, value_name = "ABS_PATH", default_value = "/app/iexec-llm")]
        binary_path: String,
        /// A model file, placed under /models with its own name, or with NAME given as
        /// PATH=NAME (repeatable).
        #[arg(long = "model", value_name = "PATH[=NAME]", required = true)]
        models: Vec<PathBuf>,
        /// Output directory (must not exist or be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Ref name of the image in index.json.
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        reference: String,
        /// App version recorded in measurement.json.
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        app_version: String,
        /// KEY=value in the image's environment (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Working directory of the image.
        #[arg(long, default_value = "/")]
        working_dir: String,
        /// Timestamp of every file [default: $SOURCE_DATE_EPOCH].
        #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
        source_date_epoch: u64,
        /// Entrypoint arguments after the binary.
        #[arg(last = true, value_name = "ARGS")]
        entrypoint_args: Vec<String>,
    },
    /// Fill the app section of iexec.json from measurement.json: multiaddr = IMAGE,
    /// checksum = 0x + the manifest digest (what the registry serves when the layout is pushed
    /// with `skopeo copy --preserve-digests`).
    IexecJson {
        /// measurement.json of the build.
        #[arg(long, value_name = "PATH")]
        measurement: PathBuf,
        /// Image reference as pushed, e.g. docker.io/me/iexec-llm:0.1.0.
        #[arg(long, value_name = "REF")]
        image: String,
        /// iexec.json to update (created if missing).
        #[arg(long, value_name = "PATH", default_value = "iexec.json")]
        iexec_json: PathBuf,
        /// App owner: the wallet that deploys it (an app owned by 0x0…0 cannot be created).
        #[arg(long, value_name = "0x...")]
        owner: String,
        /// App name (kept from the file when not given).
        #[arg(long)]
        name: Option<String>,
    },
    /// Write the `iapp` CLI's files from measurement.json: a one-line Dockerfile
    /// `FROM REGISTRY/NAME@sha256:<manifest digest>` and iapp.config.json. `iapp deploy`
    /// rebuilds and pushes its own image from them: same layers, binary and model, another
    /// manifest digest (see README, "The iapp path").
    Iapp {
        /// measurement.json of the build.
        #[arg(long, value_name = "PATH")]
        measurement: PathBuf,
        /// Image reference as pushed, e.g. docker.io/me/iexec-llm:0.1.0.
        #[arg(long, value_name = "REF")]
        image: String,
        /// The iapp project name.
        #[arg(long, default_value = "iexec-llm")]
        project: String,
        /// Directory to write Dockerfile and iapp.config.json into.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_measurement(path: &std::path::Path) -> Result<Measurement> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build {
            binary,
            binary_path,
            models,
            out,
            reference,
            app_version,
            env,
            working_dir,
            source_date_epoch,
            entrypoint_args,
        } => {
            let models = models
                .into_iter()
                .map(|p| {
                    let s = p.to_string_lossy().into_owned();
                    if let Some((src, name)) = s.rsplit_once('=') {
                        return Ok((PathBuf::from(src), name.to_string()));
                    }
                    let name = p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .with_context(|| format!("{} has no usable file name", p.display()))?
                        .to_string();
                    Ok((p, name))
                })
                .collect::<Result<Vec<_>>>()?;
            let spec = ImageSpec {
                reference,
                app_version,
                binary,
                binary_path,
                entrypoint_args,
                models,
                env,
                working_dir,
                source_date_epoch,
            };
            let m = oci_image::build(&spec, &out.join("oci"))?;
            let json = serde_json::to_string_pretty(&m)? + "\n";
            std::fs::write(out.join("measurement.json"), json)?;
            eprintln!("wrote {}/oci ({})", out.display(), m.manifest_digest);
            println!("{}", m.manifest_digest);
        }
        Command::IexecJson {
            measurement,
            image,
            iexec_json,
            owner,
            name,
        } => {
            let m = read_measurement(&measurement)?;
            let mut doc: serde_json::Value = match std::fs::read_to_string(&iexec_json) {
                Ok(s) => serde_json::from_str(&s)
                    .with_context(|| format!("parsing {}", iexec_json.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
                Err(e) => return Err(e).context(format!("reading {}", iexec_json.display())),
            };
            oci_image::iexec::fill_app(&mut doc, &m, &image, &owner, name.as_deref())?;
            std::fs::write(&iexec_json, serde_json::to_string_pretty(&doc)? + "\n")?;
            eprintln!(
                "updated {}: checksum from {}",
                iexec_json.display(),
                m.manifest_digest
            );
        }
        Command::Iapp {
            measurement,
            image,
            project,
            out,
        } => {
            let m = read_measurement(&measurement)?;
            let (dockerfile, config) = oci_image::iexec::iapp_files(&m, &image, &project)?;
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("Dockerfile"), dockerfile)?;
            std::fs::write(out.join("iapp.config.json"), config)?;
            eprintln!(
                "wrote {0}/Dockerfile and {0}/iapp.config.json for {1}",
                out.display(),
                m.manifest_digest
            );
        }
    }
    Ok(())
}
