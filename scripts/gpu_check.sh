#!/usr/bin/env bash
# The GPU check: everything that needs a GPU, in one run sized to finish in about 8 minutes on a
# 16-core machine with one H100 (the build included), whose results say for certain that the CUDA
# backend ran.
#
#   bash scripts/gpu_check.sh OUT_DIR
#
# Steps, each logged under OUT_DIR and timed:
#   1. prerequisites: the tools and libraries of the build, the GPU, PyTorch, Fashion-MNIST (env.log)
#   2. configure with the CUDA backend forced on for sm_90, build with all cores   (build.log)
#   3. without a GPU: stop here, print "no GPU", exit 3
#   4. every ctest test with KINDLING_REQUIRE_CUDA=1, so a CUDA test that would skip fails instead
#      (ctest.log)
#   5. compute-sanitizer memcheck, then racecheck, over the CUDA kernel tests (tests/test_cuda.cpp)
#      (sanitizer.log); meanwhile one CPU epoch of the training check below, in the background
#   6. ResNet-20, one epoch of Fashion-MNIST with --device cuda; its test accuracy must be within
#      2 points of the same epoch on the CPU (same seed, data and schedule; the devices round
#      differently, so the runs drift apart but land together) (train.log)
#   7. kindling bench --device all --compare-pytorch --json: ResNet-20 at batch 128 and 512,
#      ResNet-18 at batch 512 (bench.log; the JSON lines also go into the summary)
# Then OUT_DIR/summary.json holds every step's status, time and figures, and one line is printed.
# At most 8 files are written, each kept under 16 MB (a longer log keeps its head and tail).
#
# Exit status: 0 every check passed; 1 a check failed; 2 usage; 3 no GPU (after the build);
# 4 a prerequisite is missing or the build failed.
#
# What the machine needs, and why this script installs nothing by itself when it cannot:
# the GPU machines this was written for (an image with the CUDA 13 toolkit, nvcc, cuDNN as a
# Python wheel or a system package, CMake, ninja, PyTorch with CUDA, compute-sanitizer) cannot
# reach any package registry, and kindling also needs Debian's OpenBLAS (pthreads build), fmt,
# nlohmann-json, CLI11, doctest, zlib, protobuf, ONNX, pkg-config and, for step 6, the
# dataset-fashion-mnist package. So step 1 looks for each one. When .gpu-debs/ holds the
# packages of scripts/gpu_deps.sh (run on a Debian 12 machine with network, then carried), each is
# unpacked with dpkg -x into /opt/kindling-deps (or KINDLING_DEPS_PREFIX), never into /, and the
# build and the runs use that prefix (CMAKE_PREFIX_PATH, PKG_CONFIG_PATH, LD_LIBRARY_PATH, PATH);
# `--unpack-only PREFIX` does just that step and prints the environment. When something is still
# missing and apt-get can reach its mirrors, scripts/install_deps.sh installs it (it installs
# only what is missing, and needs no network when nothing is); otherwise the script stops with
# exit 4, and env.log and the summary name each missing piece. cuDNN found only in
# PyTorch's wheel (nvidia/cudnn) is used from there. KINDLING_FASHION_MNIST_DIR may name a folder
# holding the four Fashion-MNIST files when the Debian package is not installed.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
debs=$repo/.gpu-debs   # the packages of scripts/gpu_deps.sh, when the machine has no network

# Unpacks every .deb of $debs into the prefix $1 (dpkg -x: no maintainer script runs, nothing
# touches /), then does what those scripts and an installation into /usr would have done: the
# alternatives that make the pthreads OpenBLAS the system's BLAS, absolute links pointed into the
# prefix, and pkg-config files whose /usr paths name the prefix.
unpack_deps() {
  local prefix=$1 deb link target
  mkdir -p "$prefix" || return 1
  prefix=$(cd "$prefix" && pwd)
  for deb in "$debs"/*.deb; do
    dpkg -x "$deb" "$prefix" || { echo "dpkg -x failed on $deb" >&2; return 1; }
  done
  local lib=$prefix/usr/lib/x86_64-linux-gnu include=$prefix/usr/include/x86_64-linux-gnu
  if [[ -d $lib/openblas-pthread ]]; then
    mkdir -p "$lib/pkgconfig" "$include"
    for link in libblas.so.3 liblapack.so.3 libopenblas.so.0 libblas.so liblapack.so libopenblas.so; do
      ln -sfn "openblas-pthread/$link" "$lib/$link"
    done
    ln -sfn ../openblas-pthread/pkgconfig/openblas.pc "$lib/pkgconfig/openblas.pc"
    ln -sfn ../openblas-pthread/pkgconfig/blas-openblas.pc "$lib/pkgconfig/blas.pc"
    ln -sfn ../openblas-pthread/pkgconfig/lapack-openblas.pc "$lib/pkgconfig/lapack.pc"
    mkdir -p "$lib/cmake/openblas"
    for link in OpenBLASConfig.cmake OpenBLASConfigVersion.cmake; do
      ln -sfn "../../openblas-pthread/cmake/openblas/$link" "$lib/cmake/openblas/$link"
    done
    for link in cblas.h f77blas.h openblas_config.h; do
      ln -sfn "openblas-pthread/$link" "$include/$link"
    done
    ln -sfn openblas-pthread/cblas.h "$include/cblas-openblas.h"
    sed -i "s# /usr/# $prefix/usr/#" "$lib/openblas-pthread/cmake/openblas/OpenBLASConfig.cmake"
  fi
  while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    if [[ $target == /* && -e $prefix$target ]]; then ln -sfn "$prefix$target" "$link"; fi
  done < <(find "$prefix" -type l -print0)
  # CMake packages exported with a fixed prefix (doctest's) name /usr in their targets.
  find "$prefix" -type f -name '*.cmake' -exec sed -i \
    "s#^set(_IMPORT_PREFIX \"/usr\")#set(_IMPORT_PREFIX \"$prefix/usr\")#" {} +
  find "$prefix" -type f -name '*.pc' -exec sed -i -E \
    -e "s#^([A-Za-z0-9_.]+=)/usr(/|\$)#\\1$prefix/usr\\2#" -e "s#(-I|-L)/usr/#\\1$prefix/usr/#g" {} +
}

# Points the build and the runs at the prefix $1 (of unpack_deps): CMake's find_package and
# find_library, pkg-config (the bundled one when the machine has none) and the dynamic loader.
use_deps() {
  local prefix=$1 lib=$1/usr/lib/x86_64-linux-gnu
  export CMAKE_PREFIX_PATH=$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export PKG_CONFIG_PATH=$lib/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$lib:$lib/openblas-pthread:$prefix/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PATH=$PATH:$prefix/usr/bin
}

if [[ $# -eq 2 && $1 == --unpack-only ]]; then
  # Only the unpacking, for checking the bundle on another machine; prints the environment.
  unpack_deps "$2" || exit 4
  use_deps "$(cd "$2" && pwd)"
  for variable in CMAKE_PREFIX_PATH PKG_CONFIG_PATH LD_LIBRARY_PATH PATH; do
    printf 'export %s=%q\n' "$variable" "${!variable}"
  done
  exit 0
fi
if [[ $# -ne 1 || $1 == -h || $1 == --help ]]; then
  echo "usage: bash scripts/gpu_check.sh OUT_DIR" >&2
  echo "       bash scripts/gpu_check.sh --unpack-only PREFIX" \
       "  (unpacks .gpu-debs/ there, prints the environment)" >&2
  exit 2
fi
mkdir -p "$1" || exit 2
out=$(cd "$1" && pwd)
build=$repo/build-gpu
steps=$out/.steps.tsv   # step, status, seconds, detail: folded into summary.json at the end
: >"$steps"
rm -f "$out"/{summary.json,env.log,build.log,ctest.log,sanitizer.log,train.log,bench.log}
cores=$(nproc)
start_all=$(date +%s)
fashion_dir=${KINDLING_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4//$'\t'/ }" >>"$steps"; }

# Keeps a log under 16 MB: its first and last 7 MB.
cap() {
  local file=$1 limit=$((15 * 1024 * 1024))
  [[ -f $file && $(stat -c %s "$file") -gt $limit ]] || return 0
  { head -c $((7 * 1024 * 1024)) "$file"; printf '\n[... cut to stay under 16 MB ...]\n'
    tail -c $((7 * 1024 * 1024)) "$file"; } >"$file.cut" && mv "$file.cut" "$file"
}

# summary.json from the step records, then the one line; exits with $1.
finish() {
  local status=$1 word=$2
  python3 - "$steps" "$out" "$word" "$(( $(date +%s) - start_all ))" <<'PY' || true
import json, os, sys
steps_file, out, word, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
steps = {}
for line in open(steps_file):
    name, status, seconds, detail = (line.rstrip("\n").split("\t") + [""] * 4)[:4]
    try:
        detail = json.loads(detail)
    except ValueError:
        pass
    steps[name] = {"status": status, "seconds": int(seconds or 0), "detail": detail}
summary = {"result": word, "seconds": total, "steps": steps}
tmp = os.path.join(out, "summary.json.tmp")
with open(tmp, "w") as f:
    json.dump(summary, f, indent=1)
os.replace(tmp, os.path.join(out, "summary.json"))
parts = [f"{name} {s['status']}" for name, s in steps.items()]
print(f"gpu_check: {word} in {total} s: " + ", ".join(parts) + f"; details in {out}/summary.json")
PY
  rm -f "$steps"
  exit "$status"
}

# ---- 1. prerequisites ---------------------------------------------------------------------------
t0=$(date +%s)
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
missing=()
deps_prefix=""
if compgen -G "$debs/*.deb" >/dev/null; then
  deps_prefix=${KINDLING_DEPS_PREFIX:-/opt/kindling-deps}   # unpacking again over it is harmless
  if unpack_deps "$deps_prefix" >>"$out/env.log" 2>&1 && deps_prefix=$(cd "$deps_prefix" && pwd); then
    use_deps "$deps_prefix"
    echo "unpacked $(ls "$debs" | wc -l) packages of $debs into $deps_prefix" >>"$out/env.log"
    glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
    if [[ -n $glibc && $(printf '%s\n' 2.34 "$glibc" | sort -V | head -1) != 2.34 ]]; then
      missing+=("glibc 2.34 or newer, which the Debian 12 packages of $debs need (found $glibc)")
    fi
    bundled_data=$deps_prefix/usr/share/datasets/fashion-mnist
    if [[ -z ${KINDLING_FASHION_MNIST_DIR:-} && ! -e $fashion_dir && -d $bundled_data ]]; then
      fashion_dir=$bundled_data
      # The data tests read only the Debian folder: a link there lets them run instead of skip.
      mkdir -p /usr/share/datasets 2>/dev/null &&
        ln -s "$bundled_data" /usr/share/datasets/fashion-mnist 2>/dev/null || true
    fi
  else
    missing+=("the packages of $debs (dpkg -x into $deps_prefix failed: see env.log)")
  fi
fi
check_tool() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 ($2)"); }
check_header() {   # header, package
  for dir in /usr/include /usr/local/include /usr/include/x86_64-linux-gnu \
             ${deps_prefix:+$deps_prefix/usr/include}; do
    [[ -e $dir/$1 ]] && return 0
  done
  missing+=("$1 ($2)")
}
check_tool cmake cmake
check_tool ninja ninja-build
check_tool pkg-config pkg-config
check_tool g++ build-essential
check_tool python3 python3
[[ -x $nvcc ]] || missing+=("nvcc (the CUDA toolkit)")
pkg-config --exists openblas 2>/dev/null || missing+=("openblas.pc (libopenblas-dev, libopenblas0-pthread)")
check_header fmt/format.h libfmt-dev
check_header nlohmann/json.hpp nlohmann-json3-dev
check_header CLI/CLI.hpp libcli11-dev
check_header doctest/doctest.h doctest-dev
check_header zlib.h zlib1g-dev
check_header google/protobuf/message.h libprotobuf-dev
check_header onnx/onnx_pb.h libonnx-dev
if ((${#missing[@]})) && command -v apt-get >/dev/null &&
   timeout 60 apt-get update -qq >/dev/null 2>&1; then
  echo "missing: ${missing[*]}; running scripts/install_deps.sh" >>"$out/env.log"
  bash "$repo/scripts/install_deps.sh" >>"$out/env.log" 2>&1 && missing=()
fi
# cuDNN: the toolkit's or the system's, else PyTorch's wheel.
cmake_cudnn=()
cudnn_lib_dir=""
cuda_root=$(dirname "$(dirname "$nvcc")")
have_cudnn=""
for dir in "$cuda_root/include" /usr/local/include /usr/include /usr/include/x86_64-linux-gnu; do
  [[ -e $dir/cudnn.h ]] && have_cudnn=$dir
done
if [[ -z $have_cudnn ]]; then
  wheel=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null ||
          python3 -c 'import nvidia.cudnn; print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null || true)
  if [[ -n $wheel && -e $wheel/include/cudnn.h ]]; then
    cudnn_lib_dir=$wheel/lib
    library=$(ls "$cudnn_lib_dir"/libcudnn.so* 2>/dev/null | head -1)
    cmake_cudnn=(-DCUDNN_LIBRARY="$library" -DCMAKE_CUDA_FLAGS="-I$wheel/include")
    export LD_LIBRARY_PATH=$cudnn_lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  else
    missing+=("cudnn.h (cuDNN 9: the toolkit's, libcudnn9-dev-cuda-13, or PyTorch's nvidia-cudnn wheel)")
  fi
fi
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); host: $(hostname); cores: $cores"
  echo "system: $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}");" \
       "$(ldd --version 2>&1 | head -1)"
  echo "private prefix: ${deps_prefix:-none} (its Debian 12 libraries need glibc 2.34 and GLIBCXX_3.4.29)"
  echo "commit: $(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 |
    head -4)"
  echo "nvcc: $("$nvcc" --version 2>&1 | tail -1)"
  echo "cmake: $(cmake --version 2>&1 | head -1); ninja: $(ninja --version 2>&1)"
  echo "cudnn: ${have_cudnn:-${cmake_cudnn[*]}}"
  echo "python3: $(command -v python3) $(python3 -c 'import torch; print("torch", torch.__version__,
    "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())' 2>&1 | tail -1)"
  echo "compute-sanitizer: $(command -v compute-sanitizer || ls "$cuda_root"/bin/compute-sanitizer 2>&1)"
  echo "fashion-mnist: $(ls "$fashion_dir" 2>&1 | tr '\n' ' ')"
  echo "missing: ${missing[*]:-nothing}"
} >>"$out/env.log" 2>&1
if ((${#missing[@]})); then
  record prerequisites missing $(($(date +%s) - t0)) \
    "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${missing[@]}" 2>/dev/null ||
       echo "${missing[*]}")"
  finish 4 "missing prerequisites"
fi
record prerequisites ok $(($(date +%s) - t0)) "see env.log"

# ---- 2. configure and build ---------------------------------------------------------------------
t0=$(date +%s)
if cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINDLING_CUDA=ON \
     -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES=90 "${cmake_cudnn[@]}" >"$out/build.log" 2>&1 &&
   cmake --build "$build" -j "$cores" >>"$out/build.log" 2>&1; then
  record build ok $(($(date +%s) - t0)) "sm_90, $cores jobs"
else
  cap "$out/build.log"
  record build failed $(($(date +%s) - t0)) "see the end of build.log"
  finish 4 "build failed"
fi
cap "$out/build.log"
kindling=$build/apps/kindling

# ---- 3. is there a GPU? -------------------------------------------------------------------------
if ! gpus=$(nvidia-smi -L 2>/dev/null) || [[ -z $gpus ]]; then
  echo "no GPU: $("$kindling" info 2>&1 | grep -i -m1 -E 'gpu|cuda')" >>"$out/env.log"
  record gpu none 0 "no GPU"
  echo "no GPU"
  finish 3 "no GPU"
fi
record gpu ok 0 "$gpus"
export KINDLING_REQUIRE_CUDA=1
failures=0

# ---- 4. every test, with a skipped CUDA test counted as a failure -------------------------------
t0=$(date +%s)
KINDLING_NUM_THREADS=2 timeout 240 ctest --test-dir "$build" -j $((cores / 2)) --timeout 200 \
  --output-on-failure >"$out/ctest.log" 2>&1
ctest_status=$?
cap "$out/ctest.log"
tally=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$out/ctest.log" | tail -1)
failed_tests=$(sed -n '/The following tests FAILED/,$p' "$out/ctest.log" | grep -E '^\s+[0-9]+ - ' |
               sed -E 's/^\s+[0-9]+ - //' | head -50 |
               python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin]))')
record ctest "$([[ $ctest_status == 0 ]] && echo ok || echo failed)" $(($(date +%s) - t0)) \
  "{\"tally\": \"${tally:-no tally (status $ctest_status)}\", \"failed\": ${failed_tests:-[]}}"
[[ $ctest_status == 0 ]] || failures=$((failures + 1))

# ---- 5. compute-sanitizer; the CPU reference epoch runs meanwhile ----------------------------------
train_args=(train --data fashion-mnist --data-dir "$fashion_dir" --model resnet20 --epochs 1 --batch-size 128
            --seed 1 --quiet)
cpu_run=$(mktemp -d)
KINDLING_NUM_THREADS=$((cores > 4 ? cores - 4 : cores)) timeout 300 \
  "$kindling" "${train_args[@]}" --device cpu --out "$cpu_run" >"$out/train.log" 2>&1 &
cpu_pid=$!
t0=$(date +%s)
sanitizer=$(command -v compute-sanitizer || echo "$cuda_root/bin/compute-sanitizer")
sanitizer_status=ok
for tool in memcheck racecheck; do
  echo "==== compute-sanitizer --tool $tool tests/test_cuda" >>"$out/sanitizer.log"
  timeout 150 "$sanitizer" --tool "$tool" --error-exitcode 10 --print-limit 20 \
    "$build/tests/test_cuda" >>"$out/sanitizer.log" 2>&1
  code=$?
  echo "==== $tool: exit status $code" >>"$out/sanitizer.log"
  [[ $code == 0 ]] || sanitizer_status=failed
done
cap "$out/sanitizer.log"
record sanitizer $sanitizer_status $(($(date +%s) - t0)) \
  "$(grep -E '^==== [a-z]+: exit' "$out/sanitizer.log" | sed 's/^==== //' | tr '\n' ';')"
[[ $sanitizer_status == ok ]] || failures=$((failures + 1))

# ---- 6. one epoch on the GPU against the CPU's ---------------------------------------------------
t0=$(date +%s)
cuda_run=$(mktemp -d)
timeout 180 "$kindling" "${train_args[@]}" --device cuda --out "$cuda_run/out" >"$cuda_run/log" 2>&1
cuda_status=$?
wait $cpu_pid
cpu_status=$?
{
  echo "==== cpu: exit status $cpu_status"
  cat "$cuda_run/log"
  echo "==== cuda: exit status $cuda_status"
} >>"$out/train.log"
train_detail=$(python3 - "$cpu_run/metrics.jsonl" "$cuda_run/out/metrics.jsonl" <<'PY'
import json, sys
def accuracy(path):
    try:
        return json.loads(open(path).read().splitlines()[-1])["test_accuracy"]
    except Exception:
        return None
cpu, cuda = accuracy(sys.argv[1]), accuracy(sys.argv[2])
ok = cpu is not None and cuda is not None and abs(cpu - cuda) <= 0.02
print(json.dumps({"ok": ok, "cpu_test_accuracy": cpu, "cuda_test_accuracy": cuda, "tolerance": 0.02}))
PY
)
rm -rf "$cpu_run" "$cuda_run"
cap "$out/train.log"
if [[ $train_detail == *'"ok": true'* ]]; then
  record train ok $(($(date +%s) - t0)) "$train_detail"
else
  record train failed $(($(date +%s) - t0)) "$train_detail"
  failures=$((failures + 1))
fi

# ---- 7. benchmarks against PyTorch ---------------------------------------------------------------
t0=$(date +%s)
bench_status=ok
for run in "resnet20 128" "resnet20 512" "resnet18 512"; do
  set -- $run
  echo "==== kindling bench --model $1 --batch-size $2 --device all --compare-pytorch --json" \
    >>"$out/bench.log"
  if ! timeout 120 "$kindling" bench --model "$1" --batch-size "$2" --device all --compare-pytorch --json \
       --repeats 10 --python "$(command -v python3)" >>"$out/bench.log" 2>&1; then
    bench_status=failed
  fi
done
cap "$out/bench.log"
bench_json=$(grep -E '^\{' "$out/bench.log" |
             python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in sys.stdin]))' \
             2>/dev/null || echo '"unreadable: see bench.log"')
record bench $bench_status $(($(date +%s) - t0)) "$bench_json"
[[ $bench_status == ok ]] || failures=$((failures + 1))

if ((failures)); then finish 1 "FAILED ($failures checks)"; fi
finish 0 "passed"
