"""SimCLR training throughput in PyTorch eager, for comparison with `zerolabel pretrain`.

Same model (ResNet-18 with the CIFAR stem and a width multiplier, projection head
D -> 512 -> BN -> ReLU -> 128), batch, loss (NT-Xent, temperature 0.5), optimiser (Adam lr 1e-3,
weight decay 1e-6) and augmentations (torchvision v2: RandomResizedCrop(32), horizontal flip,
ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8, grayscale p 0.2) on CIFAR-10 from ../shared/data, with a
DataLoader computing the augmentations in worker processes. With --precision bf16 the forward pass runs under torch.autocast (bfloat16).
Reports images/s end to end
(loading and augmentation included) over --steps steps after --warmup steps, and the
augmentation pipeline alone.
"""
import argparse, json, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from torchvision.transforms import v2

p = argparse.ArgumentParser()
p.add_argument("--data", default="../shared/data/cifar10")
p.add_argument("--width", type=float, default=1.0)
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--workers", type=int, default=1)
p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
               help="bf16: torch.autocast(device, bfloat16), PyTorch's own mixed precision")
p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

raw = np.fromfile(f"{args.data}/data_batch_1.bin", dtype=np.uint8).reshape(-1, 3073)
images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy())

augment = v2.Compose([
    v2.RandomResizedCrop(32, antialias=True), v2.RandomHorizontalFlip(),
    v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), v2.RandomGrayscale(p=0.2),
    v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.49, 0.48, 0.45], [0.25, 0.24, 0.26]),
])

class Pairs(torch.utils.data.Dataset):
    def __len__(self): return len(images)
    def __getitem__(self, i): return augment(images[i]), augment(images[i])

def block(cin, cout, stride):
    class Basic(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
            self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.down = None if stride == 1 and cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        def forward(self, x):
            y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
            return F.relu(y + (x if self.down is None else self.down(x)))
    return Basic()

ch = [max(4, round(c * args.width)) for c in (64, 128, 256, 512)]
layers = [nn.Conv2d(3, ch[0], 3, 1, 1, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU()]
cin = ch[0]
for s, c in enumerate(ch):
    for b in range(2):
        layers.append(block(cin, c, 2 if (b == 0 and s > 0) else 1)); cin = c
layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
model = nn.Sequential(*layers, nn.Linear(cin, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 128)).to(args.device)
opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)

def nt_xent(z1, z2, t=0.5):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.t() / t
    logits.fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(logits, targets)

loader = torch.utils.data.DataLoader(Pairs(), batch_size=args.batch_size, shuffle=True, drop_last=True,
                                     num_workers=args.workers, persistent_workers=args.workers > 0)
def batches():  # as many epochs as the steps need
    while True:
        yield from loader
it = batches()
for step in range(args.warmup + args.steps):
    if step == args.warmup:
        start = time.perf_counter()
    x1, x2 = next(it)
    with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
        z = model(torch.cat([x1, x2]).to(args.device, non_blocking=True))
    loss = nt_xent(z[: len(x1)].float(), z[len(x1):].float())
    opt.zero_grad(); loss.backward(); opt.step()
    loss.item()  # as zerolabel reads each step's loss
train_seconds = time.perf_counter() - start

start = time.perf_counter()
n_aug = 2000
for i in range(n_aug):
    augment(images[i])
aug_seconds = time.perf_counter() - start
print(json.dumps({
    "implementation": "PyTorch eager + torchvision v2", "torch": torch.__version__, "device": args.device, "width": args.width,
    "batch_size": args.batch_size, "precision": args.precision, "threads": args.threads, "workers": args.workers, "steps": args.steps,
    "train_images_per_s": args.steps * args.batch_size / train_seconds,
    "augment_images_per_s_one_process": n_aug / aug_seconds,
}))
