"""Training throughput of our ViT vs a ViT of the same size built on PyTorch's nn.TransformerEncoder
(fused attention), measured side by side in one run: images per second of forward + backward +
AdamW step on MNIST-sized inputs, CPU (or CUDA when present); steps of the two models
interleaved, median of --repeats (min-max beside it).

    python bench/vit_throughput.py [--patch 7] [--batch 128] [--repeats 9]
"""

from __future__ import annotations

import argparse

import torch
from timing import header, interleaved, median
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


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if x.is_cuda:
            torch.cuda.synchronize()

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patch", default="7", help="7 or HxW, e.g. 1x28")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=9)
    args = p.parse_args()
    parts = [int(v) for v in args.patch.split("x")]
    patch = (parts[0], parts[0]) if len(parts) == 1 else tuple(parts)
    device = resolve_device("auto")
    torch.manual_seed(0)
    ours = build_model("vit", model_config("vit", patch=patch)).to(device)
    ref = ReferenceViT(patch).to(device)
    x = torch.randn(args.batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    header(
        f"ViT training step (forward + backward + AdamW), device {device}, patch {patch}, "
        f"batch {args.batch}, median of {args.repeats} interleaved repeats"
    )
    print(f"parameters: ours {count_parameters(ours):,}, reference {count_parameters(ref):,}")
    t = interleaved(
        {"ours": train_step(ours, x, y), "reference": train_step(ref, x, y)}, args.repeats, 0.2
    )
    rate = {k: [args.batch / s for s in v] for k, v in t.items()}
    print("\n| | images / s, median (min-max) |\n| --- | --- |")
    for label, k in (
        ("ours (SDPA on the training path)", "ours"),
        ("nn.TransformerEncoder (fused attention, pre-norm)", "reference"),
    ):
        print(f"| {label} | {median(rate[k]):.0f} ({min(rate[k]):.0f}-{max(rate[k]):.0f}) |")
    r = median(rate["ours"]) / median(rate["reference"])
    print(f"\nratio ours / reference (medians): {r:.2f}")


if __name__ == "__main__":
    main()
