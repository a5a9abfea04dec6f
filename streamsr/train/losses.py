"""Training losses: plain modules."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class L1FFTLoss(nn.Module):
    """Pixel L1 plus `fft_weight` times the L1 distance of the 2-D FFTs (real and imaginary).

    The frequency term pushes high-frequency detail that plain L1 averages away.
    """

    def __init__(self, fft_weight: float = 0.0) -> None:
        super().__init__()
        self.fft_weight = fft_weight

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        loss = (sr - hr).abs().mean()
        if self.fft_weight > 0:
            diff = torch.fft.rfft2(sr.float()) - torch.fft.rfft2(hr.float())
            loss = loss + self.fft_weight * torch.view_as_real(diff).abs().mean()
        return loss
