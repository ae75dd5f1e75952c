"""The PyTorch twin of `kindling train` on Fashion-MNIST: the same model (bench/pytorch_models.py),
initialisation, data pipeline, loss, optimizer and schedule, so the two accuracies can be compared
run against run. It reads the same Debian files (dataset-fashion-mnist) and writes one JSON object
per epoch with the keys of kindling's metrics.jsonl (epoch, lr, train_loss, train_accuracy,
test_loss, test_accuracy, test_nll, test_ece, images_per_s, seconds; accuracies as fractions).

  python3 bench/pytorch_train.py --epochs 20 --lr 0.1 --nesterov --weight-decay 5e-4 \
      --schedule onecycle --augment --threads 2 --out runs/torch-recipe.jsonl

What "the same" means here, decision by decision (as kindling does it):
- inputs: pixel / 255, normalised by the training set's mean 0.2860 and std 0.3530; with --augment a
  random 28x28 crop of the image zero-padded by --crop-padding pixels (default 4; zero pixel, before
  normalisation) and a horizontal flip with probability 1/2, drawn per sample per epoch;
- a fresh shuffle every epoch, the last smaller batch kept; the test set is evaluated after every
  epoch in evaluation mode (running BatchNorm statistics);
- init: Conv2d kaiming_normal_(fan_out, relu), BatchNorm weight 1 bias 0, Linear PyTorch's default;
- SGD with momentum, Nesterov, weight decay coupled to every parameter (BatchNorm included);
- onecycle: torch's OneCycleLR with cycle_momentum=False (kindling keeps momentum fixed), pct_start
  0.3, div_factor 25, final_div_factor 1e4, stepped per batch; cosine: per-batch cosine to 0.
Random numbers differ (PyTorch's generator is not kindling's), so single runs differ by seed noise.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_models import make_model  # noqa: E402

MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir, train):
    prefix = "train" if train else "t10k"
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def normalise(u8):
    return (u8.float() / 255.0 - MEAN) / STD


def augment(u8, padding, generator):
    """Per sample: a random crop of the zero-padded image and a flip with probability 1/2."""
    n, _, h, w = u8.shape
    padded = F.pad(u8, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h)[None, :])  # [n, h]
    cols = (dx[:, None] + torch.arange(w)[None, :])  # [n, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_n = torch.arange(n)[:, None, None]
    return padded[:, 0][idx_n, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def init_like_kindling(model):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def expected_calibration_error(confidence, correct, bins=15):
    """kindling's ECE (losses/metrics.h): confidence = max_j p_j, bin b = (b/n, (b+1)/n] (the first
    also takes 0), sum over bins of |sum correct - sum confidence| / count."""
    bin_of = (torch.ceil(confidence.double() * bins).long() - 1).clamp(0, bins - 1)
    gap = torch.zeros(bins, dtype=torch.float64)
    gap.index_add_(0, bin_of, correct.double() - confidence.double())
    return gap.abs().sum().item() / len(confidence)


def evaluate(model, images, labels, batch_size):
    """Mean cross entropy (= NLL), top-1 accuracy and 15-bin ECE on the given set."""
    model.eval()
    loss_sum, confidences, corrects = 0.0, [], []
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            x = normalise(images[start:start + batch_size])
            y = labels[start:start + batch_size]
            logits = model(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            confidence, predicted = F.softmax(logits, 1).max(1)
            confidences.append(confidence)
            corrects.append(predicted == y)
    confidence, correct = torch.cat(confidences), torch.cat(corrects)
    return (loss_sum / len(labels), correct.double().mean().item(),
            expected_calibration_error(confidence, correct))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", choices=["onecycle", "cosine"], default="onecycle")
    p.add_argument("--augment", action="store_true")
    p.add_argument("--crop-padding", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit-train", type=int, default=0)
    p.add_argument("--limit-test", type=int, default=0)
    p.add_argument("--out", help="also write the JSON lines to this file")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    generator = torch.Generator().manual_seed(a.seed)
    train_x, train_y = load(a.data_dir, True)
    test_x, test_y = load(a.data_dir, False)
    if a.limit_train:
        train_x, train_y = train_x[:a.limit_train], train_y[:a.limit_train]
    if a.limit_test:
        test_x, test_y = test_x[:a.limit_test], test_y[:a.limit_test]

    model = make_model(a.model, in_channels=1, num_classes=10)
    init_like_kindling(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum,
                                nesterov=a.nesterov, weight_decay=a.weight_decay)
    steps_per_epoch = math.ceil(len(train_y) / a.batch_size)
    total = a.epochs * steps_per_epoch
    if a.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=a.lr, total_steps=total,
                                                        pct_start=0.3, cycle_momentum=False)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    out = open(a.out, "w") if a.out else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{len(train_y)} train / {len(test_y)} test", file=sys.stderr)

    for epoch in range(a.epochs):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(len(train_y), generator=generator)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(order), a.batch_size):
            index = order[start:start + a.batch_size]
            u8 = train_x[index]
            if a.augment:
                u8 = augment(u8, a.crop_padding, generator)
            x, y = normalise(u8), train_y[index]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            lr = optimizer.param_groups[0]["lr"]  # the last batch's, as kindling reports it
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
        train_seconds = time.perf_counter() - started
        test_loss, test_accuracy, test_ece = evaluate(model, test_x, test_y, 1000)
        record = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / len(train_y),
                  "train_accuracy": correct / len(train_y), "test_loss": test_loss,
                  "test_accuracy": test_accuracy, "test_nll": test_loss, "test_ece": test_ece,
                  "images_per_s": len(train_y) / train_seconds,
                  "seconds": time.perf_counter() - started}
        line = json.dumps(record)
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()


if __name__ == "__main__":
    main()
