"""Geometric self-ensemble: one SR model run on the eight flips and rotations of its input.

SR networks are not exactly equivariant to flips and 90° rotations, so their errors differ between
the eight orientations of an image; averaging the eight outputs (each turned back) cancels part of
them. This is the "+" of SR papers (EDSR+, RCAN+) and the TTA mode of image upscalers. It costs
eight model runs per frame and no training; on the shipped SAFDN weights it adds 0.1-0.15 dB
(weights/README.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def dihedral(x: Tensor, index: int) -> Tensor:
    """The `index`-th (0-7) of the eight flips/rotations of the last two dimensions; 0 is `x`."""
    turned = torch.rot90(x, index % 4, dims=(-2, -1))
    return turned.flip(-1) if index >= 4 else turned


def undo_dihedral(x: Tensor, index: int) -> Tensor:
    """The inverse of `dihedral(., index)`."""
    flipped = x.flip(-1) if index >= 4 else x
    return torch.rot90(flipped, -(index % 4), dims=(-2, -1))


class SelfEnsemble(nn.Module):
    """Wraps an SR module (NCHW -> NCHW) and returns the mean of its eight orientations.

    The result is exactly equivariant to flips and 90° rotations of the input. Outputs are summed in
    float32 (fp16 models included) and returned in the module's output dtype.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        # Keep the caller's memory layout: the Upscaler feeds channels_last, which CPU convolutions
        # run fastest in, and a rotated view of it is laid out otherwise.
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        first = self.module(x)
        total = first.float()
        for index in range(1, 8):
            turned = dihedral(x, index).contiguous(memory_format=layout)
            total += undo_dihedral(self.module(turned), index).float()
        return total.div_(8).to(first.dtype)
