//! Archive and layer aliasing: a result zip or an image layer that names one file in two
//! ways, or hides one entry behind another, against what the real unpackers leave on disk
//! (`unzip`, GNU `tar`, `umoci unpack`, run here). What we accept must be exactly what they
//! unpack; what could unpack to two different trees must be refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use verifier::iexec::archive::read_zip;

fn tempdir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "aliasing-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Every regular file under `root`, relative path → sha256; a symbolic link as `-> target`.
fn tree_on_disk(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, format!("-> {}", t.display()));
            } else if meta.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, sha(&std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

// --- zips, written by hand so that names can repeat ----------------------------------------

struct ZipEntry<'a> {
    central_name: &'a str,
    local_name: &'a str,
    data: &'a [u8],
    symlink: bool,
}

fn entry<'a>(name: &'a str, data: &'a [u8]) -> ZipEntry<'a> {
    ZipEntry {
        central_name: name,
        local_name: name,
        data,
        symlink: false,
    }
}

/// A zip of stored entries; with `overlap`, the last entry's local header and data are
/// stored inside the first entry's data (one stored stream read as two files).
fn zip(entries: &[ZipEntry<'_>], overlap: bool) -> Vec<u8> {
    if overlap {
        return overlapping(entries);
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        let mut crc = flate2::Crc::new();
        crc.update(e.data);
        let (crc, n) = (crc.sum(), e.data.len() as u32);
        offsets.push(out.len() as u32);
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, stored, time, date
        out.extend(crc.to_le_bytes());
        out.extend(n.to_le_bytes());
        out.extend(n.to_le_bytes());
        out.extend((e.local_name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(e.local_name.as_bytes());
        out.extend(e.data);
        let mut c = Vec::new();
        c.extend(0x0201_4b50u32.to_le_bytes());
        c.extend([0x14, 0x03, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // made by unix, version, flags, method, time, date
        c.extend(crc.to_le_bytes());
        c.extend(n.to_le_bytes());
        c.extend(n.to_le_bytes());
        c.extend((e.central_name.len() as u16).to_le_bytes());
        c.extend([0, 0, 0, 0, 0, 0, 0, 0]); // extra, comment, disk, internal attributes
        let mode: u32 = if e.symlink { 0o120777 } else { 0o100644 };
        c.extend((mode << 16).to_le_bytes());
        central.push(c);
    }
    finish(out, central, &offsets, entries)
}

/// Appends the central directory and the end record.
fn finish(
    mut out: Vec<u8>,
    central: Vec<Vec<u8>>,
    offsets: &[u32],
    entries: &[ZipEntry<'_>],
) -> Vec<u8> {
    let cd_start = out.len() as u32;
    for (i, (mut c, e)) in central.into_iter().zip(entries).enumerate() {
        c.extend(offsets[i].to_le_bytes());
        c.extend(e.central_name.as_bytes());
        out.extend(c);
    }
    let cd_len = out.len() as u32 - cd_start;
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0, 0, 0, 0]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend(cd_len.to_le_bytes());
    out.extend(cd_start.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// Two entries, the second's local header and data inside the first's data.
fn overlapping(entries: &[ZipEntry<'_>]) -> Vec<u8> {
    let [a, b] = entries else {
        panic!("two entries")
    };
    let inner = zip(
        &[ZipEntry {
            central_name: b.central_name,
            local_name: b.local_name,
            data: b.data,
            symlink: false,
        }],
        false,
    );
    let inner_local = &inner[..30 + b.local_name.len() + b.data.len()];
    let outer = zip(
        &[ZipEntry {
            central_name: a.central_name,
            local_name: a.local_name,
            data: inner_local,
            symlink: false,
        }],
        false,
    );
    let outer_local = outer[..30 + a.local_name.len() + inner_local.len()].to_vec();
    // A central record without its offset and name, which `finish` appends.
    let central = |z: &[u8], local_len: usize| z[local_len..local_len + 42].to_vec();
    let ca = central(&outer, outer_local.len());
    let cb = central(&inner, inner_local.len());
    let b_at = (30 + a.local_name.len()) as u32;
    finish(outer_local, vec![ca, cb], &[0, b_at], entries)
}

/// What `unzip` leaves, first copy kept (`-n`) and last copy kept (`-o`).
fn unzip(bytes: &[u8]) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let d = tempdir("unzip");
    let z = d.join("r.zip");
    std::fs::write(&z, bytes).unwrap();
    let run = |flag: &str| {
        let out = d.join(flag.trim_start_matches('-'));
        std::fs::create_dir_all(&out).unwrap();
        // unzip may warn and exit non-zero (e.g. on `../x`); what it wrote is what counts.
        let _ = Command::new("unzip")
            .args(["-qq", flag, "-d"])
            .arg(&out)
            .arg(&z)
            .output()
            .expect("unzip (Debian package unzip) must be installed");
        tree_on_disk(&out)
    };
    let r = (run("-n"), run("-o"));
    let _ = std::fs::remove_dir_all(&d);
    r
}

#[test]
fn result_zips_are_read_as_unzip_unpacks_them_or_refused() {
    let (genuine, forged) = (
        br#"{"answer":"genuine"}"#.as_slice(),
        br#"{"answer":"forged"}"#.as_slice(),
    );
    let computed = br#"{"deterministic-output-path":"/iexec_out/result.json"}"#.as_slice();
    let plain = zip(
        &[
            entry("computed.json", computed),
            entry("result.json", genuine),
        ],
        false,
    );
    let nested = zip(
        &[
            entry("computed.json", computed),
            entry("out/", b""),
            entry("out/a.txt", b"a"),
        ],
        false,
    );
    // Accepted: our reading is what unzip unpacks, with either overwrite rule.
    for bytes in [&plain, &nested] {
        let (files, _) = read_zip(bytes).unwrap();
        let ours: BTreeMap<String, String> =
            files.iter().map(|(k, v)| (k.clone(), sha(v))).collect();
        let (first, last) = unzip(bytes);
        assert_eq!(ours, first);
        assert_eq!(ours, last);
    }

    let mut link = entry("result.json", b"/etc/passwd");
    link.symlink = true;
    let mut renamed = entry("result.json", genuine);
    renamed.local_name = "resultXjson";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "the same name twice",
            zip(
                &[entry("result.json", forged), entry("result.json", genuine)],
                false,
            ),
            "name the same file",
        ),
        (
            "./ prefix",
            zip(
                &[
                    entry("./result.json", forged),
                    entry("result.json", genuine),
                ],
                false,
            ),
            "name the same file",
        ),
        (
            "a//b against a/b",
            zip(
                &[entry("out//r.json", forged), entry("out/r.json", genuine)],
                false,
            ),
            "name the same file",
        ),
        (
            "case",
            zip(
                &[entry("RESULT.JSON", forged), entry("result.json", genuine)],
                false,
            ),
            "name the same file",
        ),
        (
            "a .. component",
            zip(&[entry("../result.json", forged)], false),
            "a .. component",
        ),
        (
            "an absolute name",
            zip(&[entry("/result.json", forged)], false),
            "absolute",
        ),
        ("a symbolic link", zip(&[link], false), "symbolic link"),
        (
            "a local header naming another file",
            zip(&[renamed], false),
            "local header names another file",
        ),
        (
            "two entries on the same data",
            zip(
                &[entry("result.json", genuine), entry("copy.json", genuine)],
                true,
            ),
            "overlap",
        ),
    ];
    for (what, bytes, reason) in &cases {
        let e = read_zip(bytes).expect_err(what).to_string();
        assert!(e.contains(reason), "{what}: {e}");
    }
    // Why: for the repeated names, unzip's two overwrite rules give two different results
    // (and on a case-insensitive file system, macOS's or Windows', so would the fourth).
    for (what, bytes, _) in &cases[..3] {
        let (first, last) = unzip(bytes);
        assert_ne!(first, last, "{what}: unzip -n and -o agree");
    }
}

#[test]
fn result_zips_over_the_limits_are_refused_from_their_end_record() {
    // The end record declares 65535 entries: refused before a single entry is read.
    let mut z = zip(&[entry("result.json", b"x")], false);
    let n = z.len();
    z[n - 12..n - 10].copy_from_slice(&0xFFFFu16.to_le_bytes());
    z[n - 14..n - 12].copy_from_slice(&0xFFFFu16.to_le_bytes());
    let e = read_zip(&z).unwrap_err().to_string();
    assert!(e.contains("ZIP64") || e.contains("more than"), "{e}");
    let mut z = zip(&[entry("result.json", b"x")], false);
    z[n - 12..n - 10].copy_from_slice(&10_001u16.to_le_bytes());
    z[n - 14..n - 12].copy_from_slice(&10_001u16.to_le_bytes());
    let e = read_zip(&z).unwrap_err().to_string();
    assert!(e.contains("10001 entries declared, more than 10000"), "{e}");
    // A directory that claims to be larger than the file.
    let mut z = zip(&[entry("result.json", b"x")], false);
    z[n - 10..n - 6].copy_from_slice(&u32::MAX.wrapping_sub(7).to_le_bytes());
    assert!(read_zip(&z).is_err());
}

// --- layers --------------------------------------------------------------------------------

/// One tar header block (ustar) and its data, padded.
fn tar_entry(name: &str, typ: u8, data: &[u8], link: &str) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000755");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000001");
    h[148..156].copy_from_slice(b"        ");
    h[156] = typ;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn tar_end() -> Vec<u8> {
    vec![0; 1024]
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// A layer: its gzip blob and its tar.
type Layer = (Vec<u8>, Vec<u8>);

const GENUINE: &[u8] = b"\x7fELF genuine app binary";
const EVIL: &[u8] = b"\x7fELF another binary";
const MODEL: &[u8] = b"GGUF a model";

/// An OCI layout of `layers` (gzip blobs, bottom first, each with its tar's diff_id) and the
/// measurement a reader that believes it holds the genuine binary would write.
fn layout(tag: &str, layers: &[(Vec<u8>, Vec<u8>)]) -> (PathBuf, oci_image::Measurement) {
    let dir = tempdir(tag).join("oci");
    let blobs = oci_image::blob::BlobDir::create(&dir).unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (gz, tar) in layers {
        descs.push(blobs.put(gz).unwrap());
        diff_ids.push(format!("sha256:{}", sha(tar)));
    }
    let entrypoint = vec!["/app/iexec-llm".to_string()];
    let config = oci_image::manifest::config_json(&entrypoint, &[], "/", &diff_ids).unwrap();
    let config = blobs.put(config.as_bytes()).unwrap();
    let manifest = oci_image::manifest::manifest_json(&config, &descs).unwrap();
    let manifest = blobs.put(manifest.as_bytes()).unwrap();
    let index = oci_image::manifest::index_json(&manifest, "t").unwrap();
    std::fs::write(dir.join("index.json"), index).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let m = oci_image::Measurement {
        schema: oci_image::measurement::SCHEMA.into(),
        reference: "t".into(),
        manifest_digest: manifest.digest.clone(),
        config_digest: config.digest.clone(),
        layers: descs
            .iter()
            .zip(&diff_ids)
            .map(|(d, id)| oci_image::measurement::LayerMeasurement {
                concern: "layer".into(),
                digest: d.digest.clone(),
                diff_id: id.clone(),
                size: d.size,
            })
            .collect(),
        entrypoint,
        app: oci_image::measurement::AppMeasurement {
            version: "0.1.0".into(),
            path: "/app/iexec-llm".into(),
            sha256: sha(GENUINE),
        },
        models: vec![oci_image::measurement::FileMeasurement {
            path: "/models/m.gguf".into(),
            sha256: sha(MODEL),
        }],
    };
    (dir, m)
}

/// What `umoci unpack` leaves in the bundle's rootfs.
fn umoci(dir: &Path) -> BTreeMap<String, String> {
    let bundle = dir.parent().unwrap().join("bundle");
    let mut c = Command::new("umoci");
    c.args(["unpack", "--image"])
        .arg(format!("{}:t", dir.display()));
    if !nix_is_root() {
        c.arg("--rootless");
    }
    let o = c
        .arg(&bundle)
        .output()
        .expect("umoci (Debian package umoci) must be installed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    tree_on_disk(&bundle.join("rootfs"))
}

/// What GNU tar leaves after extracting every layer in order (no whiteouts: tar has none).
fn gnu_tar(layers: &[(Vec<u8>, Vec<u8>)]) -> BTreeMap<String, String> {
    let d = tempdir("gnutar");
    let root = d.join("root");
    std::fs::create_dir_all(&root).unwrap();
    for (i, (gz, _)) in layers.iter().enumerate() {
        let f = d.join(format!("{i}.tar.gz"));
        std::fs::write(&f, gz).unwrap();
        let o = Command::new("tar")
            .arg("-xzf")
            .arg(&f)
            .arg("-C")
            .arg(&root)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    tree_on_disk(&root)
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn layer(entries: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
    let mut tar: Vec<u8> = entries.concat();
    tar.extend(tar_end());
    (gzip(&tar), tar)
}

fn models() -> (Vec<u8>, Vec<u8>) {
    layer(&[
        tar_entry("models/", b'5', b"", ""),
        tar_entry("models/m.gguf", b'0', MODEL, ""),
    ])
}

/// The measurement's verdict on a layout: Err(reason) when refused, else the app binary's
/// check (pass, found).
fn measure(dir: &Path, m: &oci_image::Measurement) -> Result<(bool, String), String> {
    let (measured, mut report) =
        verifier::image::measure::measure(dir, Some("t")).map_err(|e| e.to_string())?;
    verifier::image::measure::compare(&measured, m, &mut report);
    let app = report
        .checks
        .iter()
        .find(|c| c.name == "app binary /app/iexec-llm sha256")
        .unwrap();
    assert!(
        report
            .checks
            .iter()
            .filter(|c| c.name != app.name)
            .all(|c| c.pass),
        "{report:?}"
    );
    Ok((app.pass, app.found.clone()))
}

#[test]
fn image_layers_are_measured_as_unpackers_unpack_them_or_refused() {
    let app = |entries: &[Vec<u8>]| {
        let mut e = vec![tar_entry("app/", b'5', b"", "")];
        e.extend_from_slice(entries);
        layer(&e)
    };
    let genuine = app(&[tar_entry("app/iexec-llm", b'0', GENUINE, "")]);
    let (model_sha, evil_sha) = (sha(MODEL), sha(EVIL));

    // Accepted, with the binary the unpackers leave: the genuine one, or visibly another.
    let accepted: Vec<(&str, Vec<Layer>, bool, &str)> = vec![
        (
            "the genuine image",
            vec![models(), genuine.clone()],
            true,
            "",
        ),
        (
            "an upper layer replaces the binary with a hard link to the model",
            vec![
                models(),
                genuine.clone(),
                layer(&[tar_entry("app/iexec-llm", b'1', b"", "models/m.gguf")]),
            ],
            false,
            &model_sha,
        ),
        (
            "an upper layer replaces the binary with a symbolic link",
            vec![
                models(),
                genuine.clone(),
                layer(&[tar_entry("app/iexec-llm", b'2', b"", "/bin/sh")]),
            ],
            false,
            "(a symbolic link to /bin/sh, not a file)",
        ),
        (
            "an upper layer whites the binary out",
            vec![
                models(),
                genuine.clone(),
                layer(&[tar_entry("app/.wh.iexec-llm", b'0', b"", "")]),
            ],
            false,
            "(absent)",
        ),
        (
            "an upper layer makes /app opaque and puts another binary",
            vec![
                models(),
                genuine.clone(),
                layer(&[
                    tar_entry("app/.wh..wh..opq", b'0', b"", ""),
                    tar_entry("app/iexec-llm", b'0', EVIL, ""),
                ]),
            ],
            false,
            &evil_sha,
        ),
    ];
    for (what, layers, pass, found) in &accepted {
        let (dir, m) = layout("accepted", layers);
        let (ok, got) = measure(&dir, &m).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(ok, *pass, "{what}: {got}");
        if !pass {
            assert_eq!(got, *found, "{what}");
        }
        // Whatever we measured is what umoci unpacks.
        let unpacked = umoci(&dir);
        let want = match unpacked.get("app/iexec-llm") {
            Some(s) if s.starts_with("-> ") => {
                format!("(a symbolic link to {}, not a file)", &s[3..])
            }
            Some(s) => s.clone(),
            None => "(absent)".into(),
        };
        assert_eq!(got, want, "{what}: umoci unpacked {unpacked:?}");
    }

    // Refused: these could unpack to another binary than a naive reading hashes.
    let two_members = {
        let first = tar_entry("app/iexec-llm", b'0', GENUINE, "");
        let mut second = tar_entry("app/iexec-llm", b'0', EVIL, "");
        second.extend(tar_end());
        let mut gz = gzip(&first);
        gz.extend(gzip(&second));
        (gz, [first, second].concat())
    };
    let refused: Vec<(&str, Vec<Layer>, &str)> = vec![
        (
            "the binary twice, as app//iexec-llm",
            vec![
                models(),
                app(&[
                    tar_entry("app/iexec-llm", b'0', GENUINE, ""),
                    tar_entry("app//iexec-llm", b'0', EVIL, ""),
                ]),
            ],
            "named twice",
        ),
        (
            "the binary twice, as app/./iexec-llm",
            vec![
                models(),
                app(&[
                    tar_entry("app/iexec-llm", b'0', GENUINE, ""),
                    tar_entry("app/./iexec-llm", b'0', EVIL, ""),
                ]),
            ],
            "named twice",
        ),
        (
            "the binary twice, as /app/iexec-llm",
            vec![
                models(),
                app(&[
                    tar_entry("app/iexec-llm", b'0', GENUINE, ""),
                    tar_entry("/app/iexec-llm", b'0', EVIL, ""),
                ]),
            ],
            "named twice",
        ),
        (
            "the binary, then a hard link over it in the same layer",
            vec![
                models(),
                app(&[
                    tar_entry("app/iexec-llm", b'0', GENUINE, ""),
                    tar_entry("app/iexec-llm", b'1', b"", "models/m.gguf"),
                ]),
            ],
            "named twice",
        ),
        (
            "a layer of two gzip members",
            vec![models(), two_members],
            "named twice",
        ),
        (
            "a path with ..",
            vec![
                models(),
                app(&[tar_entry("app/../app/iexec-llm", b'0', GENUINE, "")]),
            ],
            ".. component",
        ),
        (
            "an entry below a symbolic link",
            vec![
                models(),
                layer(&[tar_entry("app", b'2', b"", "/tmp")]),
                layer(&[tar_entry("app/iexec-llm", b'0', GENUINE, "")]),
            ],
            "below the symbolic link",
        ),
        (
            "an upper layer replaces the binary with a type 7 (contiguous) file",
            vec![
                models(),
                genuine.clone(),
                layer(&[tar_entry("app/iexec-llm", b'7', EVIL, "")]),
            ],
            "entry type",
        ),
        (
            "a FIFO",
            vec![
                models(),
                app(&[
                    tar_entry("app/iexec-llm", b'0', GENUINE, ""),
                    tar_entry("app/pipe", b'6', b"", ""),
                ]),
            ],
            "entry type",
        ),
    ];
    for (what, layers, reason) in &refused {
        let (dir, m) = layout("refused", layers);
        let e = measure(&dir, &m).expect_err(what);
        assert!(e.contains(reason), "{what}: {e}");
    }
    // Why, for the first three and the gzip members: GNU tar leaves the last copy, the other
    // binary, where a reader of the first copy would hash the genuine one.
    for (what, layers, _) in refused.iter().take(3).chain(refused.iter().skip(4).take(1)) {
        let t = gnu_tar(layers);
        assert_eq!(t.get("app/iexec-llm"), Some(&sha(EVIL)), "{what}: {t:?}");
    }
}

#[test]
fn blobs_that_are_not_regular_files_are_refused_without_reading_them() {
    let (dir, m) = layout(
        "special",
        &[
            models(),
            layer(&[tar_entry("app/iexec-llm", b'0', GENUINE, "")]),
        ],
    );
    let blob = dir
        .join("blobs/sha256")
        .join(m.layers[1].digest.trim_start_matches("sha256:"));
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &blob).unwrap();
    let e = verifier::image::measure::measure(&dir, Some("t"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
    std::fs::remove_file(&blob).unwrap();
    let o = Command::new("mkfifo").arg(&blob).status().unwrap();
    assert!(o.success());
    let e = verifier::image::measure::measure(&dir, Some("t"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
}
