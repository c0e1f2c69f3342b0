"""Facts of segmentation: the loss (BCE + Dice) and the metrics (IoU, Dice)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nnlab.facts import fact
from nnlab.metrics.segmentation import per_image_scores, soft_dice


def _masks(n: int = 64, size: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random blob-ish masks and noisy predictions of them, (n, 1, size, size) in {0, 1}."""
    g = torch.Generator().manual_seed(seed)
    base = F.avg_pool2d(torch.rand(n, 1, size, size, generator=g), 5, 1, 2)
    target = (base > base.flatten(1).quantile(0.7, dim=1).view(n, 1, 1, 1)).long()
    flip = torch.rand(n, 1, size, size, generator=g) < torch.rand(n, 1, 1, 1, generator=g) * 0.4
    return torch.where(flip, 1 - target, target), target


@fact(
    "dice-iou-relation",
    "Dice = 2 IoU / (1 + IoU) for every pair of masks: the two rank predictions "
    "identically, Dice >= IoU",
    topic="segmentation",
    tol=1e-6,
)
def dice_iou_relation() -> float:
    """Max abs difference, over 64 random mask pairs, between torchmetrics' per-image Dice and
    2 IoU / (1 + IoU) of torchmetrics' per-image IoU."""
    pred, target = _masks()
    iou, dice = per_image_scores(pred, target)
    return float((dice - 2 * iou / (1 + iou)).abs().max())


@fact(
    "soft-dice-on-hard-masks",
    "soft Dice 2 sum(p y) / (sum p + sum y) of a 0/1 prediction is the Dice "
    "of the masks: the loss's Dice term is the metric, relaxed to probabilities",
    topic="segmentation",
    tol=1e-6,
)
def soft_dice_on_hard_masks() -> float:
    """Max abs difference between our soft_dice (smoothing 0) on hard predictions and the
    per-image Dice of torchmetrics."""
    pred, target = _masks(seed=1)
    ours = soft_dice(pred.double(), target.double(), smooth=0.0)
    _, dice = per_image_scores(pred, target)
    return float((ours - dice.double()).abs().max())


@fact(
    "soft-dice-gradient",
    "d SoftDice / d p_i = 2 y_i / S - 2 I / S^2, with I = sum p y, S = sum p + sum y",
    topic="segmentation",
    tol=1e-12,
)
def soft_dice_gradient() -> float:
    """Max abs difference between autograd's gradient of soft Dice (smoothing 0) with respect to
    the probabilities and the quotient-rule formula, in float64."""
    g = torch.Generator().manual_seed(2)
    p = torch.rand(4, 1, 16, 16, dtype=torch.float64, generator=g, requires_grad=True)
    y = (torch.rand(4, 1, 16, 16, generator=g) < 0.3).double()
    soft_dice(p, y, smooth=0.0).sum().backward()
    inter = (p * y).sum((1, 2, 3), keepdim=True)
    total = p.sum((1, 2, 3), keepdim=True) + y.sum((1, 2, 3), keepdim=True)
    formula = 2 * y / total - 2 * inter / total**2
    return float((p.grad - formula).abs().max().detach())


@fact(
    "bce-logit-gradient",
    "d/dz BCE(y, sigmoid(z)) = sigmoid(z) - y: like softmax + cross-entropy, "
    "the combined gradient is prediction minus target",
    topic="segmentation",
    tol=1e-12,
)
def bce_logit_gradient() -> float:
    """Max abs difference between autograd's gradient of the mean BCE-with-logits and
    (sigmoid(z) - y) / n, and between BCE-with-logits and the written-out formula
    -[y log s + (1 - y) log(1 - s)] (float64, |z| <= 8 so the naive log is exact enough)."""
    g = torch.Generator().manual_seed(3)
    z = (torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=g) * 16 - 8).requires_grad_()
    y = (torch.rand(2, 1, 8, 8, generator=g) < 0.5).double()
    loss = F.binary_cross_entropy_with_logits(z, y)
    loss.backward()
    s = torch.sigmoid(z.detach())
    written = -(y * torch.log(s) + (1 - y) * torch.log(1 - s)).mean()
    return float(max((z.grad - (s - y) / z.numel()).abs().max(), (loss.detach() - written).abs()))
