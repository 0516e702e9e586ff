#!/usr/bin/env bash
# Regenerate engine/tests/fixtures/llama_cpp_reference.json from llama.cpp (see make_fixtures.py).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/reference/build-llama-cpp.sh"
model="$("$root/scripts/fetch-small-model.sh")"
mkdir -p .cache/synth
cargo run --quiet --release -p gguf-synth -- tiny-qwen2 .cache/synth/tiny-qwen2.gguf \
  --template synth/templates/deepseek-r1-distill-qwen.jinja
. "$root/reference/env.sh"
"$REF_PYTHON" reference/make_fixtures.py "$model" .cache/synth/tiny-qwen2.gguf \
  engine/tests/fixtures/llama_cpp_reference.json
echo "wrote engine/tests/fixtures/llama_cpp_reference.json" >&2
