#!/usr/bin/env bash
# README command (1): installs what is missing, builds, and trains ResNet-20 on the real
# Fashion-MNIST (Debian package dataset-fashion-mnist) on the CPU, printing the final test accuracy.
# About 10 minutes on a 2-core machine. Extra arguments are passed to `kindling train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
exec ./build/apps/kindling train --data fashion-mnist --model resnet20 --loss ce \
  --epochs 3 --batch-size 128 --optimizer sgd --lr 0.1 --momentum 0.9 --nesterov \
  --weight-decay 5e-4 --schedule onecycle --seed 0 --out runs/fashion-mnist-resnet20 "$@"
