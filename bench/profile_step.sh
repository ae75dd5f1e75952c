#!/usr/bin/env bash
# Where a CPU training step spends its time: perf samples (software clock, so it works in virtual
# machines) of build/bench/resnet_step, each sample's function put into one category: the
# convolutions' GEMM tiles, their lowering and packing, the Winograd tile transforms, BatchNorm,
# elementwise maps, pooling, loss and softmax, reductions, the optimizer, memory copies, allocation
# and page faults, the thread pool and the kernel, the rest. Shares are of all samples of the
# process, every thread included.
#   bench/profile_step.sh [model=resnet20] [batch=128] [steps=20]      needs linux-perf
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-resnet20}
batch=${2:-128}
steps=${3:-20}
program=build/bench/resnet_step
[[ -x $program ]] || { echo "build $program first (scripts/build.sh)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
perf record -q -e cpu-clock -F 2000 -o "$work/perf.data" -- "$program" "$model" "$batch" "$steps"
perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -q --percent-limit 0 \
  2>/dev/null > "$work/report.txt"
python3 - "$work/report.txt" <<'PY'
import re, sys
# First match wins; patterns are searched in "<dso> <symbol>".
categories = [
    ("conv GEMM tiles", r"nn_tile|nt_tile|tn_tile|_tile<|gemm|libopenblas"),
    ("conv Winograd transforms", r"winograd"),
    ("conv lowering and packing", r"lower|im2col|col2im|for_each_chunk|LoweringPlan|transpose|pack|"
                                  r"PackedA|sum_partials|conv2d"),
    ("BatchNorm", r"batch_norm|batchnorm|add_grad_sums|normalise_block|for_each_block|forward_train|"
                  r"forward_eval|relu_grad|\(anonymous namespace\)::backward\(kindling::Tensor const&"),
    ("pooling", r"pool"),
    ("loss and softmax", r"loss|softmax|one_hot"),
    ("reductions", r"reduce"),
    ("optimizer", r"sgd_step|adamw_step|optim"),
    ("elementwise", r"map_unary|map_binary|unary|binary|where|CpuBackend::copy|CpuBackend::fill"),
    ("memory copy and set", r"memmove|memcpy|memset"),
    ("allocation and page faults", r"malloc|free|alloc|clear_page|page_fault|folio|mmap|munmap|"
                                   r"_int_|tcache|handle_mm_fault|zap_|lru"),
    ("thread pool and kernel", r"parallel|ThreadPool|futex|spin|sched|\[kernel|kallsyms|schedule|syscall"),
]
totals, examples = {}, {}
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    share, dso, symbol = float(m.group(1)), m.group(2), m.group(3).strip()
    name = "other"
    for category, pattern in categories:
        if re.search(pattern, dso + " " + symbol):
            name = category
            break
    totals[name] = totals.get(name, 0.0) + share
    if name not in examples or share > examples[name][0]:
        examples[name] = (share, symbol[:70])
print(f"| category | share of samples | largest function |")
print(f"|---|---|---|")
for name, share in sorted(totals.items(), key=lambda kv: -kv[1]):
    print(f"| {name} | {share:.1f} % | `{examples[name][1]}` |")
PY
