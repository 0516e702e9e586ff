//! Event logs from `verifier/testdata/tdx` replay to their expected RTMRs; negatives fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use serde_json::Value;
use verifier::tdx::eventlog::{parse_ccel, parse_dstack, replay, Event};
use verifier::tdx::quote::{self, Body};

fn eventlog_vectors() -> Vec<Value> {
    let v: Value = serde_json::from_slice(&load("tdx/vectors.json")).unwrap();
    v["eventlog_vectors"].as_array().unwrap().clone()
}

/// RTMR0..3 of a quote, hex.
fn quote_rtmrs(bytes: &[u8]) -> Vec<String> {
    let q = quote::parse(bytes).unwrap();
    let Body::Td(td) = q.body else {
        panic!("not a TD quote")
    };
    td.rtmr.iter().map(hex::encode).collect()
}

/// (events, expected RTMRs) of a vector.
fn vector(v: &Value) -> (Vec<Event>, Vec<String>) {
    let log = v["event_log"].as_str().unwrap();
    if let Some(file) = log.strip_suffix(" (field event_log)") {
        let j: Value = serde_json::from_slice(&load(&format!("tdx/{file}"))).unwrap();
        let events = parse_dstack(j["event_log"].as_str().unwrap()).unwrap();
        let q = hex::decode(j["quote"].as_str().unwrap()).unwrap();
        return (events, quote_rtmrs(&q));
    }
    let events = parse_ccel(&load(&format!("tdx/{log}"))).unwrap();
    let expected = match v["expected_rtmrs_from_quote"].as_str() {
        Some(q) => quote_rtmrs(&load(&format!("tdx/{q}"))),
        None => (0..4)
            .map(|i| {
                v["expected"][format!("rtmr{i}")]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect(),
    };
    (events, expected)
}

#[test]
fn every_event_log_replays_to_its_expected_rtmrs() {
    let mut n = 0;
    for v in eventlog_vectors() {
        let id = v["id"].as_str().unwrap();
        if v.get("expected_mismatch").is_some() {
            continue;
        }
        let (events, expected) = vector(&v);
        assert!(!events.is_empty(), "{id}");
        let got: Vec<String> = replay(&events).iter().map(hex::encode).collect();
        assert_eq!(got, expected, "{id}");
        n += 1;
    }
    assert_eq!(n, 9);
}

#[test]
fn the_negative_logs_do_not_match_the_claimed_rtmrs() {
    for v in eventlog_vectors() {
        let Some(m) = v.get("expected_mismatch") else {
            continue;
        };
        let id = v["id"].as_str().unwrap();
        let events =
            parse_ccel(&load(&format!("tdx/{}", v["event_log"].as_str().unwrap()))).unwrap();
        let got: Vec<String> = replay(&events).iter().map(hex::encode).collect();
        let (claimed_key, actual_key) = if m.get("rtmr0_claimed").is_some() {
            ("rtmr0_claimed", "rtmr0_actual")
        } else {
            ("rtmr1_claimed", "rtmr1_actual")
        };
        let i = if claimed_key.starts_with("rtmr0") {
            0
        } else {
            1
        };
        assert_ne!(got[i], m[claimed_key].as_str().unwrap(), "{id}");
        assert_eq!(got[i], m[actual_key].as_str().unwrap(), "{id}");
    }
}

#[test]
fn one_flipped_byte_in_an_event_changes_the_replay() {
    let v = eventlog_vectors()
        .into_iter()
        .find(|v| v["id"] == "E3")
        .unwrap();
    let bytes = load(&format!("tdx/{}", v["event_log"].as_str().unwrap()));
    let good: Vec<String> = replay(&parse_ccel(&bytes).unwrap())
        .iter()
        .map(hex::encode)
        .collect();
    // The first extended event's digest starts 4 + 4 + 4 + 2 bytes into its record.
    let events = parse_ccel(&bytes).unwrap();
    let first = events
        .iter()
        .find(|e| e.event_type != 3 && e.rtmr.is_some())
        .unwrap();
    let at = bytes.windows(48).position(|w| w == first.digest).unwrap();
    let mut bad = bytes.clone();
    bad[at + 7] ^= 0x01;
    let got: Vec<String> = replay(&parse_ccel(&bad).unwrap())
        .iter()
        .map(hex::encode)
        .collect();
    let r = first.rtmr.unwrap();
    assert_ne!(got[r], good[r]);
    for i in (0..4).filter(|i| *i != r) {
        assert_eq!(got[i], good[i]);
    }
    // A truncated log is an error, not a panic.
    for n in (0..2000).step_by(13) {
        let _ = parse_ccel(&bytes[..n]);
    }
    assert!(parse_ccel(&bytes[..100]).is_err());
}

#[test]
fn dstack_rtmr3_events_are_listed_by_name_and_a_changed_payload_is_caught() {
    let j: Value = serde_json::from_slice(&load("tdx/dstack/quote-report.json")).unwrap();
    let log = j["event_log"].as_str().unwrap();
    let events = parse_dstack(log).unwrap();
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e.rtmr == Some(3))
        .map(|e| e.name.as_str())
        .collect();
    for want in [
        "system-preparing",
        "app-id",
        "compose-hash",
        "instance-id",
        "boot-mr-done",
        "key-provider",
        "system-ready",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    // The compose hash is recomputed from its payload: changing the payload changes RTMR3.
    let mut arr: Vec<Value> = serde_json::from_str(log).unwrap();
    let e = arr
        .iter_mut()
        .find(|e| e["event"] == "compose-hash")
        .unwrap();
    let p = e["event_payload"].as_str().unwrap().to_string();
    e["event_payload"] = Value::from(format!(
        "{}{}",
        if p.starts_with('0') { "1" } else { "0" },
        &p[1..]
    ));
    let tampered = parse_dstack(&serde_json::to_string(&arr).unwrap()).unwrap();
    let q = hex::decode(j["quote"].as_str().unwrap()).unwrap();
    assert_ne!(hex::encode(replay(&tampered)[3]), quote_rtmrs(&q)[3]);
    assert_eq!(hex::encode(replay(&events)[3]), quote_rtmrs(&q)[3]);
}
