//! `verifier collateral fetch` against a PCS stand-in on 127.0.0.1 (a thread of this test)
//! serving the real collateral of the test vectors with Intel's paths and header names; then
//! `check-quote --collateral-cache` offline; and the time-aware verdicts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn vec_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tdx")
        .join(rel)
}

fn vector(rel: &str) -> Vec<u8> {
    std::fs::read(vec_path(rel)).unwrap()
}

/// Percent-encoding of everything but unreserved characters, as PCS sends its headers.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One answer of the stand-in.
#[derive(Clone, Default)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Declared length (for a truncated body: more than is sent).
    length: Option<usize>,
    delay: Duration,
}

fn ok(body: Vec<u8>, header: Option<(&str, &str)>) -> Answer {
    Answer {
        status: 200,
        headers: header
            .map(|(h, v)| vec![(h.to_string(), url_encode(v))])
            .unwrap_or_default(),
        body,
        ..Default::default()
    }
}

/// A PCS stand-in: path-and-query → answer; anything else 404.
struct Server {
    url: String,
    routes: Arc<Mutex<BTreeMap<String, Answer>>>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start() -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let routes: Arc<Mutex<BTreeMap<String, Answer>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, q, s) = (routes.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line.split(' ').nth(1).unwrap_or("").to_string();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                q.lock().unwrap().push(target.clone());
                let a = r.lock().unwrap().get(&target).cloned().unwrap_or(Answer {
                    status: 404,
                    body: b"not found".to_vec(),
                    ..Default::default()
                });
                std::thread::sleep(a.delay);
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    a.status,
                    a.length.unwrap_or(a.body.len())
                );
                for (h, v) in &a.headers {
                    head.push_str(&format!("{h}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&a.body);
            }
        });
        Server {
            url,
            routes,
            requests,
            stop,
        }
    }

    fn serve(&self, routes: BTreeMap<String, Answer>) {
        *self.routes.lock().unwrap() = routes;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

const TCB: &str = "/tdx/certification/v4/tcb?fmspc=";
const QE: &str = "/tdx/certification/v4/qe/identity";
const CRL: &str = "/sgx/certification/v4/pckcrl?ca=platform&encoding=der";
const ROOT: &str = "/sgx/certification/v4/rootcacrl";

/// The PCS answers for a dcap-qvl collateral bundle.
fn from_bundle(rel: &str) -> BTreeMap<String, Answer> {
    let b: Value = serde_json::from_slice(&vector(rel)).unwrap();
    let s = |k: &str| b[k].as_str().unwrap().to_string();
    let tcb: Value = serde_json::from_str(&s("tcb_info")).unwrap();
    let fmspc = tcb["fmspc"].as_str().unwrap().to_ascii_uppercase();
    let mut m = BTreeMap::new();
    m.insert(
        format!("{TCB}{fmspc}"),
        ok(
            format!(
                "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
                s("tcb_info"),
                s("tcb_info_signature")
            )
            .into_bytes(),
            Some(("TCB-Info-Issuer-Chain", &s("tcb_info_issuer_chain"))),
        ),
    );
    m.insert(
        QE.into(),
        ok(
            format!(
                "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
                s("qe_identity"),
                s("qe_identity_signature")
            )
            .into_bytes(),
            Some((
                "SGX-Enclave-Identity-Issuer-Chain",
                &s("qe_identity_issuer_chain"),
            )),
        ),
    );
    m.insert(
        CRL.into(),
        ok(
            hex::decode(s("pck_crl")).unwrap(),
            Some(("SGX-PCK-CRL-Issuer-Chain", &s("pck_crl_issuer_chain"))),
        ),
    );
    m.insert(
        ROOT.into(),
        ok(hex::decode(s("root_ca_crl")).unwrap(), None),
    );
    m
}

/// The PCS answers of June 2025 for FMSPC 90C06F000000 (vector S13's separate files).
fn june_2025() -> BTreeMap<String, Answer> {
    let chain = String::from_utf8(vector("derived/tcb_info_issuer_chain_2025-05.pem")).unwrap();
    // The PCK CRL's issuer chain: the PCK Platform CA and the root, as PCS sends it.
    let b: Value =
        serde_json::from_slice(&vector("dcap-qvl/tdx_quote_outdated_collateral.json")).unwrap();
    let crl_chain = b["pck_crl_issuer_chain"].as_str().unwrap();
    let mut m = BTreeMap::new();
    m.insert(
        format!("{TCB}90C06F000000"),
        ok(
            vector("automata/0625/tcbinfov3_90C06F000000.json"),
            Some(("TCB-Info-Issuer-Chain", &chain)),
        ),
    );
    m.insert(
        QE.into(),
        ok(
            vector("automata/0625/qe_td.json"),
            Some(("SGX-Enclave-Identity-Issuer-Chain", &chain)),
        ),
    );
    m.insert(
        CRL.into(),
        ok(
            vector("derived/pck_platform_crl_2025-06-19.der"),
            Some(("SGX-PCK-CRL-Issuer-Chain", crl_chain)),
        ),
    );
    m.insert(
        ROOT.into(),
        ok(vector("automata/solana/intel_root_ca_crl.der"), None),
    );
    m
}

fn verifier(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_verifier"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn fetch(
    server: &Server,
    quote: &str,
    cache: &Path,
    at: &str,
    extra: &[&str],
) -> (i32, String, String) {
    let q = vec_path(quote);
    let mut args = vec![
        "collateral",
        "fetch",
        "--quote",
        q.to_str().unwrap(),
        "--pccs",
        &server.url,
        "--cache",
        cache.to_str().unwrap(),
        "--at",
        at,
    ];
    args.extend_from_slice(extra);
    verifier(&args)
}

fn files_under(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("verifier-collateral-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The checks of a `--json` verdict: (name, pass).
fn checks(json: &str) -> Vec<(String, bool)> {
    let v: Value = serde_json::from_str(json).unwrap();
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["pass"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn fetched_collateral_gives_the_bundles_verdict_offline_and_keeps_the_bytes_as_served() {
    let server = Server::start();
    let routes = from_bundle("dcap-qvl/tdx_quote_collateral.json");
    server.serve(routes.clone());
    let cache = temp("s1");
    let at = "2025-07-19T10:00:34Z";
    let (code, out, err) = fetch(&server, "dcap-qvl/tdx_quote", &cache, at, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("fetched and cached"), "{out}");
    // Intel's paths, in order, nothing else asked.
    assert_eq!(
        *server.requests.lock().unwrap(),
        vec![
            format!("{TCB}B0C06F000000"),
            QE.to_string(),
            CRL.to_string(),
            ROOT.to_string()
        ]
    );
    // Bodies byte for byte; header values as sent (URL-encoded).
    let set = files_under(&cache);
    assert_eq!(set.len(), 8, "{set:?}");
    let dir = set[0].parent().unwrap().to_path_buf();
    assert!(
        dir.ends_with("B0C06F000000/platform/17-20250619T103227Z"),
        "{dir:?}"
    );
    let file = |n: &str| std::fs::read(dir.join(n)).unwrap();
    assert_eq!(
        file("tcb_info.json"),
        routes[&format!("{TCB}B0C06F000000")].body
    );
    assert_eq!(file("pck_crl"), routes[CRL].body);
    assert_eq!(file("root_ca_crl"), routes[ROOT].body);
    assert_eq!(
        file("qe_identity.issuer-chain"),
        routes[QE].headers[0].1.as_bytes()
    );

    // Offline: the same verdict as the bundle, check for check.
    drop(server);
    let q = vec_path("dcap-qvl/tdx_quote");
    let bundle = vec_path("dcap-qvl/tdx_quote_collateral.json");
    let quote_with = |how: &str, from: &Path| {
        verifier(&[
            "check-quote",
            q.to_str().unwrap(),
            how,
            from.to_str().unwrap(),
            "--at",
            at,
            "--json",
        ])
    };
    let (c1, j1, e1) = quote_with("--collateral", &bundle);
    let (c2, j2, e2) = quote_with("--collateral-cache", &cache);
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}{j2}");
    assert_eq!(checks(&j1), checks(&j2));
    assert!(checks(&j2).len() > 30);
    let v: Value = serde_json::from_str(&j2).unwrap();
    assert_eq!(v["tcb_status"], "UpToDate");
    assert_eq!(
        v["timeline"]["collateral"]["tcb_info"]["tcb_evaluation_data_number"],
        17
    );

    // Fetching again: the same bytes, kept once.
    let server = Server::start();
    server.serve(routes);
    let (code, out, _) = fetch(&server, "dcap-qvl/tdx_quote", &cache, at, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("already cached"), "{out}");
    assert_eq!(files_under(&cache).len(), 8);

    // A cached file edited afterwards is named, and nothing is verified.
    let mut crl = file("pck_crl");
    crl[40] ^= 1;
    std::fs::write(dir.join("pck_crl"), crl).unwrap();
    let (code, _, err) = verifier(&[
        "check-quote",
        q.to_str().unwrap(),
        "--collateral-cache",
        cache.to_str().unwrap(),
        "--at",
        at,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("pck_crl") && err.contains("source.json records"),
        "{err}"
    );
}

#[test]
fn bad_answers_fail_with_the_reason_and_write_nothing() {
    let good = from_bundle("dcap-qvl/tdx_quote_collateral.json");
    let at = "2025-07-19T10:00:34Z";
    let tcb_path = format!("{TCB}B0C06F000000");
    type Spoil = Box<dyn Fn(&mut BTreeMap<String, Answer>)>;
    let tcb = tcb_path.clone();
    let cases: Vec<(&str, Spoil, &str)> = vec![
        (
            "404",
            Box::new(|m| {
                m.remove(QE);
            }),
            "HTTP 404",
        ),
        (
            "500",
            Box::new(|m| m.get_mut(CRL).unwrap().status = 500),
            "HTTP 500",
        ),
        (
            "redirect",
            Box::new(|m| {
                let a = m.get_mut(ROOT).unwrap();
                a.status = 302;
                a.headers = vec![("Location".into(), "http://127.0.0.2/root.der".into())];
            }),
            "HTTP 302",
        ),
        (
            "wrong FMSPC",
            Box::new(move |m| {
                // Another platform's TCB info, genuinely signed.
                let other = from_bundle("dcap-qvl/tdx_quote_outdated_collateral.json");
                let (_, a) = other.iter().find(|(k, _)| k.starts_with(TCB)).unwrap();
                m.insert(tcb.clone(), a.clone());
            }),
            "the TCB info served is for FMSPC 90C06F000000, the quote's is B0C06F000000",
        ),
        (
            "truncated body",
            Box::new({
                let tcb = tcb_path.clone();
                move |m| {
                    let a = m.get_mut(&tcb).unwrap();
                    a.length = Some(a.body.len());
                    a.body.truncate(a.body.len() / 2);
                }
            }),
            "B0C06F000000: body: ",
        ),
        (
            "chain not to the pinned root",
            Box::new({
                let tcb = tcb_path.clone();
                move |m| {
                    // Intel QVL's synthetic test PKI: a TCB signing chain with the same
                    // names, ending at a self-signed root that is not the pinned one.
                    let pem = String::from_utf8(vector("intel-qvl-synthetic/tcbSignChain.pem"))
                        .unwrap();
                    m.get_mut(&tcb).unwrap().headers =
                        vec![("TCB-Info-Issuer-Chain".into(), url_encode(&pem))];
                }
            }),
            "TCB info signing chain: each certificate named and signed by the next, ending at the trusted root",
        ),
        (
            "broken signature",
            Box::new({
                let tcb = tcb_path.clone();
                move |m| {
                    let a = m.get_mut(&tcb).unwrap();
                    let s = String::from_utf8(a.body.clone()).unwrap();
                    let at = s.rfind("\"signature\":\"").unwrap() + 13;
                    let mut b = s.into_bytes();
                    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
                    a.body = b;
                }
            }),
            "TCB info signature",
        ),
        (
            "no issuer chain header",
            Box::new(|m| m.get_mut(QE).unwrap().headers.clear()),
            "no SGX-Enclave-Identity-Issuer-Chain header",
        ),
        (
            "slow server",
            Box::new(|m| m.get_mut(QE).unwrap().delay = Duration::from_secs(6)),
            "qe/identity: timeout",
        ),
    ];
    for (what, spoil, want) in cases {
        let server = Server::start();
        let mut routes = good.clone();
        spoil(&mut routes);
        server.serve(routes);
        let cache = temp("bad");
        let started = std::time::Instant::now();
        let (code, out, err) = fetch(
            &server,
            "dcap-qvl/tdx_quote",
            &cache,
            at,
            &["--timeout", "2"],
        );
        eprintln!("{what}: {}", err.trim());
        assert_eq!(code, 2, "{what}: {out}{err}");
        assert!(err.contains(want), "{what}: {err}");
        assert!(
            files_under(&cache).is_empty(),
            "{what}: {:?}",
            files_under(&cache)
        );
        // Bounded by --timeout, not by the server (a check that it returns, not of speed).
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
    }
}

#[test]
fn verdicts_say_their_time_and_what_newer_collateral_says() {
    // The Alibaba Cloud quote (vector S13), FMSPC 90C06F000000: PCS's answers of June 2025
    // (TCB evaluation data number 17), then of February 2026 (number 18, one newer level).
    let cache = temp("time");
    let quote = "automata/alibaba_quote_5.dat";
    let server = Server::start();
    server.serve(june_2025());
    let (code, out, err) = fetch(&server, quote, &cache, "2025-07-01T00:00:00Z", &[]);
    assert_eq!(code, 0, "{out}{err}");
    server.serve(from_bundle("dcap-qvl/tdx_quote_outdated_collateral.json"));
    let (code, out, err) = fetch(&server, quote, &cache, "2026-03-01T00:00:00Z", &[]);
    assert_eq!(code, 0, "{out}{err}");
    drop(server);

    let dir = std::env::temp_dir().join(format!("verifier-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = |name: &str, extra: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{{\"allow_any_mr_servicetd\": true{extra}}}")).unwrap();
        p
    };
    let plain = policy("plain.json", "");
    let q = vec_path(quote);
    let check = |at: &str, p: &Path| {
        verifier(&[
            "check-quote",
            q.to_str().unwrap(),
            "--collateral-cache",
            cache.to_str().unwrap(),
            "--at",
            at,
            "--policy",
            p.to_str().unwrap(),
        ])
    };

    // At the quote's time: June's collateral, UpToDate; the newer set says OutOfDate, one
    // level behind.
    let (code, out, err) = check("2025-07-01T00:00:00Z", &plain);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("time: verdict made at"), "{out}");
    assert!(out.contains("for the time Jul  1 00:00:00 2025"), "{out}");
    assert!(
        out.contains("TCB info #17 issued 2025-06-05T03:43:45Z"),
        "{out}"
    );
    assert!(out.contains("the newest of this collateral"), "{out}");
    assert!(
        out.contains("newest collateral in the cache: TCB info #18"),
        "{out}"
    );
    assert!(
        out.contains("TCB status OutOfDate; platform: TCB level 2024-03-13T00:00:00Z (OutOfDate), 1 newer level(s): 2024-11-13T00:00:00Z UpToDate"),
        "{out}"
    );
    assert!(out.contains("the cache holds 2 set(s)"), "{out}");

    // The last second of June's window (the QE identity's next update is the earliest end)
    // and one second after it: not verified, the window named.
    let (code, out, _) = check("2025-07-04T09:40:18Z", &plain);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = check("2025-07-04T09:40:19Z", &plain);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ QE identity current at"), "{out}");
    assert_eq!(out.matches('✗').count(), 1, "{out}");

    // Under February 2026's collateral: OutOfDate, refused; accepted within a grace period
    // counted from the newer level's date (2024-11-13), refused after it.
    let (code, out, _) = check("2026-03-01T00:00:00Z", &plain);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TCB info #18"), "{out}");
    assert!(
        out.contains("1 newer level(s): 2024-11-13T00:00:00Z UpToDate"),
        "{out}"
    );
    let graced = policy("grace.json", ", \"out_of_date_grace_days\": 500");
    let (code, out, _) = check("2026-03-01T00:00:00Z", &graced);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("within the grace period: out of date since 2024-11-13T00:00:00Z (473 days)"),
        "{out}"
    );
    let short = policy("short.json", ", \"out_of_date_grace_days\": 400");
    let (code, _, _) = check("2026-03-01T00:00:00Z", &short);
    assert_eq!(code, 1);

    // A minimum TCB evaluation data number refuses June's collateral at June's time.
    let fresh = policy("fresh.json", ", \"min_tcb_evaluation_data_number\": 18");
    let (code, out, _) = check("2025-07-01T00:00:00Z", &fresh);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ policy: TCB info TCB evaluation data number"),
        "{out}"
    );
    // Before any cached set was issued: no collateral, said so.
    let (code, _, err) = check("2025-01-01T00:00:00Z", &plain);
    assert_eq!(code, 2);
    assert!(err.contains("issued at or before"), "{err}");
}
