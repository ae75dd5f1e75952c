#!/usr/bin/env bash
# Builds the reader fuzzer with clang (libFuzzer + ASan + UBSan) in its own build directory, writes a
# seed corpus of valid and near-valid files, and fuzzes for a bounded time. Exits non-zero when the
# build fails or the fuzzer finds a crash, leak, timeout or sanitizer report.
#   tests/fuzz/run_fuzz.sh [seconds]        (default 30; env BUILD_DIR, JOBS)
set -euo pipefail

seconds="${1:-30}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$root/build-fuzz}"
jobs="${JOBS:-2}"

# The whole project when it includes tests/fuzz, else the fuzz folder on its own.
if grep -q 'tests/fuzz' "$root/CMakeLists.txt"; then
  source_dir="$root"
else
  source_dir="$root/tests/fuzz"
fi
mkdir -p "$build"
CC=clang CXX=clang++ cmake -S "$source_dir" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKINDLING_FUZZ=ON -DKINDLING_CUDA=OFF -DKINDLING_NATIVE=OFF > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
ninja -C "$build" -j "$jobs" fuzz_readers

work="$build/fuzz-readers"
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
corpus="$work/corpus"

# Seeds. IDX: 00 00 08 <ndims> then big-endian dims and data.
idx_images() {
  printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x1c\x00\x00\x00\x1c'
  head -c 1568 /dev/zero | tr '\0' '\7'
}
idx_labels() { printf '\x00\x00\x08\x01\x00\x00\x00\x02\x03\x09'; }
idx_images > "$corpus/images.idx"
idx_labels > "$corpus/labels.idx"
gzip -9 -c "$corpus/images.idx" > "$corpus/images.idx.gz"
gzip -1 -c "$corpus/labels.idx" > "$corpus/labels.idx.gz"
printf '\x00\x00\x08\x02\x00\x00\x00\x03\x00\x00\x00\x02\x01\x02\x03\x04\x05\x06' > "$corpus/small.idx"
# The pair layout: 2-byte little-endian length of the images file (1584 = 0x0630), images, labels.
{ printf '\x30\x06'; idx_images; idx_labels; } > "$corpus/pair"
# A pair with labels 1..26 (EMNIST letters layout).
{ printf '\x30\x06'; idx_images; printf '\x00\x00\x08\x01\x00\x00\x00\x02\x01\x1a'; } > "$corpus/pair-letters"
# CIFAR-10: one record (label 3 + 3072 bytes); CIFAR-100: one record (coarse 4, fine 30 + 3072 bytes).
{ printf '\x03'; head -c 3072 /dev/zero | tr '\0' '\200'; } > "$corpus/cifar10.bin"
{ printf '\x04\x1e'; head -c 3072 /dev/zero | tr '\0' '\100'; } > "$corpus/cifar100.bin"
gzip -c "$corpus/cifar10.bin" > "$corpus/cifar10.bin.gz"

set +e
(cd "$work" && "$build/fuzz_readers" "$corpus" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" -print_final_stats=1) > "$work/fuzz.log" 2>&1
status=$?
set -e
tail -n 25 "$work/fuzz.log"
artifacts=$(find "$work/artifacts" -type f | wc -l)
if [[ $status -ne 0 || $artifacts -ne 0 ]]; then
  echo "run_fuzz.sh: FAILED (fuzzer exit status $status, $artifacts artifacts in $work/artifacts)" >&2
  exit 1
fi
echo "run_fuzz.sh: no crashes in ${seconds}s (log: $work/fuzz.log)"
