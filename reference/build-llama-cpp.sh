#!/usr/bin/env bash
# Build the reference implementation, llama.cpp, from the sdist of the PyPI package
# llama-cpp-python (it vendors llama.cpp), without installing anything system-wide.
#
#   reference/build-llama-cpp.sh          -> .cache/llama-cpp/{src,build,venv}
#
# Outputs: .cache/llama-cpp/build/bin/{libllama.so,llama-bench}, and a venv whose python can
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
if [ ! -x "$build/bin/llama-bench" ] || [ ! -f "$build/bin/libllama.so" ]; then
  echo "building llama.cpp (vendored in llama-cpp-python $version); this takes a few minutes" >&2
  # GGML_NATIVE=ON dies with SIGILL (tilezero in tinygemm_kernel_amx) on CPUs that advertise
  # AMX, where a process must ask the kernel for the tile state first; name the x86 features
  # instead (AVX-512 with VNNI and BF16, which every TDX host has), and no AMX.
  cmake -S "$src/vendor/llama.cpp" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
    -DGGML_F16C=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_TOOLS=ON >"$dir/cmake-configure.log" 2>&1 ||
    { tail -30 "$dir/cmake-configure.log" >&2; exit 1; }
  cmake --build "$build" -j"$(nproc)" --target llama llama-bench >"$dir/cmake-build.log" 2>&1 ||
    { tail -30 "$dir/cmake-build.log" >&2; exit 1; }
fi

venv="$dir/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "numpy>=1.20" "typing-extensions>=4.5" "diskcache>=5.6.1" \
    "jinja2>=2.11.3" "gguf" >&2
fi
echo "llama.cpp reference ready in $dir" >&2
