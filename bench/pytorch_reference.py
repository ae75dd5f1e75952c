#!/usr/bin/env python3
"""PyTorch's side of `kindling bench --compare-pytorch`: the same model, batch and training step
(forward, cross entropy, backward, SGD with momentum 0.9 and weight decay 5e-4) on random data,
with warm-up, then timed steps. Prints one JSON object with the keys kindling bench prints, and
what the comparison's header needs: the torch version, whether oneDNN (MKL-DNN) is built in and
its version, the BLAS and, when it is OpenBLAS, the kernel set it chose (OPENBLAS_CORETYPE).
A python without torch prints {"error": ...} and exits with status 3."""
import argparse
import ctypes
import json
import os
import re
import statistics
import sys
import time

NO_TORCH = 3
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
except ImportError as e:
    print(json.dumps({"error": f"no torch ({e})", "python": sys.executable}))
    sys.exit(NO_TORCH)
import torch.nn.functional as F  # noqa: E402
from pytorch_models import make_model  # noqa: E402


def openblas_core():
    """The kernel set of the OpenBLAS loaded into this process (Debian's torch reaches it through
    libblas.so.3), or None when no OpenBLAS is loaded."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return None


def build_info():
    config = torch.__config__.show()
    onednn = re.search(r"(?:MKL-DNN|oneDNN)\s+v?([0-9][0-9.]*)", config)
    blas = re.search(r"BLAS_INFO=([A-Za-z0-9_]+)", config)
    capability = re.search(r"CPU capability usage:\s*(\S+)", config)
    return {"python": sys.executable, "mkldnn": torch.backends.mkldnn.is_available(),
            "onednn": onednn.group(1) if onednn else None, "blas": blas.group(1) if blas else None,
            "openblas_core": openblas_core(), "cpu_capability": capability.group(1) if capability else None}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)   # Debian's torch defaults to one thread
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = make_model(a.model, a.channels, a.classes).to(dev)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch_size, a.channels, a.image_size, a.image_size, device=dev).to(memory_format=fmt)
    y = torch.randint(0, a.classes, (a.batch_size,), device=dev)
    fwd = torch.compile(model) if a.compile else model

    def step():
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            loss = F.cross_entropy(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else 0
    precision = "bf16" if a.bf16 else "fp32"
    print(json.dumps({
        "name": f"pytorch/train_step/{a.model}/b{a.batch_size}/{precision}", "device": a.device,
        "images_per_s": a.batch_size * 1e3 / med, "ms_median": med, "ms_min": min(times),
        "ms_max": max(times),
        "peak_bytes": peak, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "channels_last": a.channels_last, "compile": a.compile, "bf16": a.bf16, "precision": precision,
        **build_info()}))


if __name__ == "__main__":
    main()
