//! The app section of the iexec SDK's `iexec.json`, filled from a build's measurement: the
//! checksum is `0x` + the manifest digest, which the registry keeps when the layout is pushed
//! with `skopeo copy --preserve-digests`. TDX apps carry no `mrenclave` (current SDKs reject
//! it).

use crate::{Error, Measurement};
use serde_json::{json, Map, Value};

/// Sets `app.type`, `app.multiaddr` and `app.checksum` in an `iexec.json` document (other
/// sections and fields are kept; `owner` and `name` are set when given, else kept, else
/// defaulted).
///
/// # Errors
/// [`Error::Input`] if the document or its `app` is not an object, or the digest is not
/// sha256.
pub fn fill_app(
    doc: &mut Value,
    m: &Measurement,
    image: &str,
    owner: Option<&str>,
    name: Option<&str>,
) -> Result<(), Error> {
    let hex = m
        .manifest_digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            Error::Input(format!(
                "manifest digest {:?} is not sha256",
                m.manifest_digest
            ))
        })?;
    if image.is_empty() || image.contains('@') {
        return Err(Error::Input(format!(
            "image reference {image:?} must be REGISTRY/NAME:TAG (the checksum carries the digest)"
        )));
    }
    let doc = doc
        .as_object_mut()
        .ok_or_else(|| Error::Input("iexec.json is not an object".into()))?;
    let app: &mut Map<String, Value> = doc
        .entry("app")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| Error::Input("iexec.json's app is not an object".into()))?;
    if let Some(o) = owner {
        app.insert("owner".into(), o.into());
    }
    if let Some(n) = name {
        app.insert("name".into(), n.into());
    }
    app.entry("owner")
        .or_insert_with(|| "0x0000000000000000000000000000000000000000".into());
    app.entry("name").or_insert_with(|| "iexec-llm".into());
    app.insert("type".into(), "DOCKER".into());
    app.insert("multiaddr".into(), image.into());
    app.insert("checksum".into(), format!("0x{hex}").into());
    app.remove("mrenclave");
    Ok(())
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
            None,
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
            let e = fill_app(&mut doc, &measurement(digest), image, None, None).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
    }
}
