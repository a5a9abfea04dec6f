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
from .degrade import bicubic_lr, imresize, modcrop
from .metrics import psnr, ssim

DEFAULT_BENCH = Path(__file__).resolve().parents[3] / "shared" / "data" / "bench"
"""Where `streamsr eval` looks for Set5, Set14, B100 and Vid4 by default (../shared/data/bench)."""

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


def _score_images(paths: list[Path], upscale: Upscale, scale: int) -> tuple[list[float], ...]:
    ps, ss, bps, bss = [], [], [], []
    for path in paths:
        hr = modcrop(read_image(path), scale)
        lr = bicubic_lr(hr, scale)
        sr = upscale(lr)
        bic = imresize(lr, scale)
        ps.append(psnr(sr, hr, crop_border=scale))
        ss.append(ssim(sr, hr, crop_border=scale))
        bps.append(psnr(bic, hr, crop_border=scale))
        bss.append(ssim(bic, hr, crop_border=scale))
    return ps, ss, bps, bss


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def evaluate_set(folder: str | Path, upscale: Upscale, *, scale: int) -> SetScore:
    """Score one benchmark folder.

    A folder of images is averaged over its images; a folder of sub-folders (Vid4's clips) is
    averaged per clip, then over clips, as video SR papers do.
    """
    folder = Path(folder)
    clips = sorted(p for p in folder.iterdir() if p.is_dir())
    groups = [find_images([c]) for c in clips] if clips else [find_images([folder])]
    groups = [g for g in groups if g]
    if not groups:
        raise FileNotFoundError(f"{folder}: no images")
    start = time.perf_counter()
    per_group = [_score_images(g, upscale, scale) for g in groups]
    elapsed = time.perf_counter() - start
    means = [_mean([_mean(g[i]) for g in per_group]) for i in range(4)]
    count = sum(len(g) for g in groups)
    return SetScore(folder.name, count, *means, images_per_second=count / elapsed)
