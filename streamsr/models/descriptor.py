"""ModelDescriptor: a loaded network plus the contract for calling it."""

from __future__ import annotations

import copy
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class SizeRequirements:
    """What input sizes a network accepts; the Upscaler pads to them and crops the output back."""

    minimum: int = 0
    """Smallest height and width, in input pixels."""
    multiple_of: int = 1
    """Height and width must be multiples of this (window or downsampling factors)."""

    def padding(self, height: int, width: int) -> tuple[int, int]:
        """Pixels to add below and to the right so that (height, width) is accepted."""
        def fit(side: int) -> int:
            side_ok = max(side, self.minimum)
            return side_ok + (-side_ok % self.multiple_of) - side

        return fit(height), fit(width)


class Tiling(enum.Enum):
    """Whether a frame may be upscaled in tiles (spandrel's `ModelTiling`)."""

    SUPPORTED = "supported"
    """Tiles joined with enough overlap give the whole frame's result (to rounding)."""
    DISCOURAGED = "discouraged"
    """Tiles work but show: only when asked (--tile), never chosen automatically."""
    INTERNAL = "internal"
    """The network tiles inside itself, or needs the whole frame: never tiled from outside."""


@dataclass
class ModelDescriptor:
    """A loaded SR network and how to call it (spandrel's `ImageModelDescriptor` is the model).

    Calling it upscales: (N, in_ch, H, W) float in [0, 1] -> (N, out_ch, H*scale, W*scale),
    clamped to [0, 1], on the module's device. For precision, batching, padding and tiling use
    `streamsr.Upscaler`, which reads the fields below rather than guessing from hyperparameters.
    """

    module: nn.Module
    name: str
    """Registered model name (e.g. ``safdn-x4``) or the weight file's path."""
    arch: str
    scale: int
    in_ch: int
    out_ch: int = 3
    supports_half: bool = True
    """fp16 gives the fp32 result within rounding (else CUDA runs bf16 or fp32)."""
    supports_bfloat16: bool = True
    size: SizeRequirements = field(default_factory=SizeRequirements)
    tiling: Tiling = Tiling.SUPPORTED
    tile_overlap: int = 32
    """Context pixels a tile needs on each side for its core to match the whole frame."""
    activation_channels: int = 64
    """Feature channels per pixel at the network's widest: on the CPU, frames whose activations
    (pixels x these) outgrow the caches are tiled automatically (`Upscaler.tile_for`)."""
    channels_last: bool = True
    """The CPU runs it faster in channels-last memory layout."""
    prepare: Callable[[nn.Module, torch.device], None] | None = None
    """Sets the inference module up for the device it runs on (its architecture's choice of
    kernels per device); None: nothing to set."""
    runtime: str = "torch"
    """What executes the module: "torch", or a graph runtime ("onnxruntime", "openvino")."""
    metadata: dict[str, str] = field(default_factory=dict)
    """The weight file's metadata (training record, measured quality)."""

    @classmethod
    def from_module(cls, module: nn.Module, *, name: str, arch: str, metadata: dict[str, str] | None = None,
                    **contract: Any) -> ModelDescriptor:
        """A descriptor for one of our own networks, which records its constructor arguments, with
        the calling contract its registered architecture declares (`registry.ArchSpec.describe`);
        `contract` overrides fields of it."""
        from .registry import REGISTRY

        hp = getattr(module, "hparams", {})
        in_ch = int(hp.get("in_ch", 3))
        declared = REGISTRY[arch].describe(module) if arch in REGISTRY else {}
        return cls(module, name, arch, int(hp["scale"]), in_ch, out_ch=in_ch, metadata=dict(metadata or {}),
                   **{**declared, **contract})

    @property
    def hparams(self) -> dict[str, int | float]:
        return dict(getattr(self.module, "hparams", {}))

    @property
    def trained(self) -> bool:
        """True when the weights carry a training record (not a random initialisation)."""
        return "training" in self.metadata

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def precisions(self) -> list[str]:
        """The precisions this model may run in, best first."""
        return [p for p, ok in (("fp16", self.supports_half), ("bf16", self.supports_bfloat16), ("fp32", True)) if ok]

    def quality(self) -> dict[str, dict[str, float]]:
        """Measured PSNR/SSIM per benchmark set, as recorded in the weight file (may be empty)."""
        raw = self.metadata.get("quality")
        return json.loads(raw) if raw else {}

    def inference_module(self) -> nn.Module:
        """The network fused for inference where its architecture can (a ``reparameterize()``
        method): a copy with the same outputs to rounding, so this descriptor's module stays trainable."""
        if not callable(getattr(self.module, "reparameterize", None)):
            return self.module
        fused: nn.Module = copy.deepcopy(self.module).reparameterize()
        return fused

    @torch.inference_mode()
    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"expected (N, {self.in_ch}, H, W), got {tuple(x.shape)}")
        return self.module(x).clamp_(0, 1)
