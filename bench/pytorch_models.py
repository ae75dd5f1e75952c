"""The kindling model zoo written in PyTorch, layer for layer, for the side-by-side benchmarks and
the reference fixtures: CIFAR ResNets with option-A shortcuts (He et al. 2016) and ResNet-18/34
with the 3x3 stem kindling uses for inputs of 32x32 and smaller."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ShortcutA(nn.Module):
    """Identity shortcut with zero-padded channels: x[:, :, ::2, ::2] plus zero channels."""

    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride, option_a):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option_a:
                self.shortcut = ShortcutA(planes)
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                              nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth, in_channels=3, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        planes, layers = 16, []
        for i, width in enumerate([16, 32, 64]):
            blocks = []
            for b in range(n):
                stride = 2 if (i > 0 and b == 0) else 1
                blocks.append(BasicBlock(planes, width, stride, option_a=True))
                planes = width
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


class ResNet(nn.Module):
    """ResNet-18/34 with basic blocks and the 3x3 stem without max-pool (inputs <= 32x32)."""

    def __init__(self, blocks, in_channels=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        planes, stages = 64, []
        for i, (width, count) in enumerate(zip([64, 128, 256, 512], blocks)):
            seq = []
            for b in range(count):
                stride = 2 if (i > 0 and b == 0) else 1
                seq.append(BasicBlock(planes, width, stride, option_a=False))
                planes = width
            stages.append(nn.Sequential(*seq))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def make_model(name, in_channels=3, num_classes=10):
    depths = {"resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56, "resnet110": 110}
    if name in depths:
        return CifarResNet(depths[name], in_channels, num_classes)
    if name == "resnet18":
        return ResNet([2, 2, 2, 2], in_channels, num_classes)
    if name == "resnet34":
        return ResNet([3, 4, 6, 3], in_channels, num_classes)
    raise SystemExit(f"pytorch_models: no PyTorch twin for {name}; have {sorted(depths) + ['resnet18', 'resnet34']}")
