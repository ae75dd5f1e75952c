"""Checks an ONNX model written by `kindling export --onnx` (tests/test_export.cpp):
  onnx_check.py MODEL.onnx [INPUTS.safetensors]
runs the ONNX checker (Debian python3-onnx) and, with INPUTS ("images", "logits": kindling's), runs
the model on the images and compares within 1e-4: with onnxruntime where it is importable, else
with a small interpreter of the exported operators on torch.nn.functional (Debian python3-torch).
Prints which runner it used; exit 1 on any difference, 3 when no runner is available."""
import json
import struct
import sys

import numpy

import onnx
from onnx import numpy_helper

TOLERANCE = 1e-4


def read_f32_safetensors(path):
    """The F32 tensors of a safetensors file as numpy arrays."""
    with open(path, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack("<Q", blob[:8])
    header, data = json.loads(blob[8:8 + length]), blob[8 + length:]
    arrays = {}
    for name, e in header.items():
        if name != "__metadata__" and e["dtype"] == "F32":
            begin, end = e["data_offsets"]
            arrays[name] = numpy.frombuffer(data[begin:end], dtype="<f4").reshape(e["shape"])
    return arrays


def run_onnxruntime(path, images):
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": images})[0]


def run_torch(model, images):
    """Interprets the operators kindling exports, following the ONNX operator specs (opset 13)."""
    import torch
    import torch.nn.functional as F
    values = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    values["input"] = torch.from_numpy(images.copy())
    for node in model.graph.node:
        a = {attr.name: onnx.helper.get_attribute_value(attr) for attr in node.attribute}
        x = [values[name] for name in node.input]
        op = node.op_type
        if op == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:], "asymmetric pads"
            bias = x[2] if len(x) > 2 else None
            y = F.conv2d(x[0], x[1], bias, a["strides"], pads[:2], a["dilations"], a["group"])
        elif op == "BatchNormalization":
            y = F.batch_norm(x[0], x[3], x[4], x[1], x[2], False, 0.0, a["epsilon"])
        elif op == "Relu":
            y = F.relu(x[0])
        elif op == "Add":
            y = x[0] + x[1]
        elif op in ("MaxPool", "AveragePool"):
            pads = a["pads"]
            assert pads[:2] == pads[2:], "asymmetric pads"
            if op == "MaxPool":
                y = F.max_pool2d(x[0], a["kernel_shape"], a["strides"], pads[:2])
            else:
                y = F.avg_pool2d(x[0], a["kernel_shape"], a["strides"], pads[:2],
                                 count_include_pad=bool(a.get("count_include_pad", 0)))
        elif op == "GlobalAveragePool":
            y = x[0].mean(dim=(2, 3), keepdim=True)
        elif op == "Flatten":
            y = x[0].flatten(a.get("axis", 1))
        elif op == "Gemm":
            assert a.get("transB", 0) == 1 and a.get("transA", 0) == 0
            y = F.linear(x[0], x[1], x[2] if len(x) > 2 else None)
        elif op == "Slice":
            starts, ends, axes, steps = (v.tolist() for v in x[1:5])
            index = [slice(None)] * x[0].dim()
            for s, e, axis, step in zip(starts, ends, axes, steps):
                index[axis] = slice(s, min(e, x[0].shape[axis]), step)
            y = x[0][tuple(index)]
        elif op == "Pad":
            pads = x[1].tolist()   # [begin of each axis..., end of each axis...]
            rank = len(pads) // 2
            torch_pads = []
            for axis in reversed(range(rank)):
                torch_pads += [pads[axis], pads[axis + rank]]
            y = F.pad(x[0], torch_pads)
        else:
            raise SystemExit(f"onnx_check: no interpreter for {op}")
        values[node.output[0]] = y
    return values["logits"].numpy()


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    model = onnx.load(sys.argv[1])
    onnx.checker.check_model(model)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    print(f"ONNX checker: OK (opset {opset})")
    if opset < 13:
        return 1
    if len(sys.argv) == 2:
        return 0
    inputs = read_f32_safetensors(sys.argv[2])
    images, expected = inputs["images"], inputs["logits"]
    try:
        logits, runner = run_onnxruntime(sys.argv[1], images), "onnxruntime"
    except ImportError:
        try:
            logits, runner = run_torch(model, images), "torch interpreter"
        except ImportError:
            print("neither onnxruntime nor torch is importable: logits not compared")
            return 3
    diff = float(abs(logits - expected).max())
    print(f"{runner}: max |logit difference| against kindling {diff:.3g}")
    return 0 if diff <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
