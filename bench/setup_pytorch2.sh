#!/usr/bin/env bash
# Creates a virtual environment with a current PyTorch 2.x from the Python package index, for
# `kindling bench --compare-pytorch`, which runs bench/pytorch_reference.py with Debian's PyTorch
# (/usr/bin/python3) and, when this environment exists, with its python as well. Neither the
# build, the tests nor the README's commands need it.
#
#   bash bench/setup_pytorch2.sh [venv folder]     (default bench/.venv-torch2, git-ignored)
#
# The CPU-only wheel index (TORCH_INDEX_URL, default download.pytorch.org/whl/cpu) is tried first:
# it holds a wheel of some 200 MB. Where it cannot be reached, PyPI's default wheel is installed,
# which pulls the nvidia-* CUDA libraries (several GB) although the benchmark uses the CPU only.
# TORCH_SPEC picks the version (default: torch, the newest; an environment that already has torch
# is left as it is unless TORCH_SPEC is set); PYTHON the interpreter (python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${1:-$here/.venv-torch2}
python=${PYTHON:-python3}
spec=${TORCH_SPEC:-torch}
index=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}

"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
if [[ -z ${TORCH_SPEC:-} ]] && "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  echo "setup_pytorch2: $venv already has torch (TORCH_SPEC=torch==VERSION picks another)"
elif "${pip[@]}" install --upgrade --retries 1 --timeout 20 "$spec" --index-url "$index"; then
  echo "setup_pytorch2: installed $spec from $index"
else
  echo "setup_pytorch2: $index not reachable; installing $spec from PyPI (with its CUDA libraries)"
  "${pip[@]}" install --upgrade "$spec"
fi
"${pip[@]}" install numpy   # torch warns at import without it
"$venv/bin/python" - <<'PY'
import torch
print(f"setup_pytorch2: torch {torch.__version__}, oneDNN available: {torch.backends.mkldnn.is_available()}")
PY
