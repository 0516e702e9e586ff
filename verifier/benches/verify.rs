//! Time to verify one quote with its collateral (S1: TDX v4, dcap-qvl bundle), ours and the
//! dcap-qvl crate's, in the same run: `cargo bench -p verifier --bench verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

fn time<T>(n: u32, mut f: impl FnMut() -> T) -> f64 {
    for _ in 0..n / 10 {
        black_box(f());
    }
    let t = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    t.elapsed().as_secs_f64() / f64::from(n)
}

fn main() {
    let quote = common::load("tdx/dcap-qvl/tdx_quote");
    let bundle = common::load("tdx/dcap-qvl/tdx_quote_collateral.json");
    let now = 1_752_919_234;
    let n = 200;
    let ours = time(n, || {
        let q = verifier::tdx::quote::parse(&quote).unwrap();
        let c = verifier::tdx::collateral::Collateral::from_bundle(&bundle).unwrap();
        let v = verifier::tdx::verify::verify(&q, &c, now, &Default::default());
        assert!(v.report.passed());
        v.tcb
    });
    let theirs = time(n, || {
        let c: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(&bundle).unwrap();
        dcap_qvl::verify::rustcrypto::verify(&quote, &c, now as u64)
            .unwrap()
            .status
    });
    println!("verify one TDX quote with collateral (S1), mean of {n}, parsing included:");
    println!("  ours            {:8.1} µs", ours * 1e6);
    println!(
        "  dcap-qvl 0.4.1  {:8.1} µs  (rustcrypto backend)",
        theirs * 1e6
    );
    println!("  ratio ours / dcap-qvl: {:.2}", ours / theirs);
}
