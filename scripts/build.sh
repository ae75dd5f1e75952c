#!/usr/bin/env bash
# Builds kindling in build/ (Release; the CUDA backend too when nvcc is present) and, with
# --sanitize, the ASan+UBSan build in build-asan/ (CPU only).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
nvcc=/usr/local/cuda/bin/nvcc
cuda_flags=()
if [[ -x $nvcc ]]; then
  cuda_flags=(-DKINDLING_CUDA=ON -DCMAKE_CUDA_COMPILER=$nvcc)
else
  cuda_flags=(-DKINDLING_CUDA=OFF)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda_flags[@]}" >/dev/null
cmake --build build -j "$jobs"
if [[ ${1:-} == --sanitize ]]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKINDLING_SANITIZE=ON \
    -DKINDLING_CUDA=OFF >/dev/null
  cmake --build build-asan -j "$jobs"
fi
