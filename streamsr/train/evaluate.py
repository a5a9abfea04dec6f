"""Benchmark evaluation: PSNR/SSIM on the Y channel next to bicubic, the way SR papers report."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..config import DATA_ENV
from ..errors import ConfigError
from ..io.images import read_image
from ..models import ModelDescriptor, save_weights
from ..models.weights import carried_metadata
from ..upscaler import Upscaler
from .data import find_images
from .degrade import Compression, bicubic_lr, imresize, modcrop
from .metrics import psnr, ssim, temporal_psnr

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
    tpsnr: float | None = None
    """Clips only: temporal PSNR, of SR_t - SR_t-1 against HR_t - HR_t-1 (Y, border = scale), the mean
    over consecutive frames: how much the output flickers where the original does not."""
    bicubic_tpsnr: float | None = None

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def benchmark_folders(names: tuple[str, ...] = BENCHMARK_SETS) -> list[Path]:
    """The benchmark sets present below ``$STREAMSR_DATA/bench``.

    Raises:
        ConfigError: STREAMSR_DATA is unset, or holds none of the sets.
    """
    root = os.environ.get(DATA_ENV)
    if not root:
        raise ConfigError(f"no benchmark folders given, and ${DATA_ENV} is unset; set it to the data folder that holds bench/")
    found = [Path(root) / "bench" / n for n in names if (Path(root) / "bench" / n).is_dir()]
    if not found:
        raise ConfigError(f"{Path(root) / 'bench'}: none of {', '.join(names)} is there")
    return found


def upscale_function(upscaler: Upscaler) -> Upscale:
    """An `Upscaler` (any backend, precision, self-ensemble) as a uint8 image -> uint8 image function."""

    def run(lr: Tensor) -> Tensor:
        return upscaler.upscale_frames(lr[None])[0].cpu()

    return run


def quality_table(scores: list[SetScore], compression: Compression | None = None) -> dict[str, dict[str, float]]:
    """Scores as a weight file records them; on compressed LR under "SET @ DEGRADATION"."""
    suffix = f" @ {compression}" if compression else ""
    return {sc.name + suffix: {"psnr": round(sc.psnr, 4), "ssim": round(sc.ssim, 4)} for sc in scores}


def export_with_quality(model: ModelDescriptor, table: dict[str, dict[str, float]], path: str | Path) -> None:
    """A copy of `model`'s weights at `path` whose metadata records `table` beside the quality it had."""
    extra = carried_metadata(model.metadata)
    extra["quality"] = json.dumps({**model.quality(), **table})
    save_weights(model.module, path, arch=model.arch, extra=extra)


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
    ps, ss, bps, bss, tps, btps = [], [], [], [], [], []
    previous: tuple[Tensor, Tensor, Tensor] | None = None
    for hr, lr in zip(hrs, lrs, strict=True):
        sr = upscale(lr)
        bic = imresize(lr, scale)
        ps.append(psnr(sr, hr, crop_border=scale))
        ss.append(ssim(sr, hr, crop_border=scale))
        bps.append(psnr(bic, hr, crop_border=scale))
        bss.append(ssim(bic, hr, crop_border=scale))
        if as_clip and previous is not None:
            tps.append(temporal_psnr(previous[0], sr, previous[2], hr, crop_border=scale))
            btps.append(temporal_psnr(previous[1], bic, previous[2], hr, crop_border=scale))
        previous = (sr, bic, hr)
    return ps, ss, bps, bss, tps, btps


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
    temporal = [_mean([_mean(g[i]) for g in per_group if g[i]]) if any(g[i] for g in per_group) else None for i in (4, 5)]
    count = sum(len(g) for g in groups)
    return SetScore(folder.name, count, *means, images_per_second=count / elapsed, tpsnr=temporal[0],
                    bicubic_tpsnr=temporal[1])


def evaluation_upscaler(model: ModelDescriptor, *, backend: str | None = None, precision: str = "fp32",
                      self_ensemble: bool = False) -> Upscaler:
    """The `Upscaler` `streamsr eval` scores with: the CPU, whole images (no tiles), fp32 torch by default."""
    return Upscaler(model, device="cpu", precision=precision, backend=backend or model.runtime, tile=0, self_ensemble=self_ensemble)


def export_refusal(upscaler: Upscaler) -> str | None:
    """Why scores of `upscaler` cannot be recorded in a weight file, or None: a file's recorded
    quality is what its weights alone reach in torch fp32."""
    if upscaler.self_ensemble or upscaler.runtime != "torch" or upscaler.precision_name != "fp32":
        return "an exported file records the model's own torch fp32 scores: export without the self-ensemble, another backend or precision"
    return None


def evaluate_upscaler(upscaler: Upscaler, folders: list[Path] | None = None, *, compression: Compression | None = None,
                    export: str | Path | None = None, on_set: Callable[[SetScore], None] | None = None) -> list[SetScore]:
    """Score `upscaler` on each folder (default: the benchmark sets below $STREAMSR_DATA/bench);
    `on_set` hears each set's score as it is done. With `export`, a copy of the weights recording
    these scores is written there.

    Raises:
        ConfigError: no folders and no benchmark sets, or `export` refused (`export_refusal`).
    """
    if export is not None and (why := export_refusal(upscaler)) is not None:
        raise ConfigError(why)
    upscale = upscale_function(upscaler)
    scores = []
    for folder in folders or benchmark_folders():
        scores.append(evaluate_set(folder, upscale, scale=upscaler.scale, compression=compression))
        if on_set is not None:
            on_set(scores[-1])
    if export is not None:
        export_with_quality(upscaler.model, quality_table(scores, compression), export)
    return scores
