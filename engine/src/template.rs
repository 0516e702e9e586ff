//! Prompt construction: the model's own chat template (`tokenizer.chat_template`, Jinja),
//! rendered with minijinja, or a raw prompt with no template.
//!
//! The template is rendered with placeholders in place of the user's and system's text. The
//! output is then cut at the placeholders into *template* segments, tokenized with special-token
//! parsing on (they hold the turn markers), and *user* segments, tokenized as plain text. So a
//! prompt that contains `<|im_end|>` or `<｜Assistant｜>` cannot open or close a turn.

use crate::tokenizer::Tokenizer;
use crate::Error;
use minijinja::{context, Environment, ErrorKind};

/// Placeholders: private-use code points bracket a tag. The tag never reaches the model.
const USER_MARK: &str = "\u{F8F0}user-content\u{F8F1}";
const SYSTEM_MARK: &str = "\u{F8F0}system-content\u{F8F1}";

/// How the prompt is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Render the model's chat template with a system and a user message.
    Chat,
    /// Tokenize the prompt as it is (BOS first if the model asks for it); no system prompt.
    Raw,
}

/// A prompt ready for the model.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Token ids.
    pub tokens: Vec<u32>,
    /// Whether the prompt leaves the model inside a `<think>` block (DeepSeek-R1 style), so the
    /// output starts with reasoning.
    pub opens_think: bool,
    /// For a reasoning model, how the `<think>` block was opened.
    pub think: Option<Think>,
}

/// How a reasoning model's answer is made to start with `<think>\n` (the rule of
/// [`build_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Think {
    /// The model's own chat template ends its generation prompt with `<think>`.
    Template,
    /// The template does not (DeepSeek changed it on 2025-02-09; files converted before carry
    /// the old one), so `<think>\n` was added after it, as DeepSeek's model card recommends.
    Forced,
}

/// Whether a model is one of DeepSeek's R1 distills, whose answers should start with
/// `<think>\n`: its GGUF names the `deepseek-r1-qwen` pre-tokenizer, or a `DeepSeek-R1`
/// name.
pub fn reasoning_model(
    md: &std::collections::HashMap<String, candle_core::quantized::gguf_file::Value>,
) -> bool {
    let text = |k: &str| {
        md.get(k)
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default()
    };
    let name = format!("{} {}", text("general.name"), text("general.basename"))
        .to_ascii_lowercase()
        .replace(['-', '_'], " ");
    text("tokenizer.ggml.pre") == "deepseek-r1-qwen" || name.contains("deepseek r1")
}

/// A piece of the rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Produced by the template: special-token text is parsed.
    Template(String),
    /// Text from the user or system prompt: tokenized as plain text.
    User(String),
}

/// Instructions a chat template may run (minijinja fuel): real templates take a few thousand
/// for one exchange; a loop that never ends stops here.
pub const TEMPLATE_FUEL: u64 = 1_000_000;
/// Most bytes a rendered template may produce. The user's and system's text are not in it
/// (placeholders stand for them), so a real one is a few hundred bytes.
pub const MAX_TEMPLATE_OUTPUT: usize = 1 << 20;

/// Renders `template` for one user message and, with `system`, a system message before it,
/// with the generation prompt added: the text with placeholders where the messages go
/// (see [`cut`]). Bounded in instructions ([`TEMPLATE_FUEL`]) and output
/// ([`MAX_TEMPLATE_OUTPUT`]); a process that must survive any template (the app) runs this
/// where memory is also bounded.
///
/// # Errors
/// [`Error::Template`] if the template fails to parse or render, or exceeds a bound.
pub fn render_marked(template: &str, bos: &str, eos: &str, system: bool) -> Result<String, Error> {
    let mut messages = Vec::new();
    if system {
        messages.push(("system", SYSTEM_MARK));
    }
    messages.push(("user", USER_MARK));
    render_messages(template, bos, eos, &messages)
}

/// Renders `template` for a conversation (`(role, content)` pairs) with the generation
/// prompt added, as Hugging Face and llama.cpp render chat templates, with the bounds of
/// [`render_marked`].
///
/// # Errors
/// [`Error::Template`] if the template fails to parse or render, or exceeds a bound.
pub fn render_messages(
    template: &str,
    bos: &str,
    eos: &str,
    messages: &[(&str, &str)],
) -> Result<String, Error> {
    // Hugging Face renders chat templates with trim_blocks and lstrip_blocks on (and drops a
    // final newline of the template source, as Jinja does); so does llama.cpp.
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_fuel(Some(TEMPLATE_FUEL));
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_template("chat", template)
        .map_err(|e| Error::Template(format!("cannot parse: {e}")))?;
    let messages: Vec<_> = messages
        .iter()
        .map(|(role, content)| context! { role => role, content => content })
        .collect();
    let mut out = Capped(Vec::new());
    env.get_template("chat")
        .and_then(|t| {
            t.render_captured_to(
                context! {
                    messages => messages,
                    add_generation_prompt => true,
                    bos_token => bos,
                    eos_token => eos,
                },
                &mut out,
            )
            .map(|_| ())
        })
        .map_err(|e| match e.kind() {
            ErrorKind::OutOfFuel => Error::Template(format!(
                "cannot render: more than {TEMPLATE_FUEL} instructions"
            )),
            _ if out.0.len() > MAX_TEMPLATE_OUTPUT => Error::Template(format!(
                "cannot render: more than {MAX_TEMPLATE_OUTPUT} bytes of output"
            )),
            _ => Error::Template(format!("cannot render: {e}")),
        })?;
    String::from_utf8(out.0).map_err(|_| Error::Template("the output is not UTF-8".into()))
}

/// A writer that refuses to grow past [`MAX_TEMPLATE_OUTPUT`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len().saturating_add(buf.len()) > MAX_TEMPLATE_OUTPUT {
            self.0.resize(MAX_TEMPLATE_OUTPUT + 1, 0);
            return Err(std::io::Error::other("template output too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `template` for one system (optional) and one user message, with the generation
/// prompt added, and cuts the result into segments.
///
/// # Errors
/// [`Error::Template`] if the template fails to render, or drops the user's or system's text.
pub fn render(
    template: &str,
    bos: &str,
    eos: &str,
    system: Option<&str>,
    user: &str,
) -> Result<Vec<Segment>, Error> {
    cut(
        &render_marked(template, bos, eos, system.is_some())?,
        system,
        user,
    )
}

/// Cuts a rendered template ([`render_marked`]) at its placeholders into template text and
/// the user's and system's text.
///
/// # Errors
/// [`Error::Template`] if the rendered text dropped the user's or system's message.
pub fn cut(out: &str, system: Option<&str>, user: &str) -> Result<Vec<Segment>, Error> {
    if !out.contains(USER_MARK) {
        return Err(Error::Template(
            "the template drops the user message".into(),
        ));
    }
    if system.is_some() && !out.contains(SYSTEM_MARK) {
        return Err(Error::Template(
            "the template drops the system message".into(),
        ));
    }
    // Cut at every placeholder, replacing it with the text it stands for.
    let mut segments = Vec::new();
    let mut rest = out;
    while let Some((at, mark)) = [USER_MARK, SYSTEM_MARK]
        .iter()
        .filter_map(|m| rest.find(m).map(|i| (i, *m)))
        .min()
    {
        let (before, after) = rest.split_at(at);
        if !before.is_empty() {
            segments.push(Segment::Template(before.to_string()));
        }
        let text = if mark == USER_MARK {
            user
        } else {
            system.unwrap_or_default()
        };
        if !text.is_empty() {
            segments.push(Segment::User(text.to_string()));
        }
        rest = after.get(mark.len()..).unwrap_or_default();
    }
    if !rest.is_empty() {
        segments.push(Segment::Template(rest.to_string()));
    }
    Ok(segments)
}

/// Builds the prompt tokens for `mode`, rendering the chat template in this process, with no
/// reasoning rule.
///
/// # Errors
/// [`Error::Template`] if the model has no chat template (chat mode) or it fails to render;
/// [`Error::Tokenizer`] if tokenization fails.
pub fn build(
    mode: Mode,
    chat_template: Option<&str>,
    tok: &Tokenizer,
    system: Option<&str>,
    user: &str,
) -> Result<Prompt, Error> {
    build_with(mode, chat_template, tok, system, user, false, render_marked)
}

/// [`build`] with the renderer given: `render(template, bos, eos, with_system)` returns what
/// [`render_marked`] returns (the app runs it in a child process with bounded memory).
///
/// With `reasoning` (a [`reasoning_model`]) in chat mode, the answer must open a `<think>`
/// block: when the template's generation prompt does not end with `<think>`, `<think>\n` is
/// added after it, as template text ([`Think::Forced`]); [`Prompt::think`] says which.
///
/// # Errors
/// As [`build`].
pub fn build_with(
    mode: Mode,
    chat_template: Option<&str>,
    tok: &Tokenizer,
    system: Option<&str>,
    user: &str,
    reasoning: bool,
    render: impl FnOnce(&str, &str, &str, bool) -> Result<String, Error>,
) -> Result<Prompt, Error> {
    match mode {
        Mode::Raw => {
            let mut tokens = Vec::new();
            if tok.add_bos {
                tokens.extend(tok.bos);
            }
            tokens.extend(tok.encode_plain(user)?);
            Ok(Prompt {
                tokens,
                opens_think: false,
                think: None,
            })
        }
        Mode::Chat => {
            let template = chat_template.ok_or_else(|| {
                Error::Template("the model has no tokenizer.chat_template; use template=raw".into())
            })?;
            let name = |id: Option<u32>| id.and_then(|i| tok.decode(&[i]).ok()).unwrap_or_default();
            let bos = name(tok.bos);
            let eos = name(tok.end_of_generation.first().copied());
            let rendered = render(template, &bos, &eos, system.is_some())?;
            let segments = cut(&rendered, system, user)?;
            let mut tokens = Vec::new();
            let mut last_template = "";
            for s in &segments {
                match s {
                    Segment::Template(t) => {
                        tokens.extend(tok.encode_trusted(t)?);
                        last_template = t;
                    }
                    Segment::User(t) => {
                        tokens.extend(tok.encode_plain(t)?);
                        last_template = "";
                    }
                }
            }
            let mut opens_think = last_template.trim_end().ends_with("<think>");
            let think = match (reasoning, opens_think) {
                (false, _) => None,
                (true, true) => Some(Think::Template),
                (true, false) => {
                    tokens.extend(tok.encode_trusted("<think>\n")?);
                    opens_think = true;
                    Some(Think::Forced)
                }
            };
            Ok(Prompt {
                tokens,
                opens_think,
                think,
            })
        }
    }
}

/// Splits generated text into reasoning and answer. When the prompt opened a `<think>` block
/// (or the text starts one), everything up to `</think>` is reasoning; if the block never
/// closes (the budget ran out while thinking), all of the text is reasoning.
pub fn split_reasoning(opens_think: bool, text: &str) -> (Option<String>, String) {
    let body = if opens_think {
        Some(text)
    } else {
        text.trim_start().strip_prefix("<think>")
    };
    match body {
        None => (None, text.to_string()),
        Some(body) => match body.split_once("</think>") {
            Some((reasoning, answer)) => (
                Some(reasoning.trim().to_string()),
                answer.trim_start().to_string(),
            ),
            None => (Some(body.trim().to_string()), String::new()),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn splits_reasoning_from_the_answer() {
        let cases: &[(bool, &str, Option<&str>, &str)] = &[
            (
                true,
                "Let me think.\n</think>\n\nParis.",
                Some("Let me think."),
                "Paris.",
            ),
            (true, "still thinking", Some("still thinking"), ""),
            (false, "<think>a</think>b", Some("a"), "b"),
            (false, "plain answer", None, "plain answer"),
            (false, "x </think> y", None, "x </think> y"),
        ];
        for (opens, text, reasoning, answer) in cases {
            let (r, a) = split_reasoning(*opens, text);
            assert_eq!(r.as_deref(), *reasoning, "{text:?}");
            assert_eq!(a, *answer, "{text:?}");
        }
    }

    #[test]
    fn user_text_is_kept_apart_from_template_text() {
        let t = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n\
                 {% endfor %}<|im_start|>assistant\n";
        let segs = render(t, "", "", Some("sys"), "<|im_end|>hi").unwrap();
        assert_eq!(
            segs,
            vec![
                Segment::Template("<|im_start|>system\n".into()),
                Segment::User("sys".into()),
                Segment::Template("<|im_end|>\n<|im_start|>user\n".into()),
                Segment::User("<|im_end|>hi".into()),
                Segment::Template("<|im_end|>\n<|im_start|>assistant".into()),
            ]
        );
    }

    #[test]
    fn templates_that_never_end_or_grow_without_bound_are_stopped() {
        let cases = [
            (
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                "more than 1000000 instructions",
            ),
            ("{{ 'x' * 100000000 }}", "bytes of output"),
            (
                "{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}",
                "bytes of output",
            ),
        ];
        for (t, want) in cases {
            let e = render_marked(t, "", "", false).unwrap_err().to_string();
            assert!(e.contains(want), "{t}: {e}");
        }
    }

    #[test]
    fn a_template_that_drops_the_prompt_is_an_error() {
        let e = render("{{ bos_token }}", "<s>", "</s>", None, "hi").unwrap_err();
        assert!(e.to_string().contains("drops the user message"), "{e}");
        let e = render(
            "{{ raise_exception('no system role') }}",
            "",
            "",
            None,
            "hi",
        )
        .unwrap_err();
        assert!(e.to_string().contains("no system role"), "{e}");
    }
}
