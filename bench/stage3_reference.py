"""Stage III done the way the review-time code does it, in PyTorch eager, for timing.

Per step: B = 500 features -> logits; B prior samples drawn with replacement from a pool of
40,000 (tail-permuted t^ vectors, ordinal prior for c = 10); the dense B x B weighted cost
(eq. 3); log-domain Sinkhorn unrolled up to 700 iterations, stopping when the summed absolute
change of both dual vectors falls below 0.1, backpropagated through; L_cgsk (eq. 5); SGD
(momentum 0.9, weight decay 5e-4, lr 1e-5) with gradient-norm clipping at 100.

Same data as examples/bench_stage3.rs (N = 50,000 synthetic L2-normalised features, D = 512,
c = 10, clusters as A). Timed over --steps steps after --warmup steps; the 10K-step time is
extrapolated from them.
"""
import argparse, itertools, json, math, time
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=200)
p.add_argument("--warmup", type=int, default=10)
p.add_argument("--threads", type=int, default=2)
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

N, D, c, B, eps = 50_000, 512, 10, 500, 0.01
means = F.normalize(torch.randn(c, D), dim=1)
labels = torch.arange(N) % c
X = F.normalize(means[labels] + 0.05 * torch.randn(N, D), dim=1)
A = F.one_hot(labels, c).float()

# Ordinal prior, paper's values: t = 1, .5, .2, then down to -.5; w per eq. 2.
values = [1.0, 0.5, 0.2] + [0.2 - 0.7 * (p - 2) / (c - 3) for p in range(3, c)]
norm = math.sqrt(sum(v * v for v in values))
weights = [math.exp(-p) if p < c // 2 else math.exp(-(c - p)) for p in range(c)]
atoms_t, atoms_w = [], []
for i in range(c):
    rank = sorted(range(c), key=lambda j: (abs(i - j), j))
    for perm in itertools.permutations(range(3)):
        order = list(range(c - 3)) + [c - 3 + q for q in perm]
        t, w = [0.0] * c, [0.0] * c
        for pos in range(c):
            t[rank[pos]] = values[order[pos]] / norm
            w[rank[pos]] = weights[order[pos]]
        atoms_t.append(t)
        atoms_w.append(w)
atoms_t, atoms_w = torch.tensor(atoms_t), torch.tensor(atoms_w)
pool = torch.randint(len(atoms_t), (40_000,))

fc = torch.nn.Linear(D, c)
with torch.no_grad():
    fc.weight.copy_(means)
    fc.bias.zero_()
opt = torch.optim.SGD(fc.parameters(), lr=1e-5, momentum=0.9, weight_decay=5e-4)


def sinkhorn(C, max_iter=700, thresh=0.1):
    mu = torch.full((C.shape[0],), 1.0 / C.shape[0])
    nu = torch.full((C.shape[1],), 1.0 / C.shape[1])
    u, v = torch.zeros_like(mu), torch.zeros_like(nu)
    M = lambda u, v: (-C + u[:, None] + v[None, :]) / eps
    for it in range(max_iter):
        u1, v1 = u, v
        u = eps * (torch.log(mu) - torch.logsumexp(M(u, v), dim=1)) + u
        v = eps * (torch.log(nu) - torch.logsumexp(M(u, v).t(), dim=1)) + v
        err = (u - u1).abs().sum() + (v - v1).abs().sum()
        if err.item() < thresh:
            break
    return torch.exp(M(u, v)), it + 1


iters = []
for step in range(args.warmup + args.steps):
    if step == args.warmup:
        start = time.perf_counter()
    idx = torch.randperm(N)[:B]
    S_C = fc(X[idx])
    j = pool[torch.randint(len(pool), (B,))]
    S_P, W = atoms_t[j], atoms_w[j]
    C = (W[None, :, :] * (S_C[:, None, :] - S_P[None, :, :]) ** 2).sum(-1)
    R, it = sinkhorn(C)
    A_B = A[idx]
    loss = ((A_B @ A_B.t() @ R) * C).sum()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(fc.parameters(), 100.0)
    opt.step()
    if step >= args.warmup:
        iters.append(it)
seconds = time.perf_counter() - start
print(json.dumps({
    "implementation": "PyTorch eager, review-code style (dense B x B, unrolled Sinkhorn)",
    "torch": torch.__version__, "threads": args.threads, "steps_timed": args.steps,
    "seconds": seconds, "ms_per_step": 1000 * seconds / args.steps,
    "seconds_for_10k_steps_extrapolated": seconds * 10_000 / args.steps,
    "mean_sinkhorn_iterations": sum(iters) / len(iters),
}))
