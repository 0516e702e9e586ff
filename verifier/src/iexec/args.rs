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

/// Whether a value given as an argument is the value `result.json` records: numbers
/// compared as numbers (`0` and `0.0`), everything else as text.
fn same(given: &str, recorded: &Value) -> bool {
    match recorded {
        Value::Number(n) => match (n.as_f64(), given.parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        Value::String(s) => s == given,
        _ => false,
    }
}

/// One check: every parameter in the deal's `iexec_args` is the one `result.json` records,
/// and the prompt is where `result.json` says it came from (the arguments' text by digest, or,
/// when the arguments carry none, a confidential source).
pub fn check(params: &str, res: &Value) -> Check {
    let name = "deal params (iexec_args on chain) = result.json's parameters and prompt source";
    let args = match iexec_args(params) {
        Ok(a) => a,
        Err(e) => return Check::fail(name, "JSON params with a string iexec_args", e),
    };
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
            _ => match recorded.get(k) {
                Some(r) if same(v, r) => {}
                Some(r) => {
                    problems.push(format!("{k}={} on chain, {r} in result.json", printable(v)))
                }
                None => problems.push(format!("{k}: not a parameter result.json records")),
            },
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
        (None, _) => {}
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
            ("max_tokens=8 colour=red What is 2+2?", "colour"),
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
        // No prompt in the arguments, a confidential one in result.json: passes.
        assert!(check(&params("max_tokens=8"), &r).pass);
        for bad in ["not json", "[1]", r#"{"iexec_args": 3}"#] {
            assert!(!check(bad, &res()).pass, "{bad}");
        }
    }
}
