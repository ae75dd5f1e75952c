#!/usr/bin/env bash
# README command (2): installs what is missing, builds (CPU + CUDA compile when the toolkit is
# present, and the sanitizer build), then runs the whole test suite through ctest in both builds
# and the reader fuzzer for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
start=$(date +%s)
echo "== format: .clang-format and 110 columns"
bash scripts/check_format.sh
bash scripts/build.sh --sanitize
echo "== build: $(( $(date +%s) - start )) s"
jobs=$(nproc)
echo "== ctest: release build"
ctest --test-dir build --output-on-failure -j "$jobs" -E 'fault injection'
# Full disks, failing fsync and rename, read-only folders: kindling runs under an LD_PRELOAD library
# that fails those calls (tests/fault_inject.cpp); release build only, as a sanitizer runtime must
# load first.
echo "== fault injection: train and resume under failing write, fsync, rename and open"
ctest --test-dir build --output-on-failure -R 'fault injection'
echo "== ctest: sanitizer build (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"
echo "== install: examples built against the installed package"
bash scripts/test_install.sh build
if [[ -x tests/fuzz/run_fuzz.sh ]]; then
  echo "== fuzz: file readers"
  tests/fuzz/run_fuzz.sh
fi
echo "== total: $(( $(date +%s) - start )) s"
