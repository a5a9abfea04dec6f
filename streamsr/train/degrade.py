"""Degradations for training and evaluation. MATLAB-compatible bicubic `imresize` first of all.

Every published SR table makes LR images with MATLAB's ``imresize(hr, 1/s, 'bicubic')``
(antialiased, symmetric padding, a = -0.5) and rounds to uint8; PIL's and torch's bicubic
differ from it by tenths of a dB, so we build MATLAB's weight matrices ourselves.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=64)
def _resize_matrix(in_len: int, out_len: int, scale: float) -> Tensor:
    """Dense (out_len, in_len) float64 matrix applying MATLAB's bicubic along one axis."""
    width = 4.0
    antialias = scale < 1
    if antialias:
        width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    weights = scale * _cubic(dist * scale) if antialias else _cubic(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric padding at the borders, as MATLAB's imresize.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    m = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(m, (np.repeat(np.arange(out_len), taps), cols.ravel()), weights.ravel())
    return torch.from_numpy(m)


def imresize(img: Tensor, scale: float, *, out_hw: tuple[int, int] | None = None) -> Tensor:
    """MATLAB ``imresize(img, scale, 'bicubic')`` on a (..., H, W) tensor.

    A uint8 input gives a uint8 output rounded as MATLAB does; a float input gives float64.
    """
    h, w = img.shape[-2:]
    oh, ow = out_hw if out_hw is not None else (math.ceil(h * scale), math.ceil(w * scale))
    x = img.to(torch.float64)
    # MATLAB resizes the dimension with the smaller scale first; with equal scales, rows first.
    x = torch.einsum("oh,...hw->...ow", _resize_matrix(h, oh, scale), x)
    x = torch.einsum("pw,...hw->...hp", _resize_matrix(w, ow, scale), x)
    if img.dtype == torch.uint8:
        return x.round_().clamp_(0, 255).to(torch.uint8)
    return x


def modcrop(img: Tensor, scale: int) -> Tensor:
    """Crop (..., H, W) so that H and W are multiples of `scale` (top-left aligned)."""
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


def bicubic_lr(hr: Tensor, scale: int) -> Tensor:
    """The standard "BI" degradation: MATLAB bicubic downscale of a modcropped uint8 image."""
    return imresize(modcrop(hr, scale), 1 / scale)
