"""Image augmentation for whole batches, without a Python loop over images.

`random_affine` draws, per image, a rotation, scale, shear and shift, and resamples all images in
one `scipy.ndimage.map_coordinates` call (bilinear; outside the frame = 0 = background)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def random_affine(
    images: np.ndarray,
    rng: np.random.Generator,
    rotate: float = 10.0,
    scale: float = 0.1,
    shear: float = 0.1,
    shift: float = 2.0,
) -> np.ndarray:
    """images: (N, C, H, W) -> (N, C, H, W). rotate in degrees, scale and shear as fractions,
    shift in pixels; each drawn uniformly in [-v, v] (scale: [1 - v, 1 + v])."""
    N, C, H, W = images.shape
    a = np.deg2rad(rng.uniform(-rotate, rotate, N))
    s = rng.uniform(1 - scale, 1 + scale, N)
    k = rng.uniform(-shear, shear, N)
    t = rng.uniform(-shift, shift, (N, 2))
    # output pixel p samples the input at A (p - centre) + centre + t, A = R(a) [[1, k], [0, 1]] / s
    cos, sin = np.cos(a) / s, np.sin(a) / s
    A = np.stack(
        [np.stack([cos, cos * k - sin], -1), np.stack([sin, sin * k + cos], -1)], -2
    )  # (N, 2, 2)
    centre = np.array([(H - 1) / 2, (W - 1) / 2])
    yy, xx = np.meshgrid(np.arange(H) - centre[0], np.arange(W) - centre[1], indexing="ij")
    grid = np.stack([yy, xx])  # (2, H, W)
    src = np.einsum("nij,jhw->nihw", A, grid) + (centre + t)[:, :, None, None]  # (N, 2, H, W)
    coords = np.empty((4, N, C, H, W))
    coords[0] = np.arange(N)[:, None, None, None]
    coords[1] = np.arange(C)[None, :, None, None]
    coords[2] = src[:, None, 0]
    coords[3] = src[:, None, 1]
    out = ndimage.map_coordinates(images, coords, order=1, mode="constant", cval=0.0)
    return out.astype(images.dtype, copy=False)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over H and W of (N, C, H, W) images; sigma = 0 returns the input."""
    if sigma <= 0:
        return images
    return ndimage.gaussian_filter(images, (0, 0, sigma, sigma)).astype(images.dtype, copy=False)


def random_affine_torch(
    x, rotate: float = 10.0, scale: float = 0.1, shear: float = 0.1, shift: float = 2.0
):
    """The same random affine augmentation for a torch batch (B, C, H, W), on its device, drawn
    from torch's global generator (which the training loop seeds per epoch)."""
    import torch
    import torch.nn.functional as F

    B, C, H, W = x.shape
    dev = x.device

    def u(v):
        return (torch.rand(B, device=dev) * 2 - 1) * v

    a = torch.deg2rad(u(rotate))
    s = 1 + u(scale)
    k = u(shear)
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    theta = torch.zeros(B, 2, 3, device=dev)
    # affine_grid works in normalised coordinates ([-1, 1] across the image); x before y
    theta[:, 0, 0], theta[:, 0, 1] = cos, cos * k - sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, sin * k + cos
    theta[:, 0, 2] = u(shift) * 2 / W
    theta[:, 1, 2] = u(shift) * 2 / H
    grid = F.affine_grid(theta, (B, C, H, W), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment_pair_torch(
    x, m, rotate: float = 15.0, scale: float = 0.1, flip: bool = True, jitter: float = 0.2
):
    """Light augmentation of an image batch x (B, 3, H, W) float in [0, 1] and its masks m
    (B, 1, H, W): the *same* random flips, rotation (+-`rotate` degrees) and scale (1 +- `scale`)
    for image and mask -- bilinear for the image, nearest for the mask, so the mask stays binary --
    then colour jitter of the image alone (brightness, contrast, saturation by 1 +- `jitter`).
    Drawn from torch's global generator, which the training loop seeds per epoch."""
    import torch
    import torch.nn.functional as F

    B, _, H, W = x.shape
    dev = x.device

    def u(v):
        return (torch.rand(B, device=dev) * 2 - 1) * v

    a = torch.deg2rad(u(rotate))
    s = 1 + u(scale)
    fx = (
        torch.where(torch.rand(B, device=dev) < 0.5, -1.0, 1.0)
        if flip
        else torch.ones(B, device=dev)
    )
    fy = (
        torch.where(torch.rand(B, device=dev) < 0.5, -1.0, 1.0)
        if flip
        else torch.ones(B, device=dev)
    )
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    theta = torch.zeros(B, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 1] = cos * fx, -sin * fy  # rotate after flipping: R diag(fx, fy)
    theta[:, 1, 0], theta[:, 1, 1] = sin * fx, cos * fy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    m = F.grid_sample(m, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if jitter > 0:
        shape = (B, 1, 1, 1)
        x = x * (1 + u(jitter).view(shape))  # brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (1 + u(jitter).view(shape)) + mean  # contrast
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * (1 + u(jitter).view(shape)) + grey  # saturation
        x = x.clamp(0, 1)
    return x, m
