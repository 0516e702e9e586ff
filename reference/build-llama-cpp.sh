#!/usr/bin/env bash
# Build the reference implementation, llama.cpp, from the sdist of the PyPI package
# llama-cpp-python (it vendors llama.cpp), without installing anything system-wide.
#
#   reference/build-llama-cpp.sh          -> .cache/llama-cpp/{src,build,venv}
#
# Outputs: .cache/llama-cpp/build/bin/{libllama.so,llama-bench,llama-batched-bench,
# llama-perplexity}, the CPU features built for in build/features, and a venv whose python can
# `import llama_cpp` against that library (see reference/env.sh). Needs cmake and a C++ compiler
# (Debian: apt-get install cmake g++). Idempotent: a finished build is reused.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
dir="$root/.cache/llama-cpp"
mkdir -p "$dir/sdist"

if ! command -v cmake >/dev/null; then
  echo "cmake is missing; installing it with apt-get" >&2
  apt-get update -qq && apt-get install -y -qq cmake g++ >/dev/null
fi

src="$dir/src/llama_cpp_python-$version"
if [ ! -d "$src" ]; then
  echo "fetching the llama-cpp-python==$version sdist" >&2
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
    -d "$dir/sdist" "llama-cpp-python==$version" >&2
  mkdir -p "$dir/src"
  tar -xzf "$dir/sdist/llama_cpp_python-$version.tar.gz" -C "$dir/src"
fi

build="$dir/build"
# The x86 features to build for: those this CPU advertises, named one by one (GGML_NATIVE=OFF),
# and never AMX. GGML_NATIVE=ON dies with SIGILL (tilezero in tinygemm_kernel_amx) on CPUs
# that advertise AMX, where a process must ask the kernel for the tile state first; and a
# fixed AVX-512 list dies the same way on a CPU without AVX-512 (an AVX2-only EPYC). The list
# is written beside the build, and a build made for other features is made again.
flags="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
has() { case " ${flags#*:} " in *" $1 "*) return 0 ;; esac; return 1; }
features=""
for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI \
  avx512f:AVX512 avx512_vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
  if has "${pair%%:*}"; then features="$features ${pair#*:}"; fi
done
features="${features# }"
cmake_features=()
for f in AVX AVX2 FMA F16C BMI2 AVX_VNNI AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16; do
  case " $features " in *" $f "*) cmake_features+=("-DGGML_$f=ON") ;; *) cmake_features+=("-DGGML_$f=OFF") ;; esac
done
targets=(llama llama-bench llama-batched-bench llama-perplexity)
if [ "$(cat "$build/features" 2>/dev/null)" != "$features" ]; then
  rm -rf "$build"
fi
if [ ! -x "$build/bin/llama-bench" ] || [ ! -x "$build/bin/llama-batched-bench" ] ||
  [ ! -x "$build/bin/llama-perplexity" ] || [ ! -f "$build/bin/libllama.so" ]; then
  echo "building llama.cpp (vendored in llama-cpp-python $version) for: ${features:-no SIMD} (no AMX); this takes a few minutes" >&2
  cmake -S "$src/vendor/llama.cpp" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=OFF "${cmake_features[@]}" \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_TOOLS=ON >"$dir/cmake-configure.log" 2>&1 ||
    { tail -30 "$dir/cmake-configure.log" >&2; exit 1; }
  cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >"$dir/cmake-build.log" 2>&1 ||
    { tail -30 "$dir/cmake-build.log" >&2; exit 1; }
  echo "$features" >"$build/features"
fi

venv="$dir/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "numpy>=1.20" "typing-extensions>=4.5" "diskcache>=5.6.1" \
    "jinja2>=2.11.3" "gguf" >&2
fi
echo "llama.cpp reference ready in $dir" >&2
