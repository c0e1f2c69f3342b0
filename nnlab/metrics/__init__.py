"""What torchmetrics lacks, as pure functions first and thin metric classes after: confusion
matrices (NumPy), per-image Dice/IoU and the segmentation loss (torch)."""
