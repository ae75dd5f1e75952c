#!/usr/bin/env bash
# Downloads the Debian 12 packages that scripts/gpu_check.sh needs on a GPU machine which has no
# network (its image brings nvcc, cuDNN, CMake, ninja, a C++ compiler, python3 and PyTorch, but
# none of these), into .gpu-debs/ at the top of the repository. Run it on a Debian 12 machine that
# reaches Debian's mirrors; nothing is installed here.
#
#   bash scripts/gpu_deps.sh [--without-data]
#
# Then give the device tool carry [".gpu-debs"]: gpu_check.sh unpacks each package with
# `dpkg -x` into a private prefix (never into /) and builds and runs against it.
# --without-data leaves out dataset-fashion-mnist (about 30 MB of the bundle); the training check
# then needs KINDLING_FASHION_MNIST_DIR on the GPU machine.
set -euo pipefail

# The minimal set, with every Depends of each either in this list or in `image` below.
packages=(
  libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0   # BLAS, pthreads build
  zlib1g-dev zlib1g            # zlib1g only so that libz.so (an absolute link) resolves in the prefix
  libfmt-dev libfmt9 nlohmann-json3-dev libcli11-dev doctest-dev
  libprotobuf-dev libprotobuf32 libprotobuf-lite32              # `kindling export --onnx`
  libonnx-dev libonnx1 libonnxifi
  pkgconf-bin libpkgconf3 pkgconf   # pkg-config itself: FindKindlingOpenBLAS reads openblas.pc
  dataset-fashion-mnist             # the training check's data
)
# What the GPU image has (the C and C++ runtime of its compiler), or names no file the build uses.
image=(libc6 libgcc-s1 libstdc++6 gcc-12-base libc-dev)

if [[ ${1:-} == --without-data ]]; then
  packages=("${packages[@]/dataset-fashion-mnist}")
elif [[ $# -gt 0 ]]; then
  echo "usage: bash scripts/gpu_deps.sh [--without-data]" >&2
  exit 2
fi
read -ra packages <<<"${packages[*]}"   # drops the emptied entry

# Every dependency must be in the bundle or on the image: a new one in Debian fails here, not there.
unlisted=()
for package in "${packages[@]}"; do
  while read -r dependency; do
    [[ " ${packages[*]} ${image[*]} " == *" $dependency "* ]] || unlisted+=("$package -> $dependency")
  done < <(apt-cache depends "$package" | awk '/^ *(Pre)?Depends:/ {gsub(/[<>]/, "", $2); print $2}')
done
if ((${#unlisted[@]})); then
  printf 'gpu_deps: a dependency is neither bundled nor on the GPU image: %s\n' "${unlisted[@]}" >&2
  exit 1
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
debs=$repo/.gpu-debs
rm -rf "$debs.tmp"
mkdir -p "$debs.tmp"
(cd "$debs.tmp" && apt-get download -q "${packages[@]}") || {
  echo "gpu_deps: apt-get download failed (run apt-get update first?)" >&2
  rm -rf "$debs.tmp"
  exit 1
}
# Plain names (Debian's carry '%3a', '~' and '+'), so that no copying tool has to quote them.
for deb in "$debs.tmp"/*.deb; do
  plain=$(basename "$deb" | tr -c 'A-Za-z0-9._\n-' '_')
  [[ $deb == "$debs.tmp/$plain" ]] || mv "$deb" "$debs.tmp/$plain"
done
rm -rf "$debs"
mv "$debs.tmp" "$debs"

ls -l "$debs" | awk 'NR > 1 {printf "%10d  %s\n", $5, $9}'
bytes=$(du -cb "$debs"/*.deb | tail -1 | cut -f1)
echo "gpu_deps: ${#packages[@]} packages, $bytes bytes ($((bytes / 1048576)) MiB) in $debs"
echo "gpu_deps: call the device tool with carry [\".gpu-debs\"] and the command" \
     "'bash scripts/gpu_check.sh \$OUT'"
