"""The model as a stage: every frame upscaled by the `Upscaler`, at its own pts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ..config import UpscaleConfig
from ..errors import ScaleMismatchError
from ..frames import FrameBatch, VideoInfo
from ..io.probe import check_source, probe
from ..models import SCALES
from ..upscaler import Upscaler
from .footage import Footage, plan_picture


def check_scale(upscaler: Upscaler, scale: int | None) -> None:
    """Refuse a scale asked for that is not the model's (None asks for nothing)."""
    if scale is not None and scale != upscaler.scale:
        raise ScaleMismatchError(
            f"model {upscaler.model.name} upscales x{upscaler.scale}, but --scale {scale} was asked for; "
            f"leave --scale out to use the model's")


def upscaler_settings(cfg: UpscaleConfig) -> dict[str, object]:
    """What of `cfg` makes its `Upscaler`: two configs with the same settings can share one."""
    return {"device": cfg.device, "precision": cfg.precision, "batch": cfg.batch, "tile": cfg.tile,
            "cuda_graphs": cfg.cuda_graphs, "self_ensemble": cfg.self_ensemble, "backend": cfg.backend}


def make_upscaler(cfg: UpscaleConfig, on_warning: Callable[[str], None] | None = None) -> Upscaler:
    """The `Upscaler` `cfg` asks for (model loaded once; share it across files)."""
    return Upscaler(cfg.model_name, **upscaler_settings(cfg), on_warning=on_warning)


class LastUpscaler:
    """The `Upscaler` of the last config asked for, kept loaded for the next that makes the same
    one (loading and compiling a model takes seconds); one model at a time, used by one caller at
    a time (``with kept(cfg) as upscaler:``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: tuple[tuple[object, ...], Upscaler] | None = None

    @contextmanager
    def __call__(self, cfg: UpscaleConfig) -> Iterator[Upscaler]:
        key = (cfg.model_name, *upscaler_settings(cfg).values())
        with self._lock:
            if self._kept is None or self._kept[0] != key:
                self._kept = None  # the last one goes before the next loads
                self._kept = (key, make_upscaler(cfg))
            yield self._kept[1]


class Upscale:
    """The model on every frame; pts, time base and order are kept (on CUDA several batches are
    in flight at once: `Upscaler.stream`)."""

    def __init__(self, upscaler: Upscaler) -> None:
        self.upscaler = upscaler

    def __call__(self, batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
        return self.upscaler.stream(batches)


def target_scale(src: str | Path, info: VideoInfo, cfg: UpscaleConfig) -> int | None:
    """The model scale a run of `cfg` on `src` uses: the one it names, or, for a target size with
    neither a model nor a scale named, the smallest shipped scale that reaches the size."""
    return plan_picture(src, info, cfg, lambda _note: None).scale_for(cfg, SCALES)


def prepare_run(src: str | Path, cfg: UpscaleConfig, upscaler: Upscaler | None, info: VideoInfo | None,
                warn: Callable[[str], None]) -> tuple[Path, VideoInfo, Upscaler, UpscaleConfig, Footage]:
    """The checked source file, its description, the `Upscaler`, the config with the model's scale
    and the footage steps around the model. A target size with neither a model nor a scale named
    loads the smallest shipped scale that reaches it."""
    src = check_source(src)
    if info is None:
        info = probe(src)
    footage = plan_picture(src, info, cfg, warn)
    if upscaler is None:
        upscaler = make_upscaler(replace(cfg, scale=footage.scale_for(cfg, SCALES)), on_warning=warn)
    check_scale(upscaler, cfg.scale)
    return src, info, upscaler, replace(cfg, scale=upscaler.scale), footage.shaped(upscaler.scale)
