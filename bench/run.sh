#!/usr/bin/env bash
# Speed and memory of the app's engine beside llama.cpp, in one run on this machine: the
# machine's read bandwidth and int8 VNNI peak, prefill tokens/s (512-token prompt) and its
# share of that peak, decode tokens/s (128 and 2,048
# tokens after the 512-token prompt) and its share of the read bandwidth, the time of one
# batched decode step of B = 1, 2, 4, 8 sequences (llama-batched-bench beside it), cold start
# (process start to first token, our hash of the file included), peak RSS, and the ratios
# ours / llama.cpp; then each engine's perplexity and KL divergence from an exact float64
# forward pass on the first ACCURACY_TOKENS (default 512) tokens of Debian's GPL-3 text
# (bench/accuracy.py).
#
#   bench/run.sh [THREADS] [MODEL]
#
# MODEL defaults to a synthetic GGUF with DeepSeek-R1-Distill-Qwen-1.5B's exact shapes and
# Q4_K_M type layout (random weights, ~1.1 GB, made once under .cache/synth). THREADS
# defaults to 2. llama.cpp is built from the llama-cpp-python sdist (reference/).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
threads="${1:-2}"
model="${2:-}"

cargo build --quiet --release -p engine --bin iexec-llm-bench
cargo build --quiet --release -p gguf-synth
if [ -z "$model" ]; then
  model=.cache/synth/r1-1.5b-q4_k_m.gguf
  if [ ! -f "$model" ]; then
    mkdir -p .cache/synth
    echo "writing $model (DeepSeek-R1-Distill-Qwen-1.5B shapes, Q4_K_M layout)" >&2
    ./target/release/gguf-synth r1-1.5b "$model" --seed 1
  fi
fi
"$root/reference/build-llama-cpp.sh"
. "$root/reference/env.sh"
python3 "$root/bench/compare.py" --threads "$threads" --model "$model" \
  --ours "$root/target/release/iexec-llm-bench" --llama-bench "$LLAMA_BENCH" \
  --llama-batched-bench "$LLAMA_BATCHED_BENCH"
"$REF_PYTHON" "$root/bench/accuracy.py" --threads "$threads" --model "$model" \
  --ours "$root/target/release/iexec-llm-bench" --tokens "${ACCURACY_TOKENS:-512}"
