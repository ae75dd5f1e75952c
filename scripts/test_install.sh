#!/usr/bin/env bash
# Installs a built kindling into a temporary prefix and uses it as a stranger would: builds
# examples/ out of tree with find_package(kindling), runs each for a few steps, and compiles a
# program through pkg-config.   scripts/test_install.sh [build dir, default build]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S examples -B "$work/examples" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/examples" -j "$(nproc)"
"$work/examples/small_cnn" 1 5
"$work/examples/resnet_zoo" squentropy 1 3 "$work/resnet20.safetensors"
"$work/prefix/bin/kindling" eval --checkpoint "$work/resnet20.safetensors" --data fashion-mnist \
  --limit-test 500 --json
"$work/examples/finetune" "$work/resnet20.safetensors" 1 3

cat > "$work/pc.cpp" <<'CPP'
#include <kindling/ops/ops.h>
#include <cstdio>
int main() { std::printf("%g\n", kindling::sum(kindling::ones({2, 3})).item<float>()); }
CPP
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
c++ "$work/pc.cpp" -o "$work/pc" $(pkg-config --cflags --libs kindling)
[[ $("$work/pc") == 6 ]] || { echo "pkg-config build gave a wrong sum"; exit 1; }
echo "install: examples and pkg-config OK"
