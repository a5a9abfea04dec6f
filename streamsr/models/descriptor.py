"""ModelDescriptor: a loaded network plus what the engine needs to know about it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass
class ModelDescriptor:
    """A loaded SR network and its metadata.

    Calling it upscales: (N, C, H, W) float in [0, 1] -> (N, C, H*scale, W*scale), clamped to
    [0, 1], on the module's device. For batching, tiling and precision, use `streamsr.Upscaler`.
    """

    module: nn.Module
    name: str
    """Registered model name (e.g. ``safdn-x4``) or the weight file's path."""
    arch: str
    scale: int
    in_ch: int
    metadata: dict[str, str] = field(default_factory=dict)
    """The weight file's metadata (training record, measured quality)."""

    @classmethod
    def from_module(cls, module: nn.Module, *, name: str, arch: str, metadata: dict[str, str] | None = None) -> ModelDescriptor:
        hp = getattr(module, "hparams", {})
        return cls(module, name, arch, int(hp["scale"]), int(hp.get("in_ch", 3)), dict(metadata or {}))

    @property
    def hparams(self) -> dict[str, int | float]:
        return dict(getattr(self.module, "hparams", {}))

    @property
    def trained(self) -> bool:
        """True when the weights carry a training record (not a random initialisation)."""
        return "training" in self.metadata

    def quality(self) -> dict[str, dict[str, float]]:
        """Measured PSNR/SSIM per benchmark set, as recorded in the weight file (may be empty)."""
        raw = self.metadata.get("quality")
        return json.loads(raw) if raw else {}

    @torch.inference_mode()
    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"expected (N, {self.in_ch}, H, W), got {tuple(x.shape)}")
        return self.module(x).clamp_(0, 1)
