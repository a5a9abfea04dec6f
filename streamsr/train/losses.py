"""Training losses: plain modules."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import PIXEL_LOSSES, PixelLoss
from .metrics import BT601_Y


class PixelFFTLoss(nn.Module):
    """A pixel loss (L1, or L2 = mean squared error) plus `luma_weight` times the same loss on the
    BT.601 luma difference, plus `fft_weight` times the L1 distance of the 2-D FFTs (real and
    imaginary).

    L1 is the usual SR training loss (robust, sharper); L2 is exactly what PSNR measures, and some
    papers end with a low-rate L2 fine-tune (ours scored lower: docs/benchmarks.md). The luma term
    moves the network's effort towards the channel that carries the detail the eye sees (and the
    one the benchmarks score), away from chroma that video stores at quarter resolution anyway. The
    frequency term pushes high-frequency detail that a pixel loss averages away.
    """

    def __init__(self, fft_weight: float = 0.0, pixel: PixelLoss = "l1", luma_weight: float = 0.0) -> None:
        super().__init__()
        if pixel not in PIXEL_LOSSES:
            raise ValueError(f"pixel loss must be one of {', '.join(PIXEL_LOSSES)}, not {pixel!r}")
        self.fft_weight, self.pixel, self.luma_weight = fft_weight, pixel, luma_weight

    def _pixel(self, diff: Tensor) -> Tensor:
        return diff.abs().mean() if self.pixel == "l1" else diff.square().mean()

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        diff = sr - hr
        loss = self._pixel(diff)
        if self.luma_weight > 0:
            # The Y that `streamsr eval` scores, on the [0, 1] scale of the RGB loss.
            r, g, b = (w / 255 for w in BT601_Y)
            loss = loss + self.luma_weight * self._pixel(r * diff[:, 0] + g * diff[:, 1] + b * diff[:, 2])
        if self.fft_weight > 0:
            spectral = torch.fft.rfft2(sr.float()) - torch.fft.rfft2(hr.float())
            loss = loss + self.fft_weight * torch.view_as_real(spectral).abs().mean()
        return loss
