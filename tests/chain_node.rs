//! A local chain for a test: a hardhat node on 127.0.0.1 (tests/chain, installed by
//! scripts/test.sh), the real PoCo 6.1.0 deployed on it by tests/chain/deploy.js, stopped when
//! the value is dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Chain {
    node: Child,
    /// JSON-RPC endpoint.
    pub url: String,
    /// What deploy.js printed: the Diamond, RLC, the registries, the domain.
    pub deployment: Value,
}

fn root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The unpacked @iexec/poco 6.1.0 (scripts/test.sh fetches it).
pub fn poco_dir() -> PathBuf {
    std::env::var_os("POCO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".cache/poco-6.1.0"))
}

fn rpc(url: &str, method: &str) -> Option<Value> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []});
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let mut r = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .ok()?;
    let v: Value = r.body_mut().read_json().ok()?;
    Some(v["result"].clone())
}

impl Chain {
    /// Starts the node on a free port and deploys PoCo.
    pub fn start() -> Chain {
        let chain = root().join("tests/chain");
        let hardhat = chain.join("node_modules/.bin/hardhat");
        assert!(
            hardhat.is_file(),
            "{} is missing: run scripts/test.sh (npm ci in tests/chain)",
            hardhat.display()
        );
        assert!(
            poco_dir().join("package.json").is_file(),
            "{} is missing: run scripts/test.sh (fetch-poco.js)",
            poco_dir().display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let node = Command::new(&hardhat)
            .args([
                "node",
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .current_dir(&chain)
            .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut c = Chain {
            node,
            url,
            deployment: Value::Null,
        };
        let started = Instant::now();
        while rpc(&c.url, "eth_chainId").is_none() {
            assert!(c.node.try_wait().unwrap().is_none(), "hardhat node exited");
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "hardhat node not answering"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let o = Command::new("node")
            .arg(chain.join("deploy.js"))
            .arg(poco_dir())
            .env("RPC_URL", &c.url)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "deploy.js: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        c.deployment = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(c.deployment["facets"], 14, "{}", c.deployment);
        assert_eq!(c.deployment["functions"], 98, "{}", c.deployment);
        c
    }

    /// The PoCo Diamond.
    pub fn poco(&self) -> String {
        self.deployment["Diamond"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let _ = self.node.kill();
        let _ = self.node.wait();
    }
}
