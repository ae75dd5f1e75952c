#!/usr/bin/python3
"""Writes resnet20_fixture.safetensors: a CIFAR ResNet-20 (He et al. 2016, option-A shortcuts) at
3 input channels and 10 classes, its weights, a batch of 4 random 3x32x32 images with labels, and
for BOTH train mode and eval mode the logits, the mean cross-entropy loss and every parameter's
gradient after one backward. tests/test_resnet_fixture.cpp loads it into kindling's resnet20 and
requires the same numbers, so the test suite itself never needs PyTorch.

Run with Debian's PyTorch (python3-torch, 1.13, CPU):
    /usr/bin/python3 tests/reference/make_resnet_fixture.py tests/reference/resnet20_fixture.safetensors

The reference is computed in float64 from float32-exact weights and inputs, so the stored numbers
(rounded to float32) are the exact answer, and the test measures kindling's float32 error alone.
The file is written with json + struct only (no safetensors package). Tensor names:
    weights.<param>            every parameter (PyTorch names: conv1.weight, layer1.0.bn1.bias, fc.weight)
    input [4,3,32,32] F32, labels [4] I64
    train.logits, train.loss, train.grad.<param>, train.<bn>.running_mean/var (after the forward)
    eval.<bn>.running_mean/var (the statistics eval mode uses), eval.logits, eval.loss, eval.grad.<param>
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# The PyTorch twin of kindling's model zoo, shared with the benchmarks.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from pytorch_models import CifarResNet, write_safetensors  # noqa: E402


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "resnet20_fixture.safetensors"
    torch.manual_seed(20)
    model = CifarResNet(20)
    # torchvision's ResNet initialisation, then non-trivial BN affine parameters so a mix-up of
    # weight and bias cannot pass.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.1)
            nn.init.normal_(m.bias, 0.0, 0.1)
    assert sum(p.numel() for p in model.parameters()) == 269722
    x = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([3, 0, 9, 3], dtype=torch.int64)
    bn_names = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]

    weights = [(f"weights.{n}", p.detach().clone()) for n, p in model.named_parameters()]
    model = model.double()   # float32-exact values, computed in float64

    def run(mode):
        model.train(mode == "train")
        model.zero_grad()
        logits = model(x.double())
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        out = [(f"{mode}.logits", logits.float()), (f"{mode}.loss", loss.float())]
        out += [(f"{mode}.grad.{n}", p.grad.float()) for n, p in model.named_parameters()]
        return out

    train_results = run("train")
    # The running statistics after the one training forward (momentum 0.1, unbiased variance).
    modules = dict(model.named_modules())
    train_stats = []
    for name in bn_names:
        train_stats.append((f"train.{name}.running_mean", modules[name].running_mean.float()))
        train_stats.append((f"train.{name}.running_var", modules[name].running_var.float()))
    # Eval mode with running statistics far from (0, 1), float32-exact.
    eval_stats = []
    for name in bn_names:
        bn = modules[name]
        mean = (0.2 * torch.randn(bn.num_features)).float()
        var = (0.5 + torch.rand(bn.num_features)).float()
        bn.running_mean.copy_(mean.double())
        bn.running_var.copy_(var.double())
        eval_stats += [(f"eval.{name}.running_mean", mean), (f"eval.{name}.running_var", var)]
    eval_results = run("eval")

    tensors = (weights + [("input", x), ("labels", labels)] + train_results + train_stats + eval_stats
               + eval_results)
    metadata = {"model": "resnet20", "in_channels": "3", "num_classes": "10",
                "reference": f"torch {torch.__version__}, float64", "seed": "20"}
    write_safetensors(path, dict(tensors), metadata)
    print(f"{path}: {len(tensors)} tensors; train loss {train_results[1][1].item():.6f}, "
          f"eval loss {eval_results[1][1].item():.6f}")


if __name__ == "__main__":
    main()
