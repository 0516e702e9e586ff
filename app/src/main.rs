//! `iexec-llm`: the command line. All the work is in the library (`app::run`).

use app::run::{Options, EXIT_NO_OUTPUT};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
PARAMETERS (key=value; under iExec they are the deal's iexec_args, public on chain):
  prompt=TEXT        the prompt (or give it as free text: every argument that is not key=value)
  system=TEXT        system prompt (chat template only)
  max_tokens=N       most tokens to generate, 1..32768            [default: 512]
  temperature=X      0 = greedy (below 1e-4 too), up to 2         [default: 0.6]
  top_p=X            nucleus sampling mass, (0, 1]                [default: 0.95]
  seed=N             sampler seed, same seed = same answer         [default: 0]
  template=chat|raw  render the model's chat template, or not     [default: chat]
  context=N          largest prompt + answer in tokens, 16..131072 [default: 4096]
  time_budget=S      stop S seconds after start (prompt reading too) [default: 270]

PROMPT SOURCES, instead of prompt= (exactly one; the text is never logged, result.json keeps
its sha256):
  IEXEC_REQUESTER_SECRET_1     confidential, at most 4096 bytes (iExec's secret service)
  $IEXEC_IN/$IEXEC_DATASET_FILENAME
                               confidential: plain UTF-8, or a DataProtector zip with the
                               fields prompt, system and any parameter above (off chain)
  input file 1 (IEXEC_INPUT_FILE_NAME_1 in IEXEC_INPUT_FILES_FOLDER)
                               public: its URL is in the deal's parameters
  Bulk tasks (IEXEC_BULK_SLICE_SIZE > 0) are refused.

OUTPUT (in --out, or $IEXEC_OUT under a worker; nothing is written without either):
  result.json    deterministic result: answer, reasoning, finish_reason, usage, parameters,
                 prompt sha256, model sha256, binary sha256
  computed.json  deterministic-output-path (always /iexec_out/result.json, where the
                 post-compute sees the output directory) and error-message on failure
  metrics.json   load time, prefill and decode tokens/s, peak RSS
  quote.bin      TDX quote whose REPORTDATA binds result.json, where the platform offers one
                 (configfs-tsm or a dstack guest agent); eventlog.bin/.json the TD event log.
                 result.json's \"attestation\" says which, or why there is none.

ENGINE (environment; the answer's bytes never depend on the last two):
  IEXEC_LLM_ENGINE=own|candle   our kernels (default), or candle-transformers' forward pass
                                (the default only for a model with a type our kernels lack)
  IEXEC_LLM_THREADS=N           threads of our engine [default: RAYON_NUM_THREADS, else cores]
  IEXEC_LLM_SIMD=scalar|avx2|avx512|amx  force a kernel path [default: the best the CPU has]

EXIT STATUS: 0 a result was written (an answer or an error record: a worker publishes the
result only when the app exits 0), 2 no result could be written at all.

EXAMPLE:
  iexec-llm --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --model-sha256 b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \\
      --out out/local max_tokens=64 temperature=0 \"What is the capital of France?\"";

/// Answers a prompt with a pinned GGUF model, as an iExec iApp or from a shell.
#[derive(Parser, Debug)]
#[command(name = "iexec-llm", version, after_help = AFTER_HELP)]
struct Cli {
    /// GGUF model file (llama or qwen2 architecture).
    #[arg(long, value_name = "PATH", default_value = app::DEFAULT_MODEL_PATH)]
    model: PathBuf,
    /// sha256 the model file must have; the app refuses any other file.
    #[arg(long, value_name = "HEX", default_value = app::PINNED_MODEL_SHA256,
          value_parser = parse_sha256)]
    model_sha256: String,
    /// Use this tokenizer.json instead of the tokenizer in the GGUF file.
    #[arg(long, value_name = "PATH")]
    tokenizer: Option<PathBuf>,
    /// Most memory the task may use: model, KV cache for the context, prompt scratch. A task
    /// that would need more is refused before loading (error kind memory-budget). Bytes, or
    /// with KiB/MiB/GiB.
    #[arg(long, value_name = "SIZE", default_value = "6GiB", env = "IEXEC_LLM_MEMORY_BUDGET",
          value_parser = engine::memory::parse_size)]
    memory_budget: u64,
    /// Write result.json, computed.json and metrics.json here [default: $IEXEC_OUT].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Task parameters (key=value) and free-text prompt; see PARAMETERS below.
    #[arg(
        value_name = "PARAMS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    params: Vec<String>,
}

fn parse_sha256(s: &str) -> Result<String, String> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "expected 64 hex digits, got {} characters",
            s.len()
        ))
    }
}

fn main() -> ExitCode {
    // The chat template's sandbox (app::sandbox) is this binary with one hidden argument.
    if std::env::args_os().nth(1).as_deref() == Some(app::sandbox::CHILD_ARG.as_ref()) {
        return ExitCode::from(app::sandbox::child());
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_NO_OUTPUT } else { 0 });
        }
    };
    let opts = Options {
        model: cli.model,
        model_sha256: cli.model_sha256,
        tokenizer: cli.tokenizer,
        out: cli.out,
        params: cli.params,
        platform: app::attest::Platform::default(),
        memory_budget: cli.memory_budget,
    };
    ExitCode::from(app::run::run(&opts, &app::iexec::Env::from_process()))
}
