"""Writes the tiny TorchScript fixtures of tests/torchscript_features.rs (run once; the outputs are committed).

    scripts/torch_cpu_python.sh scripts/make_torchscript_fixture.py

Made with torch 2.13.0 (the PyPI wheel in .deps/python, on the CPU), seed 0:
  tests/fixtures/tiny_encoder.pt   traced TinyEncoder: (N, 3, H, W) -> (N, 5) features
  tests/fixtures/tiny_maps.pt      traced TinyMaps:    (N, 3, H, W) -> (N, 4, H, W) maps (not features)
  tests/fixtures/tiny_expected.json  the models' own outputs for 7 known 32x32 RGB images
    after the preprocessing `zerolabel features --torchscript --image-size 24 --normalize imagenet`
    promises: u8 / 255, bilinear resize 32 -> 24 (align_corners=False, no antialias), ImageNet
    mean/std. Image k's pixel (row y, column x, channel c) is (97 k + 13 x + 3 y^2 + 71 c + x y) mod 256.
"""
import json
import os

import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
IMAGE_SIZE = 24
COUNT = 7
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class TinyEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(h.mean(dim=(2, 3)))


class TinyMaps(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def images():
    """(COUNT, 32, 32, 3) uint8, the formula of the docstring (the Rust test writes the same)."""
    k, y, x, c = torch.meshgrid(torch.arange(COUNT), torch.arange(32), torch.arange(32), torch.arange(3), indexing="ij")
    return ((97 * k + 13 * x + 3 * y * y + 71 * c + x * y) % 256).to(torch.uint8)


def preprocess(pixels):
    x = pixels.permute(0, 3, 1, 2).float() / 255.0
    x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False, antialias=False)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def main():
    torch.manual_seed(0)
    encoder, maps = TinyEncoder().eval(), TinyMaps().eval()
    example = torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    traced_encoder = torch.jit.trace(encoder, example)
    traced_maps = torch.jit.trace(maps, example)
    torch.jit.save(traced_encoder, os.path.join(HERE, "tiny_encoder.pt"))
    torch.jit.save(traced_maps, os.path.join(HERE, "tiny_maps.pt"))
    x = preprocess(images())
    with torch.no_grad():
        features = encoder(x)
        pooled_maps = maps(x).mean(dim=(2, 3))
        assert torch.allclose(traced_encoder(x), features)
    expected = {
        "made_by": "scripts/make_torchscript_fixture.py",
        "torch_version": torch.__version__,
        "image_size": IMAGE_SIZE,
        "normalize": "imagenet",
        "pixel_formula": "(97 k + 13 x + 3 y^2 + 71 c + x y) mod 256, image k, row y, column x, channel c; 32x32x3",
        "encoder_outputs": features.tolist(),
        "maps_outputs_averaged_over_space": pooled_maps.tolist(),
    }
    with open(os.path.join(HERE, "tiny_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
