//! The files an iExec deployment reads, written from a build's measurement, never by hand:
//!
//! - the app section of the iexec SDK's `iexec.json` ([`fill_app`]): the checksum is `0x` +
//!   the manifest digest, which the registry keeps when the layout is pushed with
//!   `skopeo copy --preserve-digests`; TDX apps carry no `mrenclave` (SDK 9 rejects an object
//!   one); the owner is required, since an app owned by `0x0…0` cannot be created;
//! - for the `iapp` CLI ([`iapp_files`]), a one-line `Dockerfile` `FROM REPO@sha256:…` of the
//!   pushed image and an `iapp.config.json` naming the project. `iapp deploy` builds and
//!   pushes its own image from it: the layers (diff_ids), binary and model are the measured
//!   ones, but the manifest digest, hence the on-chain checksum, is the rebuilt image's.

use crate::{Error, Measurement};
use serde_json::{json, Map, Value};

/// The manifest digest's hex.
fn digest_hex(m: &Measurement) -> Result<&str, Error> {
    m.manifest_digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            Error::Input(format!(
                "manifest digest {:?} is not sha256",
                m.manifest_digest
            ))
        })
}

/// `REGISTRY/NAME:TAG`, checked.
fn check_image(image: &str) -> Result<(), Error> {
    let tagged = image
        .rsplit_once(':')
        .is_some_and(|(repo, tag)| !repo.is_empty() && !tag.is_empty() && !tag.contains('/'));
    if !tagged || image.contains('@') || image.chars().any(char::is_whitespace) {
        return Err(Error::Input(format!(
            "image reference {image:?} must be REGISTRY/NAME:TAG (the checksum carries the digest)"
        )));
    }
    Ok(())
}

/// Sets `app.owner`, `app.type`, `app.multiaddr` and `app.checksum` in an `iexec.json`
/// document (other sections and fields are kept; `name` is set when given, else kept, else
/// `iexec-llm`).
///
/// # Errors
/// [`Error::Input`] if the document or its `app` is not an object, the digest is not sha256,
/// the image is not `REGISTRY/NAME:TAG`, or the owner is not a non-zero address.
pub fn fill_app(
    doc: &mut Value,
    m: &Measurement,
    image: &str,
    owner: &str,
    name: Option<&str>,
) -> Result<(), Error> {
    let hex = digest_hex(m)?;
    check_image(image)?;
    let addr = owner.strip_prefix("0x").unwrap_or_default();
    if addr.len() != 40 || !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Input(format!(
            "owner {owner:?} is not an address (0x and 40 hex digits)"
        )));
    }
    if addr.bytes().all(|b| b == b'0') {
        return Err(Error::Input(
            "owner 0x0…0: an app must be owned by the wallet that deploys it".into(),
        ));
    }
    let doc = doc
        .as_object_mut()
        .ok_or_else(|| Error::Input("iexec.json is not an object".into()))?;
    let app: &mut Map<String, Value> = doc
        .entry("app")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| Error::Input("iexec.json's app is not an object".into()))?;
    app.insert("owner".into(), owner.into());
    if let Some(n) = name {
        app.insert("name".into(), n.into());
    }
    app.entry("name").or_insert_with(|| "iexec-llm".into());
    app.insert("type".into(), "DOCKER".into());
    app.insert("multiaddr".into(), image.into());
    app.insert("checksum".into(), format!("0x{hex}").into());
    app.remove("mrenclave");
    Ok(())
}

/// The `iapp` CLI's files for the pushed `image` (`REGISTRY/NAME:TAG`): a `Dockerfile` of
/// one line, `FROM REGISTRY/NAME@sha256:<manifest digest>`, and an `iapp.config.json` naming
/// the project (`appSecret: null`: the app has no developer secret).
///
/// # Errors
/// [`Error::Input`] for a digest that is not sha256, an image that is not
/// `REGISTRY/NAME:TAG`, or a project name iapp refuses (2+ characters of letters, digits,
/// `-` and spaces).
pub fn iapp_files(m: &Measurement, image: &str, project: &str) -> Result<(String, String), Error> {
    let hex = digest_hex(m)?;
    check_image(image)?;
    let ok = project.len() >= 2
        && project.trim() == project
        && project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b' ');
    if !ok {
        return Err(Error::Input(format!(
            "project name {project:?}: iapp wants 2 or more letters, digits, '-' or spaces"
        )));
    }
    let repo = image.rsplit_once(':').map(|(r, _)| r).unwrap_or(image);
    let dockerfile = format!(
        "# Written by `oci-image iapp` from measurement.json ({}): the measured image, by digest.\n\
         FROM {repo}@sha256:{hex}\n",
        m.manifest_digest
    );
    let config = serde_json::to_string_pretty(&json!({
        "defaultChain": "arbitrum-sepolia-testnet",
        "projectName": project,
        "appSecret": null,
    }))
    .map_err(|e| Error::Input(e.to_string()))?
        + "\n";
    Ok((dockerfile, config))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::measurement::{AppMeasurement, SCHEMA};

    fn measurement(digest: &str) -> Measurement {
        Measurement {
            schema: SCHEMA.into(),
            reference: "0.1.0".into(),
            manifest_digest: digest.into(),
            config_digest: String::new(),
            layers: vec![],
            entrypoint: vec![],
            app: AppMeasurement {
                version: "0.1.0".into(),
                path: "/app/x".into(),
                sha256: String::new(),
            },
            models: vec![],
        }
    }

    #[test]
    fn fills_the_app_section_from_the_manifest_digest() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let mut doc = json!({"app": {"owner": "0x1111111111111111111111111111111111111111",
                                     "mrenclave": {"framework": "SCONE"}, "checksum": "old"},
                             "chain": {"default": "arbitrum-sepolia-testnet"}});
        fill_app(
            &mut doc,
            &measurement(&digest),
            "docker.io/me/iexec-llm:0.1.0",
            "0x1111111111111111111111111111111111111111",
            None,
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"app": {"owner": "0x1111111111111111111111111111111111111111",
                           "name": "iexec-llm", "type": "DOCKER",
                           "multiaddr": "docker.io/me/iexec-llm:0.1.0",
                           "checksum": format!("0x{}", "ab".repeat(32))},
                   "chain": {"default": "arbitrum-sepolia-testnet"}})
        );
    }

    #[test]
    fn refuses_what_it_cannot_fill() {
        let good = format!("sha256:{}", "ab".repeat(32));
        let cases = [
            (json!({}), "sha512:00", "x:1", "not sha256"),
            (
                json!({}),
                good.as_str(),
                "x@sha256:00",
                "must be REGISTRY/NAME:TAG",
            ),
            (json!([]), good.as_str(), "x:1", "not an object"),
            (
                json!({"app": 3}),
                good.as_str(),
                "x:1",
                "app is not an object",
            ),
        ];
        for (mut doc, digest, image, want) in cases {
            let owner = "0x1111111111111111111111111111111111111111";
            let e = fill_app(&mut doc, &measurement(digest), image, owner, None).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        let m = measurement(&good);
        for (owner, want) in [
            (
                "0x0000000000000000000000000000000000000000",
                "an app must be owned",
            ),
            ("0x12", "not an address"),
            ("1111111111111111111111111111111111111111", "not an address"),
        ] {
            let e = fill_app(&mut json!({}), &m, "x:1", owner, None).unwrap_err();
            assert!(e.to_string().contains(want), "{owner}: {e}");
        }
        for image in ["docker.io/me/app", "docker.io/me/app:", "a b:1"] {
            let e = fill_app(
                &mut json!({}),
                &m,
                image,
                "0x1111111111111111111111111111111111111111",
                None,
            );
            assert!(e.is_err(), "{image}");
        }
    }

    #[test]
    fn the_iapp_files_name_the_measured_image_by_digest() {
        let digest = format!("sha256:{}", "cd".repeat(32));
        let (dockerfile, config) = iapp_files(
            &measurement(&digest),
            "docker.io/me/iexec-llm:0.1.0",
            "iexec-llm",
        )
        .unwrap();
        let from: Vec<&str> = dockerfile.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            from,
            [format!("FROM docker.io/me/iexec-llm@{digest}").as_str()]
        );
        let c: Value = serde_json::from_str(&config).unwrap();
        assert_eq!(c["projectName"], "iexec-llm");
        assert!(c["appSecret"].is_null());
        assert!(iapp_files(&measurement(&digest), "x:1", "x").is_err());
        assert!(iapp_files(&measurement(&digest), "x:1", "a_b").is_err());
    }
}
