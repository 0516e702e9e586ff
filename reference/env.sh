# Source this to use the llama.cpp reference built by reference/build-llama-cpp.sh:
#   . reference/env.sh && "$REF_PYTHON" reference/make_fixtures.py
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_dir="$_root/.cache/llama-cpp"
_src="$(ls -d "$_dir"/src/llama_cpp_python-* | head -n 1)"
export LLAMA_CPP_LIB_PATH="$_dir/build/bin"
export PYTHONPATH="$_src${PYTHONPATH:+:$PYTHONPATH}"
export REF_PYTHON="$_dir/venv/bin/python"
export LLAMA_BENCH="$_dir/build/bin/llama-bench"
export LLAMA_BATCHED_BENCH="$_dir/build/bin/llama-batched-bench"
export LLAMA_PERPLEXITY="$_dir/build/bin/llama-perplexity"
export LLAMA_FEATURES="$(cat "$_dir/build/features" 2>/dev/null)"
