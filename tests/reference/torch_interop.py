"""Both directions between kindling and its PyTorch twin (bench/pytorch_models.py), for
tests/test_interop.cpp; needs torch (Debian python3-torch).
  torch_interop.py check CHECKPOINT INPUTS
      loads a kindling checkpoint into the twin, runs INPUTS' "images" in eval mode, and compares
      with INPUTS' "logits" (kindling's) and accuracy on "labels": exit 1 beyond 1e-4.
  torch_interop.py make MODEL STATE_OUT LOGITS_OUT INPUTS
      writes a seeded twin's state_dict (random BatchNorm statistics) as safetensors, and its eval
      logits on INPUTS' "images" as LOGITS_OUT's "logits"."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import torch  # noqa: E402

from pytorch_models import from_kindling, make_model, read_safetensors, write_safetensors  # noqa: E402

TOLERANCE = 1e-4


def check(checkpoint, inputs_path):
    inputs, _ = read_safetensors(inputs_path)
    model = from_kindling(checkpoint)
    with torch.no_grad():
        logits = model(inputs["images"])
    diff = (logits - inputs["logits"]).abs().max().item()
    torch_accuracy = (logits.argmax(1) == inputs["labels"]).float().mean().item()
    kindling_accuracy = (inputs["logits"].argmax(1) == inputs["labels"]).float().mean().item()
    print(f"max |logit difference| {diff:.3g}; accuracy PyTorch {torch_accuracy:.4f}, "
          f"kindling {kindling_accuracy:.4f}")
    return 0 if diff <= TOLERANCE and torch_accuracy == kindling_accuracy else 1


def make(name, state_out, logits_out, inputs_path):
    inputs, _ = read_safetensors(inputs_path)
    torch.manual_seed(0)
    model = make_model(name, inputs["images"].shape[1], 10)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):   # trained-looking statistics, not 0 and 1
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    with torch.no_grad():
        logits = model(inputs["images"])
    write_safetensors(state_out, model.state_dict())
    write_safetensors(logits_out, {"logits": logits})
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    if len(sys.argv) == 6 and sys.argv[1] == "make":
        sys.exit(make(*sys.argv[2:]))
    sys.exit(__doc__)
