"""Loss and metrics of binary segmentation.

    BCE(y, p)  = -mean_i [ y_i log p_i + (1 - y_i) log(1 - p_i) ],   p = sigmoid(f(x))
    Dice(y, p) = 2 sum_i p_i y_i / (sum_i p_i + sum_i y_i)            (soft: p in [0, 1])
    loss       = BCE + lambda_dice * (1 - Dice)                       (per image, batch mean)
    IoU(A, B)  = |A & B| / |A | B|,   Dice(A, B) = 2 |A & B| / (|A| + |B|) = 2 IoU / (1 + IoU)

BCE is a per-pixel average, so on small polyps it is dominated by the easy background; the Dice
term is a per-image ratio, insensitive to how much background there is. IoU and Dice of the hard
(thresholded) masks come from torchmetrics, per image, then averaged over images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchmetrics
from torchmetrics.functional.segmentation import dice_score, mean_iou

SMOOTH = 1.0  # keeps the soft Dice of an empty mask and an empty prediction at 1, not 0/0


def soft_dice(p: torch.Tensor, y: torch.Tensor, smooth: float = SMOOTH) -> torch.Tensor:
    """Per-image soft Dice of probabilities p and targets y, both (B, 1, H, W) -> (B,)."""
    dims = tuple(range(1, p.ndim))
    inter = (p * y).sum(dims)
    return (2 * inter + smooth) / (p.sum(dims) + y.sum(dims) + smooth)


def dice_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (1 - soft_dice(torch.sigmoid(logits.float()), y.float())).mean()


def segmentation_losses(
    logits: torch.Tensor, y: torch.Tensor, lambda_dice: float = 1.0, lambda_bce: float = 1.0
) -> dict[str, torch.Tensor]:
    """{"loss": lambda_bce * BCE + lambda_dice * DiceLoss, "bce": BCE, "dice_loss": DiceLoss},
    p = sigmoid(logits); a term whose weight is 0 is not computed (nor logged)."""
    if not (lambda_dice or lambda_bce):
        raise ValueError("the BCE and Dice weights are both 0: nothing to train on")
    out, loss = {}, 0.0
    if lambda_bce:
        out["bce"] = F.binary_cross_entropy_with_logits(logits.float(), y.float())
        loss = lambda_bce * out["bce"]
    if lambda_dice:
        out["dice_loss"] = dice_loss(logits, y)
        loss = loss + lambda_dice * out["dice_loss"]
    return {"loss": loss, **out}


def segmentation_loss(
    logits: torch.Tensor, y: torch.Tensor, lambda_dice: float = 1.0
) -> torch.Tensor:
    """BCE(y, sigmoid(logits)) + lambda_dice * DiceLoss(y, sigmoid(logits))."""
    return segmentation_losses(logits, y, lambda_dice)["loss"]


def per_image_scores(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(IoU, Dice) per image of hard masks pred, target (B, 1, H, W) in {0, 1}, by torchmetrics.
    An image whose mask and prediction are both empty scores 1 (torchmetrics says NaN: 0/0)."""
    pred, target = pred.long(), target.long()
    iou = mean_iou(pred, target, num_classes=1, per_class=True)[:, 0]
    dice = dice_score(pred, target, num_classes=1, average="none")[:, 0]
    both_empty = (pred.flatten(1).sum(1) == 0) & (target.flatten(1).sum(1) == 0)
    return torch.where(both_empty, 1.0, iou), torch.where(both_empty, 1.0, dice)


class PerImageScore(torchmetrics.Metric):
    """The mean over images of the per-image IoU or Dice (not the pixel-pooled figure, which
    would let the large polyps outweigh the small ones). Accumulates across batches and DDP
    ranks."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, which: str, **kwargs):
        super().__init__(**kwargs)
        if which not in ("iou", "dice"):
            raise ValueError(which)
        self.which = which
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        iou, dice = per_image_scores(pred, target)
        values = iou if self.which == "iou" else dice
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()
