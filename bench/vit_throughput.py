"""Training throughput of our ViT vs a ViT of the same size built on PyTorch's nn.TransformerEncoder
(fused attention), measured side by side in one run: images per second of forward + backward +
AdamW step on MNIST-sized inputs, CPU (or CUDA when present).

    python bench/vit_throughput.py [--patch 7] [--batch 128] [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from torch import nn

from nnlab.models import build_model, count_parameters, model_config
from nnlab.train import resolve_device


class ReferenceViT(nn.Module):
    """Same sizes, PyTorch's own encoder: pre-norm, GELU, batch_first, fused attention."""

    def __init__(self, patch, dim=64, depth=6, heads=4, mlp_ratio=2.0, classes=10, size=(28, 28)):
        super().__init__()
        n = (size[0] // patch[0]) * (size[1] // patch[1])
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, n + 1, dim))
        layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            int(dim * mlp_ratio),
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        z = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        z = torch.cat([self.cls.expand(len(z), -1, -1), z], 1) + self.pos
        return self.head(self.norm(self.encoder(z)[:, 0]))


def throughput(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for i in range(steps + 5):
        if i == 5:  # warm-up done
            if x.is_cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return steps * len(x) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patch", default="7", help="7 or HxW, e.g. 1x28")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    parts = [int(v) for v in args.patch.split("x")]
    patch = (parts[0], parts[0]) if len(parts) == 1 else tuple(parts)
    device = resolve_device("auto")
    torch.manual_seed(0)
    ours = build_model("vit", model_config("vit", patch=patch)).to(device)
    ref = ReferenceViT(patch).to(device)
    x = torch.randn(args.batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {device}; patch {patch}, batch {args.batch}"
    )
    print(f"parameters: ours {count_parameters(ours):,}, reference {count_parameters(ref):,}")
    a, b = [], []
    for _ in range(args.rounds):  # interleaved, so drifts in machine load hit both
        a.append(throughput(ours, x, y, args.steps))
        b.append(throughput(ref, x, y, args.steps))
    print(
        f"ours (SDPA on the training path): best {max(a):.0f} img/s, "
        f"all {', '.join(f'{v:.0f}' for v in a)}"
    )
    print(
        f"nn.TransformerEncoder           : best {max(b):.0f} img/s, "
        f"all {', '.join(f'{v:.0f}' for v in b)}"
    )
    print(f"ratio ours / reference: {max(a) / max(b):.2f}")


if __name__ == "__main__":
    main()
