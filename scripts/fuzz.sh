#!/usr/bin/env bash
# Runs every cargo-fuzz target for a fixed number of iterations from its seed corpus (real
# vectors from verifier/testdata and the small seeds in fuzz/seeds). A crash fails the run;
# nothing here is timed. scripts/test.sh calls it; to fuzz longer:
#
#   scripts/fuzz.sh [RUNS]             # every target, RUNS iterations each (default 20000)
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none quote -- -max_total_time=3600
#
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 allows them on the stable
# toolchain. Targets are built without a sanitizer (-s none): Rust is memory-safe, what is
# looked for is a panic, a hang or an abort, and an uninstrumented build is several times
# faster to build on two cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
runs="${1:-20000}"
export PATH="$root/.cache/tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null; then
  echo "== installing cargo-fuzz 0.13.1 (crates.io) into .cache/tools" >&2
  cargo install --quiet --locked cargo-fuzz --version 0.13.1 --root "$root/.cache/tools"
fi

# target -> seed files (paths relative to the repository)
declare -A seeds=(
  [quote]="verifier/testdata/tdx/dcap-qvl/tdx_quote verifier/testdata/tdx/dcap-qvl/sgx_quote verifier/testdata/tdx/go-tdx-guest/quote_v5_sample.dat"
  [collateral]="verifier/testdata/tdx/dcap-qvl/tdx_quote_collateral.json verifier/testdata/tdx/go-tdx-guest/sample_tcbInfo_response"
  [gguf]=""
  [eventlog]="verifier/testdata/tdx/go-tdx-guest/ccel/ccel_data.dat verifier/testdata/tdx/dstack/tdx-lite-getquote.json"
  [archive]="verifier/testdata/iexec/files/iexec-result-proxy/result.zip verifier/testdata/iexec/files/derived/encrypted-result-aes256cbc/iexec_out.zip"
  [collateral_mutations]=""
  [layer]=""
  [protected_data]=""
)
corpus_root="$root/fuzz/corpus"
echo "== building the fuzz targets (first build: a few minutes)" >&2
(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build -s none --release >/dev/null)
for t in quote collateral gguf eventlog archive collateral_mutations layer protected_data; do
  dir="$corpus_root/$t"
  mkdir -p "$dir"
  for f in ${seeds[$t]}; do
    [ -f "$f" ] && cp "$f" "$dir/"
  done
  [ -d "fuzz/seeds/$t" ] && cp fuzz/seeds/"$t"/* "$dir/"
  if [ "$t" = layer ]; then
    # A small layer with every entry kind the layer reader handles (directory, file,
    # whiteout, symlink, hard link), made here rather than kept as a binary in the tree.
    python3 - "$dir/small.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    def add(name, kind, data=b"", link=""):
        i = tarfile.TarInfo(name)
        i.type, i.mode, i.mtime, i.size, i.linkname = kind, 0o644, 0, len(data), link
        t.addfile(i, io.BytesIO(data) if data else None)
    add("app/", tarfile.DIRTYPE)
    add("app/iexec-llm", tarfile.REGTYPE, b"\x7fELF")
    add("app/.wh.old", tarfile.REGTYPE)
    add("app/link", tarfile.SYMTYPE, link="iexec-llm")
    add("app/hard", tarfile.LNKTYPE, link="app/iexec-llm")
PY
  fi
  echo "== fuzz $t: $runs runs" >&2
  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none --release "$t" "$dir" -- \
    -runs="$runs" -max_len=65536 -rss_limit_mb=4096 -timeout=30 2>&1 | tail -n 2)
done
