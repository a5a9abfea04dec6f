"""Parameter and Multi-Add counts, measured by running the model on a meta-sized input."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Complexity:
    params: int
    multi_adds: int
    """Multiply-accumulates for one frame of the given output size."""
    out_width: int
    out_height: int

    def __str__(self) -> str:
        return (
            f"{self.params / 1e3:.0f}K params, {self.multi_adds / 1e9:.1f} G Multi-Adds "
            f"per {self.out_width}x{self.out_height} frame"
        )


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def measure_complexity(module: nn.Module, *, scale: int, out_width: int = 1280, out_height: int = 720) -> Complexity:
    """Params and Multi-Adds for an output of `out_width` x `out_height` (1280x720 by convention).

    Uses torch's FLOP counter (convs, matmuls); element-wise ops are not counted, as in the
    SR literature's tables. FLOPs / 2 = Multi-Adds.
    """
    in_ch = int(getattr(module, "hparams", {}).get("in_ch", 3))
    x: Tensor = torch.zeros(1, in_ch, out_height // scale, out_width // scale)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module.eval()(x)
    return Complexity(count_params(module), counter.get_total_flops() // 2, out_width, out_height)
