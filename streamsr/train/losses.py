"""Training losses: plain modules."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import PIXEL_LOSSES, PixelLoss


class PixelFFTLoss(nn.Module):
    """A pixel loss (L1, or L2 = mean squared error) plus `fft_weight` times the L1 distance of the
    2-D FFTs (real and imaginary).

    L1 is the usual SR training loss (robust, sharper); L2 is exactly what PSNR measures, and some
    papers end with a low-rate L2 fine-tune (ours scored lower: docs/benchmarks.md). The frequency
    term pushes high-frequency detail that a pixel loss averages away.
    """

    def __init__(self, fft_weight: float = 0.0, pixel: PixelLoss = "l1") -> None:
        super().__init__()
        if pixel not in PIXEL_LOSSES:
            raise ValueError(f"pixel loss must be one of {', '.join(PIXEL_LOSSES)}, not {pixel!r}")
        self.fft_weight, self.pixel = fft_weight, pixel

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        diff = sr - hr
        loss = diff.abs().mean() if self.pixel == "l1" else diff.square().mean()
        if self.fft_weight > 0:
            spectral = torch.fft.rfft2(sr.float()) - torch.fft.rfft2(hr.float())
            loss = loss + self.fft_weight * torch.view_as_real(spectral).abs().mean()
        return loss
