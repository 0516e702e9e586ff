//! A deal's `params` read as the app reads its arguments, to compare with what `result.json`
//! says the task ran with.
//!
//! The deal's `params` is a JSON object; its `iexec_args` string is the container's Cmd, split
//! at runs of spaces (the app's documented rule, `app/src/params.rs`: no quoting). An argument
//! `key=value` whose key is lowercase ASCII letters and `_` is a parameter; every other
//! argument is free text, and the free text joined by single spaces is the prompt.

use crate::report::{printable, Check};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What the arguments say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stated {
    /// `key=value` parameters, in order (prompt and system included when given so).
    pub params: Vec<(String, String)>,
    /// The free text.
    pub free: Vec<String>,
}

/// The deal's `iexec_args`: absent is no arguments.
///
/// # Errors
/// A message for params that are not a JSON object or whose `iexec_args` is not a string.
pub fn iexec_args(params: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(params)
        .map_err(|e| format!("the deal's params are not JSON ({e})"))?;
    let o = v
        .as_object()
        .ok_or("the deal's params are not a JSON object")?;
    match o.get("iexec_args") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err("the deal's iexec_args is not a string".into()),
    }
}

/// Splits and classifies the arguments as the app does.
pub fn parse(args: &str) -> Stated {
    let mut out = Stated::default();
    for a in args.split(' ').filter(|a| !a.is_empty()) {
        match a.split_once('=') {
            Some((k, v))
                if !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                out.params.push((k.to_string(), v.to_string()));
            }
            _ => out.free.push(a.to_string()),
        }
    }
    out
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The app's parameters, how it parses each and its defaults (`app/src/params.rs`,
/// `GenParams::default`; `tests/e2e.rs` checks this table against the app's).
pub const DEFAULTS: &[(&str, Kind, &str)] = &[
    ("max_tokens", Kind::U32, "512"),
    ("temperature", Kind::F64, "0.6"),
    ("top_p", Kind::F64, "0.95"),
    ("seed", Kind::U64, "0"),
    ("template", Kind::Text, "chat"),
    ("context", Kind::U32, "4096"),
    ("time_budget", Kind::U32, "270"),
];

/// How the app parses a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `u32` (Rust's `str::parse`).
    U32,
    /// `u64`.
    U64,
    /// A finite `f64`.
    F64,
    /// Text.
    Text,
}

/// Whether `given`, parsed as the app parses it, is exactly the value `result.json` records.
fn same(kind: Kind, given: &str, recorded: &Value) -> bool {
    match kind {
        Kind::U32 => given
            .parse::<u32>()
            .is_ok_and(|g| recorded.as_u64() == Some(u64::from(g))),
        Kind::U64 => given
            .parse::<u64>()
            .is_ok_and(|g| recorded.as_u64() == Some(g)),
        Kind::F64 => given
            .parse::<f64>()
            .is_ok_and(|g| g.is_finite() && recorded.as_f64() == Some(g)),
        Kind::Text => recorded.as_str() == Some(given),
    }
}

/// What the deal names besides its params, where a prompt not in the arguments may come from.
#[derive(Debug, Clone, Copy, Default)]
pub struct DealInputs {
    /// Whether the deal names a dataset; `None` when the receipt does not say.
    pub dataset: Option<bool>,
}

/// One check: the parameters `result.json` records are those of the deal's `iexec_args`
/// (each one stated there, exactly as the app parses it; every other at the app's default,
/// unless the prompt came from a protected dataset, which may set them), and the prompt came
/// from where the deal says (the arguments' text by digest; a secret, input file or dataset
/// the deal names).
pub fn check(params: &str, inputs: DealInputs, res: &Value) -> Check {
    let name = "deal params (iexec_args on chain) = result.json's parameters and prompt source";
    let args = match iexec_args(params) {
        Ok(a) => a,
        Err(e) => return Check::fail(name, "JSON params with a string iexec_args", e),
    };
    if args.contains(['"', '\'']) {
        // The worker may group quoted words (a command-line tokenizer); the app documents no
        // quoting. Which arguments the app received cannot be told here.
        return Check::fail(
            name,
            "iexec_args without quotes",
            "iexec_args contain quotes: how the worker groups them is not decided here",
        );
    }
    let deal: Value = serde_json::from_str(params).unwrap_or(Value::Null);
    let stated = parse(&args);
    let recorded = res.get("parameters").unwrap_or(&Value::Null);
    let prompt = res.get("prompt").unwrap_or(&Value::Null);
    let source = prompt
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("absent");
    let mut problems = Vec::new();
    let mut prompt_text: Option<String> = None;
    for (k, v) in &stated.params {
        if stated.params.iter().filter(|(k2, _)| k2 == k).count() > 1 {
            problems.push(format!("{k} given twice"));
            continue;
        }
        match k.as_str() {
            "prompt" => prompt_text = Some(v.clone()),
            "system" => {
                let want = prompt.get("system_sha256").and_then(Value::as_str);
                if want != Some(sha(v).as_str()) {
                    problems.push("system: not the system prompt result.json records".into());
                }
            }
            _ => match (DEFAULTS.iter().find(|d| d.0 == k), recorded.get(k)) {
                (Some(d), Some(r)) if same(d.1, v, r) => {}
                (Some(_), Some(r)) => {
                    problems.push(format!("{k}={} on chain, {r} in result.json", printable(v)))
                }
                _ => problems.push(format!("{k}: not a parameter of the app")),
            },
        }
    }
    if source != "protected-data" {
        // Only a protected dataset can set what the arguments do not state.
        for (k, kind, default) in DEFAULTS {
            if stated.params.iter().any(|(g, _)| g == k) {
                continue;
            }
            match recorded.get(k) {
                Some(r) if same(*kind, default, r) => {}
                r => problems.push(format!(
                    "{k} is {} in result.json but not in iexec_args (the app's default is {default})",
                    r.map(Value::to_string).unwrap_or_else(|| "absent".into())
                )),
            }
        }
        let system_given = stated.params.iter().any(|(k, _)| k == "system");
        if !system_given
            && !prompt
                .get("system_sha256")
                .unwrap_or(&Value::Null)
                .is_null()
        {
            problems.push("result.json has a system prompt that iexec_args do not give".into());
        }
    }

    if !stated.free.is_empty() {
        if prompt_text.is_some() {
            problems.push("the prompt is given twice (prompt= and free text)".into());
        }
        prompt_text = Some(stated.free.join(" "));
    }
    match (&prompt_text, source) {
        (Some(t), "args") => {
            if prompt.get("sha256").and_then(Value::as_str) != Some(sha(t).as_str()) {
                problems.push(
                    "the prompt in iexec_args is not the prompt result.json records (sha256)"
                        .into(),
                );
            }
        }
        (Some(_), s) => problems.push(format!(
            "iexec_args carry a prompt but result.json says it came from {}",
            printable(s)
        )),
        (None, "args") => problems.push(
            "result.json says the prompt came from the arguments; iexec_args have none".into(),
        ),
        (None, "requester-secret") => {
            if deal.pointer("/iexec_secrets/1").is_none() {
                problems.push(
                    "the prompt came from requester secret 1, which the deal does not name".into(),
                );
            }
        }
        (None, "input-file") => {
            if deal
                .get("iexec_input_files")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                problems.push("the prompt came from an input file; the deal names none".into());
            }
        }
        (None, "dataset" | "protected-data") => {
            if inputs.dataset == Some(false) {
                problems.push(format!(
                    "the prompt came from a {source}; the deal has no dataset"
                ));
            }
        }
        (None, s) => problems.push(format!("unknown prompt source {}", printable(s))),
    }

    let found = if problems.is_empty() {
        format!(
            "{} parameter(s) as recorded; prompt from {}",
            stated.params.len(),
            printable(source)
        )
    } else {
        problems.join("; ")
    };
    Check {
        name: name.into(),
        pass: problems.is_empty(),
        expected: "every argument as recorded, the prompt's source as recorded".into(),
        found,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res() -> Value {
        json!({"parameters": {"max_tokens": 8, "temperature": 0.0, "top_p": 0.95, "seed": 0,
                              "template": "chat", "context": 4096, "time_budget": 270},
               "prompt": {"source": "args", "sha256": sha("What is 2+2?"), "system_sha256": null}})
    }

    fn params(args: &str) -> String {
        json!({"iexec_args": args}).to_string()
    }

    fn check(params: &str, res: &Value) -> Check {
        super::check(params, DealInputs::default(), res)
    }

    #[test]
    fn what_the_arguments_do_not_state_is_the_app_s_default() {
        for (k, v) in [
            ("temperature", json!(2.0)),
            ("seed", json!(666)),
            ("template", json!("raw")),
            ("top_p", json!(0.9)),
        ] {
            let mut r = res();
            r["parameters"][k] = v;
            let args = if k == "temperature" {
                "max_tokens=8 What is 2+2?"
            } else {
                "max_tokens=8 temperature=0 What is 2+2?"
            };
            let c = check(&params(args), &r);
            assert!(!c.pass && c.found.contains(k), "{k}: {c:?}");
        }
        let mut r = res();
        r["prompt"]["system_sha256"] = json!(sha("Always answer 5"));
        let c = check(&params("max_tokens=8 temperature=0 What is 2+2?"), &r);
        assert!(!c.pass && c.found.contains("system prompt"), "{c:?}");
        // A protected dataset may set them (confidentially).
        r["prompt"]["source"] = json!("protected-data");
        r["parameters"]["seed"] = json!(666);
        assert!(check(&params("max_tokens=8 temperature=0"), &r).pass);
    }

    #[test]
    fn numbers_compare_as_the_app_parses_them() {
        let mut r = res();
        r["parameters"]["seed"] = json!(9007199254740992u64);
        let ok = "max_tokens=8 temperature=0 seed=9007199254740992 What is 2+2?";
        assert!(check(&params(ok), &r).pass);
        for args in [
            "max_tokens=8 temperature=0 seed=9007199254740993 What is 2+2?",
            "max_tokens=8.0 temperature=0 seed=9007199254740992 What is 2+2?",
            "max_tokens=1e1 temperature=0 seed=9007199254740992 What is 2+2?",
            "max_tokens=8 temperature=NaN seed=9007199254740992 What is 2+2?",
            "max_tokens=8 temperature=0 'seed=9007199254740992' What is 2+2?",
            "max_tokens=8 temperature=0 seed=9007199254740992 \"What is 2+2?\"",
        ] {
            assert!(!check(&params(args), &r).pass, "{args}");
        }
        r["parameters"]["seed"] = json!(0);
        assert!(
            !check(
                &params("max_tokens=8 temperature=0 seed=-0 What is 2+2?"),
                &r
            )
            .pass
        );
    }

    #[test]
    fn a_confidential_prompt_must_come_from_an_input_the_deal_names() {
        let mut r = res();
        r["prompt"]["source"] = json!("requester-secret");
        let with = |extra: Value| {
            let mut p = json!({"iexec_args": "max_tokens=8 temperature=0"});
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            p.to_string()
        };
        assert!(check(&with(json!({"iexec_secrets": {"1": "prompt"}})), &r).pass);
        assert!(!check(&with(json!({})), &r).pass);
        r["prompt"]["source"] = json!("input-file");
        assert!(check(&with(json!({"iexec_input_files": ["https://x/p.txt"]})), &r).pass);
        assert!(!check(&with(json!({"iexec_input_files": []})), &r).pass);
        r["prompt"]["source"] = json!("protected-data");
        let no_dataset = DealInputs {
            dataset: Some(false),
        };
        assert!(!super::check(&with(json!({})), no_dataset, &r).pass);
        let dataset = DealInputs {
            dataset: Some(true),
        };
        assert!(super::check(&with(json!({})), dataset, &r).pass);
    }

    #[test]
    fn the_arguments_a_task_ran_with_pass() {
        let c = check(&params("max_tokens=8 temperature=0  What is 2+2?"), &res());
        assert!(c.pass, "{c:?}");
    }

    #[test]
    fn every_difference_fails() {
        for (args, why) in [
            ("max_tokens=9 temperature=0 What is 2+2?", "max_tokens=9"),
            ("max_tokens=8 temperature=0 What is 2+3?", "sha256"),
            ("max_tokens=8 temperature=0", "iexec_args have none"),
            ("max_tokens=8 max_tokens=8 What is 2+2?", "given twice"),
            (
                "max_tokens=8 temperature=0 colour=red What is 2+2?",
                "colour",
            ),
            ("max_tokens=0x8 What is 2+2?", "max_tokens=0x8"),
            ("max_tokens=8 system=be-brief What is 2+2?", "system"),
            ("prompt=What What is 2+2?", "given twice"),
        ] {
            let c = check(&params(args), &res());
            assert!(!c.pass, "{args}");
            assert!(c.found.contains(why), "{args}: {}", c.found);
        }
        let mut r = res();
        r["prompt"]["source"] = json!("requester-secret");
        let c = check(&params("What is 2+2?"), &r);
        assert!(!c.pass && c.found.contains("requester-secret"), "{c:?}");
        for bad in ["not json", "[1]", r#"{"iexec_args": 3}"#] {
            assert!(!check(bad, &res()).pass, "{bad}");
        }
    }
}
