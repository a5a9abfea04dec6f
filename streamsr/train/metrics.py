"""PSNR and SSIM as the SR literature computes them (Y channel of BT.601, border cropped)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

BT601_Y = (65.481, 128.553, 24.966)
"""MATLAB ``rgb2ycbcr``'s Y weights for R, G, B in [0, 1] (Y in [16, 235], before rounding)."""


def rgb_to_y(img: Tensor) -> Tensor:
    """MATLAB ``rgb2ycbcr`` Y channel of a uint8 (3, H, W) image, as float64 in [16, 235].

    MATLAB returns uint8 for uint8 input, so Y is rounded; this is what makes bicubic x2 on
    Set5 come out at the published 33.66 dB (unrounded Y gives 33.68).
    """
    x = img.to(torch.float64) / 255.0
    r, g, b = BT601_Y
    return (16.0 + r * x[0] + g * x[1] + b * x[2]).round()


def _prepare(a: Tensor, b: Tensor, crop_border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if y_channel:
        a, b = rgb_to_y(a)[None], rgb_to_y(b)[None]
    else:
        a, b = a.to(torch.float64), b.to(torch.float64)
    if crop_border:
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def psnr(a: Tensor, b: Tensor, *, crop_border: int = 0, y_channel: bool = True) -> float:
    """PSNR in dB between two uint8 (3, H, W) images; inf when identical."""
    a, b = _prepare(a, b, crop_border, y_channel)
    mse = torch.mean((a - b) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def temporal_psnr(sr_before: Tensor, sr: Tensor, hr_before: Tensor, hr: Tensor, *, crop_border: int = 0) -> float:
    """tPSNR in dB: PSNR of the frame-to-frame change of the output (`sr` - `sr_before`) against
    that of the original (`hr` - `hr_before`), on the Y channel. Flicker, changes the original does
    not have, lowers it; a still output of a still original is inf."""
    a, b = _prepare(sr, hr, crop_border, True)
    a0, b0 = _prepare(sr_before, hr_before, crop_border, True)
    mse = torch.mean(((a - a0) - (b - b0)) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> Tensor:
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - size // 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: Tensor, g: Tensor) -> Tensor:
    """'valid' 2-D Gaussian filtering as two 1-D passes (the window is separable: 22 taps, not 121)."""
    x = F.conv2d(x, g.view(1, 1, -1, 1))
    return F.conv2d(x, g.view(1, 1, 1, -1))


def ssim(a: Tensor, b: Tensor, *, crop_border: int = 0, y_channel: bool = True) -> float:
    """SSIM (Wang et al. 2004; 11x11 Gaussian, sigma 1.5, 'valid' filtering) of uint8 images.

    Computed per channel and averaged when `y_channel` is False.
    """
    a, b = _prepare(a, b, crop_border, y_channel)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gaussian_1d()
    x, y = a[:, None], b[:, None]  # (C, 1, H, W): each channel filtered on its own
    mu_x, mu_y = _filter(x, g), _filter(y, g)
    sxx = _filter(x * x, g) - mu_x**2
    syy = _filter(y * y, g) - mu_y**2
    sxy = _filter(x * y, g) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean().item()
