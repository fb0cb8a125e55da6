"""Exports zerolabel's own SimCLR ResNet-18 backbone (CIFAR stem) to TorchScript, for comparing
`zerolabel features --torchscript` with the native `--checkpoint` path on the same weights.

    scripts/torch_cpu_python.sh bench/export_resnet18_torchscript.py \
        --checkpoint ../shared/data/cifar10-simclr/r18x05-ep15.safetensors --out /tmp/r18x05.pt

The network is torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2]) with the CIFAR stem (3x3
stride-1 first convolution, no max-pool), every stage's channels scaled by the checkpoint's
width, and no classification layer: images (N, 3, 32, 32) -> pooled features (N, D). Parameter
names are zerolabel's (which mirror torchvision's) without the `backbone.` prefix. The checkpoint
is read without the safetensors package (its header is JSON). Prints the normalisation to pass
as `--normalize MEAN,STD`.
"""
import argparse
import json
import struct

import torch
from torch import nn

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        header_len = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = bytearray(data[start:end])
        tensors[name] = torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).clone() if end > start else torch.zeros(info["shape"], dtype=DTYPES[info["dtype"]])
    return tensors


class BasicBlock(nn.Module):
    def __init__(self, c_in, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or c_in != planes:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + shortcut)


class CifarResNet18(nn.Module):
    def __init__(self, width, in_channels=3):
        super().__init__()
        channels = [max(4, round(c * width)) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        c_in = channels[0]
        for stage, planes in enumerate(channels):
            stride = 1 if stage == 0 else 2
            setattr(self, f"layer{stage + 1}", nn.Sequential(BasicBlock(c_in, planes, stride), BasicBlock(planes, planes, 1)))
            c_in = planes

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.layer4(self.layer3(self.layer2(self.layer1(y))))
        return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, 1), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a zerolabel pretrain checkpoint (.safetensors with its .json)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    meta = json.load(open(args.checkpoint[: -len(".safetensors")] + ".json"))
    backbone = meta["backbone"]
    assert backbone["depth"] == "resnet18" and backbone["stem"] == "cifar", backbone
    model = CifarResNet18(backbone["width"], backbone["in_channels"]).eval()
    tensors = read_safetensors(args.checkpoint)
    state = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
    state.update({k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")})
    model.load_state_dict(state, strict=True)
    size = meta["params"]["image_size"]
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.zeros(2, backbone["in_channels"], size, size))
    torch.jit.save(traced, args.out)
    norm = meta["normalization"]
    print(json.dumps({"torchscript": args.out, "image_size": size, "feat_dim": model(torch.zeros(1, 3, size, size)).shape[1],
                      "normalize": ",".join(str(v) for v in norm["mean"] + norm["std"])}))


if __name__ == "__main__":
    main()
