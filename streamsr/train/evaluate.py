"""Benchmark evaluation: PSNR/SSIM on the Y channel next to bicubic, the way SR papers report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..io.images import read_image
from .data import find_images
from .degrade import Compression, bicubic_lr, imresize, modcrop
from .metrics import psnr, ssim

BENCHMARK_SETS = ("Set5", "Set14", "B100", "Vid4")
"""What `streamsr eval` scores by default: `bench/NAME` below $STREAMSR_DATA."""

Upscale = Callable[[Tensor], Tensor]
"""uint8 (3, h, w) LR -> uint8 (3, h*s, w*s) SR."""


@dataclass(frozen=True)
class SetScore:
    name: str
    images: int
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float
    images_per_second: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def module_upscaler(module: torch.nn.Module, *, device: str | torch.device = "cpu") -> Upscale:
    """Wrap an SR module (float NCHW in [0, 1]) as a uint8 image -> uint8 image function."""

    @torch.inference_mode()
    def run(lr: Tensor) -> Tensor:
        x = lr.to(device, torch.float32).div(255)[None]
        y = module(x).clamp(0, 1).mul(255).round()
        return y[0].to("cpu", torch.uint8)

    return run


def _score_images(paths: list[Path], upscale: Upscale, scale: int, *, compression: Compression | None = None,
                  as_clip: bool = False) -> tuple[list[float], ...]:
    """Per-image PSNR/SSIM of the model and of bicubic. With `compression`, the LR goes through
    it first: the frames of a clip (`as_clip`) as one video, other images each as a one-frame video."""
    hrs = [modcrop(read_image(path), scale) for path in paths]
    lrs = [bicubic_lr(hr, scale) for hr in hrs]
    if compression is not None:
        lrs = compression.apply(lrs) if as_clip else [compression.apply([lr])[0] for lr in lrs]
    ps, ss, bps, bss = [], [], [], []
    for hr, lr in zip(hrs, lrs, strict=True):
        sr = upscale(lr)
        bic = imresize(lr, scale)
        ps.append(psnr(sr, hr, crop_border=scale))
        ss.append(ssim(sr, hr, crop_border=scale))
        bps.append(psnr(bic, hr, crop_border=scale))
        bss.append(ssim(bic, hr, crop_border=scale))
    return ps, ss, bps, bss


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def evaluate_set(folder: str | Path, upscale: Upscale, *, scale: int, compression: Compression | None = None) -> SetScore:
    """Score one benchmark folder.

    A folder of images is averaged over its images; a folder of sub-folders (Vid4's clips) is
    averaged per clip, then over clips, as video SR papers do. With `compression`, the LR is
    compressed before upscaling (a clip as one video) and the result scored against the clean HR.
    """
    folder = Path(folder)
    clips = sorted(p for p in folder.iterdir() if p.is_dir())
    groups = [find_images([c]) for c in clips] if clips else [find_images([folder])]
    groups = [g for g in groups if g]
    if not groups:
        raise FileNotFoundError(f"{folder}: no images")
    start = time.perf_counter()
    per_group = [_score_images(g, upscale, scale, compression=compression, as_clip=bool(clips)) for g in groups]
    elapsed = time.perf_counter() - start
    means = [_mean([_mean(g[i]) for g in per_group]) for i in range(4)]
    count = sum(len(g) for g in groups)
    return SetScore(folder.name, count, *means, images_per_second=count / elapsed)
