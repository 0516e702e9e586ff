//! iExec result-integrity vectors from `verifier/testdata/iexec/vectors.json`, table-driven.
//! Where iExec's Rust post-compute and Java commons differ (an empty file or directory in a
//! deterministic output directory), we follow the Rust post-compute: it is what runs in TDX
//! workers today.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use k256::ecdsa::SigningKey;
use serde_json::Value;
use sha2::{Digest, Sha256};
use verifier::iexec::archive;
use verifier::iexec::chain::*;
use verifier::iexec::result::*;
use verifier::iexec::*;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}"))
}

fn sign_eip191(key_hex: &str, hash: &[u8; 32]) -> String {
    let k = SigningKey::from_slice(&hex_bytes(key_hex).unwrap()).unwrap();
    let (sig, rid) = k.sign_prehash_recoverable(&eip191(hash)).unwrap();
    let mut out = sig.to_bytes().to_vec();
    out.push(27 + rid.to_byte());
    to_hex(&out)
}

fn h32(hex: &str) -> [u8; 32] {
    hex_bytes(hex).unwrap().try_into().unwrap()
}

#[test]
fn every_integrity_vector() {
    let all: Value = serde_json::from_slice(&load("iexec/vectors.json")).unwrap();
    let mut done = 0;
    for v in all["vectors"].as_array().unwrap() {
        let (id, kind, i, e) = (s(v, "id"), s(v, "kind"), &v["inputs"], &v["expected"]);
        match kind {
            "keccak_concat_hex" => {
                let vals: Vec<&str> = i["hex_values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect();
                assert_eq!(
                    to_hex(&hash_concat(&vals).unwrap()),
                    s(e, "keccak256"),
                    "{id}"
                );
            }
            "keccak256_bytes" => assert_eq!(
                to_hex(&keccak(s(i, "utf8").as_bytes())),
                s(e, "keccak256"),
                "{id}"
            ),
            "sha256_bytes" => {
                let bytes = match i.get("file") {
                    Some(f) => load(&format!("iexec/{}", f.as_str().unwrap())),
                    None => hex_bytes(s(i, "hex")).unwrap(),
                };
                assert_eq!(to_hex(&Sha256::digest(&bytes)), s(e, "sha256"), "{id}");
            }
            "result_digest_file" => {
                let f = i
                    .get("file")
                    .or(i.get("resolved_file"))
                    .unwrap()
                    .as_str()
                    .unwrap();
                load(&format!("iexec/{f}"));
                let d = result_digest_file(&testdata().join("iexec").join(f)).unwrap();
                assert_eq!(to_hex(&d), s(e, "result_digest"), "{id}");
            }
            "result_digest_dir" => {
                let (dir, tmp) = if let Some(d) = i.get("directory").or(i.get("task_output_dir")) {
                    (
                        testdata().join("iexec").join(d.as_str().unwrap()).join(
                            if i.get("task_output_dir").is_some() {
                                "iexec_out"
                            } else {
                                ""
                            },
                        ),
                        None,
                    )
                } else {
                    // Edge cases: build the directory the vector describes.
                    let t =
                        std::env::temp_dir().join(format!("iexec-dig-{id}-{}", std::process::id()));
                    let _ = std::fs::remove_dir_all(&t);
                    std::fs::create_dir_all(&t).unwrap();
                    for c in i["children"].as_array().unwrap() {
                        let p = t.join(s(c, "name"));
                        if c["type"] == "directory" {
                            std::fs::create_dir_all(&p).unwrap();
                        } else {
                            std::fs::write(&p, s(c, "content_utf8")).unwrap();
                        }
                    }
                    (t.clone(), Some(t))
                };
                let want = e
                    .get("rust_post_compute")
                    .map_or(&e["result_digest"], |r| &r["result_digest"]);
                match want.as_str() {
                    Some(w) => assert_eq!(to_hex(&result_digest_dir(&dir).unwrap()), w, "{id}"),
                    None => assert!(result_digest_dir(&dir).is_err(), "{id} must be rejected"),
                }
                if let Some(t) = tmp {
                    std::fs::remove_dir_all(t).unwrap();
                }
            }
            "result_digest_callback" => {
                let r = result_digest_callback(s(i, "callback_data"));
                if e["outcome"] == "reject" {
                    assert!(r.is_err(), "{id} must be rejected");
                    done += 1;
                    continue;
                }
                let d = r.unwrap();
                assert_eq!(to_hex(&d), s(e, "result_digest"), "{id}");
                if let Some(n) = e.get("must_not_equal") {
                    assert_ne!(to_hex(&d), n.as_str().unwrap(), "{id}");
                }
            }
            "eip191_recover" => {
                let got = recover_eip191(&h32(s(i, "message_hash")), s(i, "signature")).unwrap();
                match e.get("recovered_address") {
                    Some(a) => assert_eq!(got, a.as_str().unwrap().to_ascii_lowercase(), "{id}"),
                    None => {
                        // Signed without the EIP-191 prefix: it does not recover the claimed
                        // signer under EIP-191.
                        assert_eq!(
                            got,
                            s(e, "recovered_with_eip191_prefix").to_ascii_lowercase(),
                            "{id}"
                        );
                        assert_ne!(got, s(i, "claimed_signer").to_ascii_lowercase(), "{id}");
                    }
                }
            }
            "eip191_sign" => {
                let h = h32(s(i, "message_hash"));
                if let Some(m) = e.get("eth_signed_message_hash") {
                    assert_eq!(to_hex(&eip191(&h)), m.as_str().unwrap(), "{id}");
                }
                assert_eq!(
                    sign_eip191(s(i, "private_key"), &h),
                    s(e, "signature"),
                    "{id}"
                );
                assert_eq!(
                    recover_eip191(&h, s(e, "signature")).unwrap(),
                    s(e, "signer_address").to_ascii_lowercase(),
                    "{id}"
                );
            }
            "workerpool_authorization" => {
                let h = hash_concat(&[s(i, "worker"), s(i, "task_id"), s(i, "enclave_challenge")])
                    .unwrap();
                assert_eq!(to_hex(&h), s(e, "authorization_hash"), "{id}");
                let sig = i
                    .get("signature")
                    .or(e.get("signature"))
                    .unwrap()
                    .as_str()
                    .unwrap();
                let signer = recover_eip191(&h, sig).unwrap();
                if let Some(r) = e.get("recovered_signer") {
                    assert_eq!(signer, r.as_str().unwrap().to_ascii_lowercase(), "{id}");
                }
                if let Some(owner) = i.get("workerpool_owner") {
                    assert_eq!(signer, owner.as_str().unwrap().to_ascii_lowercase(), "{id}");
                    let wrong = recover_eip191(&h, s(i, "wrong_signature")).unwrap();
                    assert_ne!(wrong, signer, "{id}");
                    assert_eq!(
                        wrong,
                        s(e, "wrong_signature_recovers").to_ascii_lowercase(),
                        "{id}"
                    );
                }
            }
            "task_id" => {
                let t = task_id(s(i, "deal_id"), i["index"].as_u64().unwrap()).unwrap();
                assert_eq!(to_hex(&t), s(e, "task_id"), "{id}");
            }
            "tee_chain_full" => {
                let (rh, rs) =
                    result_hash_and_seal(s(i, "task_id"), s(i, "worker"), s(i, "result_digest"))
                        .unwrap();
                assert_eq!(to_hex(&rh), s(e, "result_hash"), "{id}");
                assert_eq!(to_hex(&rs), s(e, "result_seal"), "{id}");
                let msg = hash_concat(&[&to_hex(&rh), &to_hex(&rs)]).unwrap();
                assert_eq!(to_hex(&msg), s(e, "enclave_message_hash"), "{id}");
                assert_eq!(
                    sign_eip191(s(i, "enclave_challenge_private_key"), &msg),
                    s(e, "enclave_signature"),
                    "{id}"
                );
                let signer = recover_eip191(&msg, s(e, "enclave_signature")).unwrap();
                assert_eq!(
                    signer,
                    s(e, "enclave_challenge").to_ascii_lowercase(),
                    "{id}"
                );
                // A different result digest no longer recovers the enclave challenge.
                let (rh2, rs2) = result_hash_and_seal(
                    s(i, "task_id"),
                    s(i, "worker"),
                    &format!("{}0", &s(i, "result_digest")[..65]),
                )
                .unwrap();
                let other = hash_concat(&[&to_hex(&rh2), &to_hex(&rs2)]).unwrap();
                assert_ne!(
                    recover_eip191(&other, s(e, "enclave_signature")).unwrap(),
                    signer,
                    "{id}"
                );
            }
            "event_topic" => assert_eq!(
                to_hex(&event_topic(s(i, "event_signature"))),
                s(e, "topic0"),
                "{id}"
            ),
            "raw_ecdsa_sign" => {
                // web3j turns the text into bytes by mapping non-hex digits silently; we follow
                // iExec's Rust code and refuse non-hex input.
                assert!(hex_bytes(s(i, "text")).is_err(), "{id}");
                let bytes = hex_bytes(s(i, "decoded_bytes")).unwrap();
                let h = keccak(&bytes);
                assert_eq!(to_hex(&h), s(i, "hash_signed"), "{id}");
                let k = SigningKey::from_slice(&hex_bytes(s(i, "private_key")).unwrap()).unwrap();
                let (sig, rid) = k.sign_prehash_recoverable(&h).unwrap();
                let mut out = sig.to_bytes().to_vec();
                out.push(27 + rid.to_byte());
                assert_eq!(to_hex(&out), s(e, "signature"), "{id}");
                assert_eq!(
                    address(k.verifying_key()),
                    s(e, "signer_address").to_ascii_lowercase(),
                    "{id}"
                );
                // Without the prefix it is not an EIP-191 signature by that key.
                assert_ne!(
                    recover_eip191(&h, s(e, "signature")).unwrap(),
                    s(e, "signer_address").to_ascii_lowercase(),
                    "{id}"
                );
            }
            "tee_tag" => {
                let tags = i["tags"].as_array().unwrap();
                for (n, t) in tags.iter().enumerate() {
                    let (fw, needs) = tee_tag(t.as_str().unwrap()).unwrap();
                    assert_eq!(fw, e["framework"][n].as_str(), "{id} {t}");
                    assert_eq!(
                        Some(needs),
                        e["onchain_requires_enclave_challenge"][n].as_bool(),
                        "{id} {t}"
                    );
                }
            }
            "result_link" => {
                let link = results_link(s(i, "storage"), s(i, "location"));
                assert_eq!(link, s(e, "results_utf8"), "{id}");
                assert_eq!(to_hex(link.as_bytes()), s(e, "results_hex"), "{id}");
                assert_eq!(
                    to_hex(&abi_encode_bytes(link.as_bytes())),
                    s(e, "task_finalize_log_data"),
                    "{id}"
                );
            }
            "aes256cbc_decrypt" => {
                let key = hex_bytes(s(i, "key_hex")).unwrap();
                let b64 =
                    String::from_utf8(load(&format!("iexec/{}", s(i, "key_base64_file")))).unwrap();
                use base64::Engine;
                assert_eq!(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .unwrap(),
                    key,
                    "{id}"
                );
                let ct = load(&format!("iexec/{}", s(i, "ciphertext_file")));
                assert_eq!(to_hex(&ct[..16]), s(i, "iv_hex"), "{id}");
                let pt = archive::aes256cbc_decrypt(&key, &ct).unwrap();
                assert_eq!(
                    String::from_utf8(pt).unwrap(),
                    s(e, "plaintext_utf8"),
                    "{id}"
                );
                let mut wrong = key.clone();
                wrong[0] ^= 1;
                assert!(archive::aes256cbc_decrypt(&wrong, &ct)
                    .map_or(true, |p| p != s(e, "plaintext_utf8").as_bytes()));
            }
            "rsa_pkcs1v15_decrypt" => {
                let key =
                    archive::rsa_key(&load(&format!("iexec/{}", s(i, "private_key_pem_pkcs8"))))
                        .unwrap();
                let ct = load(&format!("iexec/{}", s(i, "ciphertext_file")));
                let pt = archive::rsa_pkcs1v15_decrypt(&key, &ct).unwrap();
                assert_eq!(
                    String::from_utf8(pt).unwrap(),
                    s(e, "plaintext_utf8"),
                    "{id}"
                );
                assert_eq!(
                    rsa::traits::PublicKeyParts::size(&key) * 8,
                    i["modulus_bits"].as_u64().unwrap() as usize
                );
            }
            "encrypted_result_decrypt" => {
                let path = s(i, "encrypted_zip");
                load(&format!("iexec/{path}"));
                let key = archive::rsa_key(&load(&format!(
                    "iexec/{}",
                    s(i, "beneficiary_private_key_pem")
                )))
                .unwrap();
                let full = testdata().join("iexec").join(path);
                let (outer, _) = archive::read_zip(&std::fs::read(&full).unwrap()).unwrap();
                let names: Vec<&str> = outer.keys().map(String::as_str).collect();
                let mut want: Vec<&str> = e["zip_entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect();
                want.sort();
                assert_eq!(names, want, "{id}");
                let (zip, mode) = archive::decrypt(
                    &key,
                    &outer[archive::WRAPPED_KEY],
                    &outer[archive::ENCRYPTED_ZIP],
                )
                .unwrap();
                assert_eq!(
                    hex::encode(Sha256::digest(&zip)),
                    s(e, "plaintext_zip_sha256"),
                    "{id}"
                );
                assert_eq!(zip.len() as u64, e["plaintext_zip_bytes"].as_u64().unwrap());
                assert_eq!(
                    mode,
                    match s(e, "mode") {
                        "AES-256-CBC" => archive::Encryption::Aes256Cbc,
                        _ => archive::Encryption::LegacyAes128Ecb,
                    },
                    "{id}"
                );
                let a = archive::ResultArchive::open(&full, Some(&key)).unwrap();
                let mut entries: Vec<&str> = e["plaintext_zip_entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect();
                entries.sort();
                assert_eq!(
                    a.files.keys().map(String::as_str).collect::<Vec<_>>(),
                    entries
                );
                let c = a.computed().unwrap();
                assert_eq!(
                    c.deterministic_output_path.as_deref(),
                    e["computed_json"]["deterministic-output-path"].as_str(),
                    "{id}"
                );
                let want = e
                    .get("result_digest")
                    .or(e.get("result_digest_if_deterministic_output_is_result_txt"))
                    .unwrap()
                    .as_str()
                    .unwrap();
                assert_eq!(to_hex(&a.result_digest(&c).unwrap().digest), want, "{id}");
                // Without the key: a clear error, not a guess.
                let err = archive::ResultArchive::open(&full, None).unwrap_err();
                assert!(err.to_string().contains("--key"), "{err}");
            }
            "result_hash_from_zip" => {
                let path = s(i, "result_zip");
                load(&format!("iexec/{path}"));
                let a = archive::ResultArchive::open(&testdata().join("iexec").join(path), None)
                    .unwrap();
                let mut want: Vec<&str> = e["zip_entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect();
                want.sort();
                assert_eq!(a.files.keys().map(String::as_str).collect::<Vec<_>>(), want);
                let d = a.result_digest(&a.computed().unwrap()).unwrap();
                assert_eq!(to_hex(&d.digest), s(e, "result_digest"), "{id}");
                let (rh, _) =
                    result_hash_and_seal(s(i, "task_id"), "0x", &to_hex(&d.digest)).unwrap();
                assert_eq!(to_hex(&rh), s(e, "result_hash"), "{id}");
            }
            k => panic!("{id}: unknown kind {k}"),
        }
        done += 1;
    }
    assert_eq!(done, 41, "vectors checked");
}

#[test]
fn malformed_signatures_and_hex_are_errors() {
    let h = [7u8; 32];
    for bad in [
        "0x",
        "0x1234",
        &format!("0x{}", "11".repeat(65)),
        &format!("0x{}1d", "11".repeat(64)),
        "0xzz",
    ] {
        assert!(recover_eip191(&h, bad).is_err(), "{bad}");
    }
    assert_eq!(hex_bytes("0x123").unwrap(), vec![0x01, 0x23]);
    assert_eq!(hex_bytes("").unwrap(), Vec::<u8>::new());
    assert!(result_digest_callback("0x").is_err());
}
