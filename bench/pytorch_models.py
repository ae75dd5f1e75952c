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
        # torchvision's and kindling's name for the projection shortcut, so checkpoints load.
        self.downsample = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option_a:
                self.downsample = ShortcutA(planes)
            else:
                self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.downsample(x))


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
    have = sorted(depths) + ["resnet18", "resnet34"]
    raise SystemExit(f"pytorch_models: no PyTorch twin for {name}; have {have}")


# ---- models that travel: safetensors files between kindling and PyTorch ----
# kindling's checkpoints hold the model's state_dict under PyTorch's names (plus "optimizer.*"
# tensors and "__metadata__"), so the twin loads them with load_state_dict(strict=True).
_DTYPES = {"F32": torch.float32, "I64": torch.int64, "U8": torch.uint8}


def read_safetensors(path):
    """{name: tensor} and the metadata of a safetensors file."""
    import json
    import struct
    with open(path, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])
    metadata = header.pop("__metadata__", {})
    data = blob[8 + length:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=_DTYPES[entry["dtype"]])
        tensors[name] = flat.reshape(entry["shape"]).clone()
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} (f32, i64 or u8) as safetensors, as kindling reads it."""
    import json
    import struct
    names = {v: k for k, v in _DTYPES.items()}
    header, chunks, offset = {}, [], 0
    for name, tensor in tensors.items():
        raw = tensor.detach().cpu().contiguous().numpy().tobytes()
        header[name] = {"dtype": names[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def from_kindling(path):
    """The PyTorch twin of a kindling checkpoint, with its weights, in eval mode."""
    import json
    tensors, metadata = read_safetensors(path)
    config = json.loads(metadata.get("model_config", "{}"))
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    if "model" not in metadata or "num_classes" not in config:
        raise SystemExit(f"{path}: not a kindling checkpoint (no model or model_config metadata)")
    model = make_model(metadata["model"], config["in_channels"], config["num_classes"])
    model.load_state_dict(state, strict=True)
    return model.eval()
