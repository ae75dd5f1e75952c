#!/usr/bin/env bash
# Installs the Debian packages kindling needs, only those missing (no network needed when all are
# present). Run as root on Debian 12.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-dev libopenblas0-pthread   # BLAS: the pthreads build, see CMakeLists.txt
  doctest-dev zlib1g-dev libcli11-dev nlohmann-json3-dev libfmt-dev
  clang libclang-rt-14-dev               # libFuzzer for the file readers
  clang-format-14                        # the format check (scripts/check_format.sh)
  python3                                # the checkpoint reader test (standard library only)
  dataset-fashion-mnist                  # the real data of the main job
  gnuplot-nox                            # study plots
  libonnx-dev libprotobuf-dev            # kindling export --onnx
  python3-onnx python3-numpy             # the ONNX checker in tests/test_export.cpp
  openmpi-bin libopenmpi-dev             # data-parallel training (mpirun; NCCL comes with CUDA)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The default BLAS must be the pthreads OpenBLAS (the alternative could point at another build).
update-alternatives --set libblas.so.3-x86_64-linux-gnu \
  /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 >/dev/null 2>&1 || true
