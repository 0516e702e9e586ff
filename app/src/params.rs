//! Task parameters from the container Cmd: `key=value` arguments (the deal's `iexec_args`,
//! split shell-style by the worker) and free text, which is the prompt.
//!
//! Arguments are public on chain. A prompt given here is therefore not confidential; a
//! confidential prompt comes from a requester secret, the protected dataset or an input file
//! (see [`crate::iexec`]).

use crate::error::Error;
use engine::template::Mode;
use serde::Serialize;

/// Every parameter name the app accepts, for error messages and `--help`.
pub const KNOWN: &[&str] = &[
    "prompt",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "template",
    "context",
    "time_budget",
];

/// Generation parameters, as recorded in `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenParams {
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature; 0 means greedy (argmax).
    pub temperature: f64,
    /// Nucleus sampling mass; 1 disables it.
    pub top_p: f64,
    /// Seed of the sampler's random generator.
    pub seed: u64,
    /// Chat template or raw prompt.
    pub template: Mode,
    /// Largest context (prompt + answer) in tokens; the model's own limit may be lower.
    pub context: u32,
    /// Wall-clock seconds from start after which generation stops with finish reason `time`.
    pub time_budget: u32,
}

impl GenParams {
    /// The sampler's share of the parameters.
    pub fn sampling(&self) -> engine::sampler::Settings {
        engine::sampler::Settings {
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
        }
    }
}

impl Default for GenParams {
    fn default() -> Self {
        // DeepSeek-R1's recommended sampling: temperature 0.6, top-p 0.95.
        Self {
            max_tokens: 512,
            temperature: 0.6,
            top_p: 0.95,
            seed: 0,
            template: Mode::Chat,
            context: 4096,
            // iExec's smallest category (XS) allows 5 minutes of compute; leave room to write.
            time_budget: 270,
        }
    }
}

/// Parameters parsed from the arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    /// The prompt, if the arguments carry one.
    pub prompt: Option<String>,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// Generation parameters.
    pub gen: GenParams,
    /// The keys given, in order.
    pub given: Vec<String>,
}

/// Parses Cmd arguments. `key=value` with a known key sets a parameter; an argument that is
/// not `key=value` is free text, and all free-text arguments joined by single spaces are the
/// prompt (a worker splits an unquoted `iexec_args` at spaces).
///
/// # Errors
/// [`Error::Param`] for an unknown or repeated key, a value that does not parse or is out of
/// range, or a prompt given both as `prompt=` and as free text.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Args, Error> {
    let mut out = Args::default();
    let mut free: Vec<&str> = Vec::new();
    for arg in args {
        let arg = arg.as_ref();
        let Some((key, value)) = arg.split_once('=').filter(|(k, _)| is_key(k)) else {
            free.push(arg);
            continue;
        };
        if out.given.iter().any(|g| g == key) {
            return Err(Error::Param(format!("parameter {key:?} is given twice")));
        }
        set(&mut out, key, value)?;
        out.given.push(key.to_string());
    }
    if !free.is_empty() {
        if out.prompt.is_some() {
            return Err(Error::Param(
                "the prompt is given twice: as prompt=... and as free text".into(),
            ));
        }
        out.prompt = Some(free.join(" "));
    }
    check(&out)?;
    Ok(out)
}

/// Adds the system prompt and parameters a protected dataset carries (confidential: they do
/// not appear on chain). A parameter given both there and in the arguments is an error.
///
/// # Errors
/// [`Error::Param`] for a parameter given twice or a value out of range.
pub fn apply_protected(
    out: &mut Args,
    system: Option<String>,
    params: &[(String, String)],
) -> Result<(), Error> {
    if let Some(s) = system {
        if out.system.is_some() {
            return Err(Error::Param(
                "system is given both in the arguments and in the protected data".into(),
            ));
        }
        out.system = Some(s);
    }
    for (key, value) in params {
        if out.given.iter().any(|g| g == key) {
            return Err(Error::Param(format!(
                "parameter {key:?} is given both in the arguments and in the protected data"
            )));
        }
        set(out, key, value)
            .map_err(|e| Error::Param(format!("{} (in the protected data)", e.message())))?;
        out.given.push(key.clone());
    }
    check(out)
}

/// Rules across parameters.
fn check(out: &Args) -> Result<(), Error> {
    if out.gen.template == Mode::Raw && out.system.is_some() {
        return Err(Error::Param(
            "system cannot be used with template=raw".into(),
        ));
    }
    Ok(())
}

/// Sets one parameter from its text.
fn set(out: &mut Args, key: &str, value: &str) -> Result<(), Error> {
    if !KNOWN.contains(&key) {
        return Err(Error::Param(format!(
            "unknown parameter {key:?} (known: {})",
            KNOWN.join(", ")
        )));
    }
    let g = &mut out.gen;
    match key {
        "prompt" => out.prompt = Some(value.to_string()),
        "system" => out.system = Some(value.to_string()),
        "max_tokens" => g.max_tokens = int(key, value, 1, 32768)?,
        "temperature" => g.temperature = float(key, value, 0.0, 2.0)?,
        "top_p" => {
            g.top_p = float(key, value, 0.0, 1.0)?;
            if g.top_p == 0.0 {
                return Err(Error::Param("top_p must be greater than 0".into()));
            }
        }
        "seed" => {
            g.seed = value.parse().map_err(|_| {
                Error::Param(format!(
                    "seed must be an integer from 0 to {}, got {value:?}",
                    u64::MAX
                ))
            })?
        }
        "template" => {
            g.template = match value {
                "chat" => Mode::Chat,
                "raw" => Mode::Raw,
                _ => {
                    return Err(Error::Param(format!(
                        "template must be \"chat\" or \"raw\", got {value:?}"
                    )))
                }
            }
        }
        "context" => g.context = int(key, value, 16, 131072)?,
        "time_budget" => g.time_budget = int(key, value, 1, 86400)?,
        _ => unreachable_key(key)?,
    }
    Ok(())
}

/// A parameter name: lowercase ASCII letters and underscores. Anything else before `=` is
/// part of free text (`what is 1+1=?` is a prompt, not a parameter).
fn is_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

fn unreachable_key(key: &str) -> Result<(), Error> {
    Err(Error::Param(format!("parameter {key:?} is not handled")))
}

fn int(key: &str, value: &str, min: u32, max: u32) -> Result<u32, Error> {
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::Param(format!(
            "{key} must be an integer from {min} to {max}, got {value:?}"
        ))),
    }
}

fn float(key: &str, value: &str, min: f64, max: f64) -> Result<f64, Error> {
    match value.parse::<f64>() {
        Ok(x) if x.is_finite() && (min..=max).contains(&x) => Ok(x),
        _ => Err(Error::Param(format!(
            "{key} must be a number from {min} to {max}, got {value:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_parameters_and_free_text() {
        let a = parse(&[
            "max_tokens=7",
            "temperature=0",
            "What",
            "is",
            "1+1=?",
            "seed=42",
        ])
        .unwrap();
        assert_eq!(a.prompt.as_deref(), Some("What is 1+1=?"));
        assert_eq!(a.gen.max_tokens, 7);
        assert_eq!(a.gen.temperature, 0.0);
        assert_eq!(a.gen.seed, 42);
        let a = parse(&["prompt=a=b", "system=be brief", "template=chat"]).unwrap();
        assert_eq!(a.prompt.as_deref(), Some("a=b"));
        assert_eq!(a.system.as_deref(), Some("be brief"));
        assert_eq!(parse::<&str>(&[]).unwrap(), Args::default());
        let mut a = parse(&["max_tokens=7"]).unwrap();
        let p = |k: &str, v: &str| (k.to_string(), v.to_string());
        apply_protected(
            &mut a,
            Some("be brief".into()),
            &[p("seed", "9"), p("temperature", "0.25")],
        )
        .unwrap();
        assert_eq!(
            (a.gen.seed, a.gen.temperature, a.gen.max_tokens),
            (9, 0.25, 7)
        );
        assert_eq!(a.system.as_deref(), Some("be brief"));
        let e = apply_protected(&mut a, None, &[p("max_tokens", "8")]).unwrap_err();
        assert!(e
            .to_string()
            .contains("given both in the arguments and in the protected data"));
        let mut a = parse::<&str>(&[]).unwrap();
        let e = apply_protected(&mut a, None, &[p("max_tokens", "0")]).unwrap_err();
        assert!(e.to_string().contains("(in the protected data)"), "{e}");
    }

    #[test]
    fn rejects_bad_parameters_with_a_reason() {
        let cases: &[(&[&str], &str)] = &[
            (&["foo=1"], "unknown parameter \"foo\""),
            (
                &["max_tokens=abc"],
                "max_tokens must be an integer from 1 to 32768, got \"abc\"",
            ),
            (&["max_tokens=0"], "max_tokens must be an integer"),
            (&["max_tokens=40000"], "max_tokens must be an integer"),
            (&["max_tokens=-1"], "max_tokens must be an integer"),
            (&["temperature=hot"], "temperature must be a number"),
            (&["temperature=NaN"], "temperature must be a number"),
            (
                &["temperature=2.5"],
                "temperature must be a number from 0 to 2",
            ),
            (&["top_p=1.5"], "top_p must be a number"),
            (&["top_p=0"], "top_p must be greater than 0"),
            (&["seed=-3"], "seed must be an integer"),
            (&["template=json"], "template must be \"chat\" or \"raw\""),
            (&["context=8"], "context must be an integer from 16"),
            (&["time_budget=0"], "time_budget must be an integer from 1"),
            (&["seed=1", "seed=2"], "given twice"),
            (&["prompt=a", "b"], "the prompt is given twice"),
            (
                &["template=raw", "system=x"],
                "system cannot be used with template=raw",
            ),
        ];
        for (args, want) in cases {
            let e = parse(args).unwrap_err();
            assert!(matches!(e, Error::Param(_)));
            assert!(e.to_string().contains(want), "{args:?}: {e}");
        }
    }
}
