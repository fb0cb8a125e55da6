"""Largest absolute difference between the `features` tensors of two safetensors files (same shape)."""
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from export_resnet18_torchscript import read_safetensors  # noqa: E402

a, b = (read_safetensors(p)["features"] for p in sys.argv[1:3])
assert a.shape == b.shape, (a.shape, b.shape)
print(f"{sys.argv[2]}: {tuple(a.shape)}, largest |difference| {(a - b).abs().max().item():.2e}")
