//! One task, start to finish, as numbered steps. Whatever step fails, the outputs are still
//! written: an error `result.json` that keeps what was known (and any partial answer),
//! `computed.json` with `error-message`, and a clear line on stderr.

use crate::error::Error;
use crate::iexec::{self, Env, OutDir, COMPUTED_FILE, METRICS_FILE, RESULT_FILE};
use crate::log::Log;
use crate::params::{self, GenParams};
use crate::result::{
    rate, AppRecord, ErrorRecord, Metrics, ModelRecord, PromptRecord, Status, TaskResult, Usage,
    SCHEMA,
};
use crate::sandbox::Failed;
use engine::forward::{Engine, Model};
use engine::generate::{self, FinishReason, Generation};
use engine::hparams::Hparams;
use engine::memory::{self, peak_rss_bytes};
use engine::template::{self, Prompt};
use engine::tokenizer::Tokenizer;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

/// Options that do not come from the task's arguments (command-line flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// GGUF model file.
    pub model: PathBuf,
    /// Pinned sha256 of the model file, lowercase hex.
    pub model_sha256: String,
    /// A `tokenizer.json` to use instead of the GGUF's tokenizer.
    pub tokenizer: Option<PathBuf>,
    /// Output directory; `IEXEC_OUT` when not given.
    pub out: Option<PathBuf>,
    /// The task's arguments (`key=value` and free text).
    pub params: Vec<String>,
    /// Where to ask for a TDX quote.
    pub platform: crate::attest::Platform,
    /// Most memory the task may use, in bytes (checked before loading).
    pub memory_budget: u64,
}

/// Exit status: a result was written, an answer or an error record. A worker publishes the
/// result (and the app's stdout/stderr) only when the app exits 0; older workers mark any
/// other status `APP_COMPUTE_FAILED` and contribute nothing, which would lose the very result
/// that explains a failure.
pub const EXIT_OK: u8 = 0;
/// Exit status: no result could be written at all (output directory unusable).
pub const EXIT_NO_OUTPUT: u8 = 2;

/// Runs one task. Under a worker (`IEXEC_OUT` set) logs are JSON lines on stdout; otherwise
/// the answer streams to stdout and progress goes to stderr.
pub fn run(opts: &Options, env: &Env) -> u8 {
    let started = Instant::now();
    let log = Log::new(env.iexec_out().is_some());

    // Step 1: the output directory must be writable before any work is done.
    let out = match opts.out.clone().or_else(|| env.iexec_out()) {
        None => {
            eprintln!(
                "note: neither --out nor IEXEC_OUT is set: no result.json will be written \
                 (the answer is only printed)"
            );
            None
        }
        Some(dir) => match OutDir::open(dir) {
            Ok(o) => Some(o),
            Err(e) => {
                log.error(e.kind(), &e.to_string());
                return EXIT_NO_OUTPUT;
            }
        },
    };

    let mut task = Task {
        log,
        result: TaskResult {
            schema: SCHEMA,
            status: Status::Ok,
            answer: String::new(),
            reasoning: None,
            finish_reason: None,
            usage: Usage::default(),
            parameters: None,
            prompt: None,
            model: ModelRecord {
                file: opts
                    .model
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: None,
                architecture: None,
            },
            app: AppRecord {
                version: env!("CARGO_PKG_VERSION"),
                binary_sha256: None,
            },
            error: None,
            attestation: None,
        },
        metrics: Metrics::default(),
    };
    let outcome = task.run(opts, env, started);
    if let Err(e) = &outcome {
        task.result.status = Status::Error;
        task.result.error = Some(ErrorRecord {
            kind: e.kind(),
            message: e.to_string(),
        });
        task.log.error(e.kind(), &e.to_string());
    }
    task.metrics.total_seconds = started.elapsed().as_secs_f64();
    task.metrics.peak_rss_bytes = peak_rss_bytes();

    // Last step: write everything, even after a failure.
    let Some(out) = out else {
        // Nowhere to write (no --out, no IEXEC_OUT): said when the run started.
        return if outcome.is_ok() {
            EXIT_OK
        } else {
            EXIT_NO_OUTPUT
        };
    };
    // The quote binds every claim of result.json; it is asked for last, once they are final.
    match serde_json::to_value(&task.result) {
        Ok(claims) => {
            let rd = crate::attest::report_data(&claims);
            let a = crate::attest::attest(&opts.platform, &rd, out.dir());
            task.log.event(
                "attestation",
                json!({ "method": a.method, "reason": a.reason, "report_data": a.report_data }),
            );
            task.result.attestation = Some(a);
        }
        Err(e) => task.log.error("attestation", &e.to_string()),
    }
    let written = out
        .write_json(RESULT_FILE, &task.result)
        .and_then(|_| out.write_json(METRICS_FILE, &task.metrics))
        .and_then(|_| out.write_computed(outcome.as_ref().err().map(|e| e.to_string()).as_deref()));
    match written {
        Err(e) => {
            task.log.error(e.kind(), &e.to_string());
            EXIT_NO_OUTPUT
        }
        Ok(()) => {
            let digest = sha256_file(&out.path(RESULT_FILE)).unwrap_or_default();
            task.log.event(
                "result-written",
                json!({ "file": RESULT_FILE, "sha256": digest, "computed": COMPUTED_FILE,
                        "status": task.result.status }),
            );
            EXIT_OK
        }
    }
}

struct Task {
    log: Log,
    result: TaskResult,
    metrics: Metrics,
}

/// A model ready to answer: its tokenizer, template and loaded weights.
struct Loaded {
    tok: Tokenizer,
    chat_template: Option<String>,
    /// A DeepSeek-R1 distill: its answer opens `<think>` ([`template::build_with`]).
    reasoning: bool,
    model: Model,
    engine: Engine,
    hparams: Hparams,
    tensor_bytes: u64,
}

impl Task {
    fn run(&mut self, opts: &Options, env: &Env, started: Instant) -> Result<(), Error> {
        // Step 2: what is running.
        self.identify();
        // Step 3: parameters and prompt (a protected dataset may add the system prompt and
        // parameters). Only digests of the prompt are ever logged.
        let mut args = params::parse(&opts.params)?;
        self.result.parameters = Some(args.gen.clone());
        let input = iexec::resolve_prompt(args.prompt.take(), env)?;
        params::apply_protected(&mut args, input.system.clone(), &input.params)?;
        self.result.parameters = Some(args.gen.clone());
        let prompt = self.prompt(input, args.system.as_deref());
        // Step 4: the model file must be the pinned one, checked before it is parsed.
        let file = self.open_pinned_model(opts)?;
        // Step 5: parse, build the tokenizer, check the budget, load the weights.
        let mut m = self.load(opts, &args.gen, file)?;
        // Step 6: the prompt as tokens, which must leave room for at least one more.
        let deadline = started + std::time::Duration::from_secs(u64::from(args.gen.time_budget));
        let p = self.tokenize(opts, &m, &args, &prompt, deadline)?;
        // Step 7: generate, streaming locally; stop at the deadline.
        let g = self.generate(&mut m, &p, &args.gen, deadline);
        // Step 8: the answer, split from the reasoning.
        self.record(&m.tok, &p, &g)?;
        if g.prefilled < p.tokens.len() {
            return Err(Error::TimeBudget(format!(
                "the prompt's {} tokens cannot be read within time_budget={} s; give a \
                 shorter prompt or a longer time_budget",
                p.tokens.len(),
                args.gen.time_budget
            )));
        }
        match (g.finish, g.error) {
            (FinishReason::Error, Some(e)) => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Step 2: the binary's own digest, the first thing every log states.
    fn identify(&mut self) {
        self.result.app.binary_sha256 = std::env::current_exe()
            .ok()
            .and_then(|p| sha256_file(&p).ok());
        self.log.event(
            "start",
            json!({ "version": self.result.app.version,
                    "binary_sha256": self.result.app.binary_sha256 }),
        );
    }

    /// Step 3: the prompt from its one source, recorded by digest.
    fn prompt(&mut self, input: iexec::Input, system: Option<&str>) -> String {
        let record = PromptRecord {
            source: input.source,
            sha256: sha256_hex(input.prompt.as_bytes()),
            system_sha256: system.map(|s| sha256_hex(s.as_bytes())),
            fields: input.fields,
            think: None,
        };
        self.log.event(
            "prompt",
            json!({ "source": input.source, "confidential": input.source.confidential(),
                    "sha256": record.sha256, "fields": record.fields }),
        );
        self.result.prompt = Some(record);
        input.prompt
    }

    /// Step 4: opens the model file and checks its sha256 against the pin.
    fn open_pinned_model(&mut self, opts: &Options) -> Result<std::fs::File, Error> {
        let t = Instant::now();
        let shown = opts.model.display().to_string();
        let file_error = |e: std::io::Error| engine::Error::ModelFile {
            path: shown.clone(),
            reason: e.to_string(),
        };
        let mut file = std::fs::File::open(&opts.model).map_err(|e| {
            let mut err = file_error(e);
            if let engine::Error::ModelFile { reason, .. } = &mut err {
                if opts.model.as_os_str() == crate::DEFAULT_MODEL_PATH {
                    reason.push_str(
                        " (the default path inside the image; elsewhere give --model PATH, and \
                         --model-sha256 HEX for another model than the pinned one)",
                    );
                }
            }
            err
        })?;
        self.log
            .event("model-hash", json!({ "file": self.result.model.file }));
        let found = sha256_reader(&mut file).map_err(file_error)?;
        let expected = opts.model_sha256.to_ascii_lowercase();
        if found != expected {
            return Err(Error::ModelDigest {
                path: shown,
                expected,
                found,
            });
        }
        self.result.model.sha256 = Some(found.clone());
        self.metrics.hash_seconds = t.elapsed().as_secs_f64();
        self.log.event("model-verified", json!({ "sha256": found }));
        Ok(file)
    }

    /// Step 5: the GGUF parsed, the tokenizer built, the memory budget checked, then the
    /// weights loaded with the engine the budget was computed for.
    fn load(
        &mut self,
        opts: &Options,
        gen: &GenParams,
        mut file: std::fs::File,
    ) -> Result<Loaded, Error> {
        let t = Instant::now();
        let gguf = engine::gguf::read(&mut file)?;
        let hp = Hparams::from_gguf(&gguf.content)?;
        self.result.model.architecture = Some(hp.arch.name());
        let mut tok = Tokenizer::from_gguf(&gguf.content.metadata)?;
        if let Some(tj) = &opts.tokenizer {
            tok = Tokenizer::from_file(tj, &tok)?;
        }
        if tok.vocab_size() > hp.n_vocab {
            return Err(engine::Error::Model(format!(
                "the tokenizer has {} tokens but the model only {}",
                tok.vocab_size(),
                hp.n_vocab
            ))
            .into());
        }
        let chat_template = gguf
            .content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        let reasoning = template::reasoning_model(&gguf.content.metadata);
        // The budget, before anything large is allocated (the prompt is checked below).
        let tensor_bytes = gguf
            .file_size
            .saturating_sub(gguf.content.tensor_data_offset);
        let engine = Engine::choose(&gguf.content)?;
        let context = hp.context_for(engine, gen.context as usize);
        let need = memory::estimate(engine, &hp, tensor_bytes, context, 1);
        memory::check(&need, opts.memory_budget, context, 1)?;
        self.log.event(
            "model-load",
            json!({ "architecture": hp.arch.name(), "layers": hp.n_layer,
                    "hidden": hp.n_embd, "vocab": hp.n_vocab,
                    "engine": engine.name(),
                    "memory_estimate_bytes": need.total(),
                    "memory_budget_bytes": opts.memory_budget }),
        );
        let model = Model::load_with(gguf, &mut file, gen.context as usize, engine)?;
        self.metrics.load_seconds = t.elapsed().as_secs_f64();
        Ok(Loaded {
            tok,
            chat_template,
            reasoning,
            model,
            engine,
            hparams: hp,
            tensor_bytes,
        })
    }

    /// Step 6: the prompt rendered and tokenized; it must leave room for one more token and
    /// fit the budget with its scratch.
    fn tokenize(
        &mut self,
        opts: &Options,
        m: &Loaded,
        args: &params::Args,
        prompt: &str,
        deadline: Instant,
    ) -> Result<Prompt, Error> {
        let ran_out = std::cell::Cell::new(false);
        let p = template::build_with(
            args.gen.template,
            m.chat_template.as_deref(),
            &m.tok,
            args.system.as_deref(),
            prompt,
            m.reasoning,
            |t, bos, eos, system| {
                crate::sandbox::render(t, bos, eos, system, deadline).map_err(|f| match f {
                    Failed::Deadline => {
                        ran_out.set(true);
                        engine::Error::Template("the task's deadline came first".into())
                    }
                    Failed::Template(e) => e,
                })
            },
        )
        .map_err(|e| template_error(e, ran_out.get(), args.gen.time_budget))?;
        if let Some(r) = self.result.prompt.as_mut() {
            r.think = p.think;
        }
        self.result.usage.prompt_tokens = p.tokens.len();
        let context = m.model.context;
        if p.tokens.len() >= context {
            return Err(engine::Error::PromptTooLong {
                tokens: p.tokens.len(),
                context,
            }
            .into());
        }
        let need = memory::estimate(
            m.engine,
            &m.hparams,
            m.tensor_bytes,
            context,
            p.tokens.len(),
        );
        memory::check(&need, opts.memory_budget, context, p.tokens.len())?;
        self.log.event(
            "prefill",
            json!({ "prompt_tokens": p.tokens.len(), "context": context }),
        );
        Ok(p)
    }

    /// Step 7: generation until a stop; the answer streams to stdout outside a worker.
    fn generate(
        &mut self,
        m: &mut Loaded,
        p: &Prompt,
        gen: &GenParams,
        deadline: Instant,
    ) -> Generation {
        let mut stream = Stream::new(!self.log.is_json());
        let tok = &m.tok;
        let g = generate::generate(
            &mut m.model,
            &p.tokens,
            &gen.sampling(),
            gen.max_tokens as usize,
            &tok.end_of_generation,
            |need| Instant::now() + need >= deadline,
            |t| stream.push(tok, t),
        );
        stream.finish();
        g
    }

    /// Step 8: the answer (split from the reasoning), the counts and the speeds.
    fn record(&mut self, tok: &Tokenizer, p: &Prompt, g: &Generation) -> Result<(), Error> {
        let text = tok.decode(&g.tokens)?;
        let (reasoning, answer) = template::split_reasoning(p.opens_think, &text);
        self.result.answer = answer;
        self.result.reasoning = reasoning;
        self.result.finish_reason = Some(g.finish);
        self.result.usage.completion_tokens = g.tokens.len();
        let m = &mut self.metrics;
        m.prefill_tokens = p.tokens.len();
        m.prefill_seconds = g.prefill.as_secs_f64();
        m.prefill_tokens_per_second = rate(p.tokens.len(), m.prefill_seconds);
        m.decode_tokens = g.tokens.len();
        m.decode_seconds = g.decode.as_secs_f64();
        m.decode_tokens_per_second = rate(g.tokens.len(), m.decode_seconds);
        self.log.event(
            "generated",
            json!({ "completion_tokens": g.tokens.len(), "finish_reason": g.finish,
                    "answer_sha256": sha256_hex(self.result.answer.as_bytes()),
                    "prefill_tokens_per_second": m.prefill_tokens_per_second,
                    "decode_tokens_per_second": m.decode_tokens_per_second }),
        );
        Ok(())
    }
}

/// The answer as it is generated, printed to stdout outside a worker (whole characters only).
struct Stream {
    on: bool,
    tokens: Vec<u32>,
    shown: String,
}

impl Stream {
    fn new(on: bool) -> Self {
        Self {
            on,
            tokens: Vec::new(),
            shown: String::new(),
        }
    }

    fn push(&mut self, tok: &Tokenizer, t: u32) {
        if !self.on {
            return;
        }
        self.tokens.push(t);
        if let Ok(text) = tok.decode(&self.tokens) {
            // Print only whole characters: a token can end inside a multi-byte one.
            if !text.ends_with('\u{FFFD}') && text.len() > self.shown.len() {
                if let Some(new) = text.get(self.shown.len()..) {
                    let mut so = std::io::stdout().lock();
                    let _ = so.write_all(new.as_bytes());
                    let _ = so.flush();
                }
                self.shown = text;
            }
        }
    }

    fn finish(&self) {
        if self.on {
            println!();
        }
    }
}

/// A chat template stopped by the task's deadline (`ran_out`, told by the sandbox) is the time
/// budget's failure, not the template's: on a slow or busy machine the hash and load can use
/// up a short time_budget before the template has run, and the requester must be told to give
/// more time, not that the model's template is broken. Any other error keeps its kind, even
/// when it comes after the deadline.
fn template_error(e: engine::Error, ran_out: bool, time_budget: u32) -> Error {
    if ran_out {
        Error::TimeBudget(format!(
            "the prompt cannot be read within time_budget={time_budget} s: the time ran out \
             before its chat template was rendered; give a longer time_budget"
        ))
    } else {
        e.into()
    }
}

/// Lowercase hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lowercase hex sha256 of a file.
///
/// # Errors
/// The I/O error if the file cannot be read.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    sha256_reader(&mut std::fs::File::open(path)?)
}

fn sha256_reader<R: Read>(r: &mut R) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_stopped_by_the_deadline_is_a_time_budget_error() {
        let past = Instant::now();
        let f = crate::sandbox::render("{{ bos_token }}", "<s>", "</s>", false, past)
            .expect_err("the deadline has passed");
        assert!(matches!(f, Failed::Deadline), "{f:?}");
        let e = template_error(engine::Error::Template("x".into()), true, 2);
        assert_eq!(e.kind(), "time-budget");
        assert!(
            e.message()
                .starts_with("the prompt cannot be read within time_budget=2 s"),
            "{e}"
        );
    }

    #[test]
    fn a_template_failing_on_its_own_keeps_its_kind_even_after_the_deadline() {
        let e = template_error(engine::Error::Template("bad".into()), false, 2);
        assert_eq!(e.kind(), "chat-template");
        let e = template_error(engine::Error::Tokenizer("bad".into()), false, 2);
        assert_eq!(e.kind(), "tokenizer");
    }
}
