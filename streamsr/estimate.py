"""How long a run takes on this machine, measured: the asked model and the faster shipped models
of the same scale, each timed on the source's own first frame."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .config import UpscaleConfig
from .io.probe import probe
from .io.pyav import PyAVDecoder
from .models import CATALOG
from .stages import make_upscaler
from .stages.upscale import target_scale

LONG_RUN_SECONDS = 600.0
"""A run expected to take longer than this is worth a word about the faster choices."""


@dataclass(frozen=True)
class Estimate:
    model: str
    seconds_per_frame: float
    """The model alone on one frame of the source's size, measured here (decode and encode excluded)."""
    seconds: float
    """For the whole source (its frame count as the header says it)."""


def faster_models(model: str, scale: int) -> list[str]:
    """The shipped models of `scale` lighter than `model` (all small ones for a model from
    elsewhere), lightest last."""
    ladder = [f"safdn-x{scale}", f"safdn-rt-x{scale}", f"safdn-tiny-x{scale}"]
    lighter = ladder[ladder.index(model) + 1 :] if model in ladder else ladder[1:]
    return [name for name in lighter if name in CATALOG]


def estimate(src: str | Path, config: UpscaleConfig | None = None, *, models: list[str] | None = None) -> list[Estimate]:
    """Time `config`'s model and `models` (default: `faster_models`) on the first frame of `src`:
    one untimed call to warm up, then one timed. Raises as `probe` does."""
    info = probe(src)
    cfg = config or UpscaleConfig()
    cfg = replace(cfg, scale=target_scale(src, info, cfg))  # a target size picks the scale, as a run does
    decoder = PyAVDecoder(src, batch=1, info=info)
    try:
        frame = next(iter(decoder)).data
    finally:
        decoder.close()
    upscaler = make_upscaler(cfg)
    names = [upscaler.model.name, *(models if models is not None else faster_models(cfg.model_name, upscaler.scale))]
    found = []
    for name in names:
        up = upscaler if name == upscaler.model.name else make_upscaler(replace(cfg, model=name))
        up.upscale_frames(frame)
        start = time.perf_counter()
        up.upscale_frames(frame)
        per_frame = time.perf_counter() - start
        found.append(Estimate(name, per_frame, per_frame * (info.num_frames_estimate or 1)))
    return found


class LongRunHint:
    """Watches a run's progress; once it has measured a few frames and the rest will take longer
    than `LONG_RUN_SECONDS`, `update` returns (once) the line to say so, else None."""

    def __init__(self, total: int | None, *, after_frames: int = 3, clock: Callable[[], float] = time.perf_counter) -> None:
        self.total, self.after_frames, self._clock = total, after_frames, clock
        self.done, self._start, self._said = 0, clock(), False

    def update(self, frames: int) -> str | None:
        self.done += frames
        if self._said or not self.total or self.done < self.after_frames:
            return None
        per_frame = (self._clock() - self._start) / self.done
        left = per_frame * (self.total - self.done)
        if left <= LONG_RUN_SECONDS:
            return None
        self._said = True
        return (f"this run takes about {duration(left)} more at {per_frame:.1f} s a frame here; "
                "`--estimate` measures the faster models on this machine (e.g. -p fast)")


def duration(seconds: float) -> str:
    """``2 h 10 min``, ``9 min``, ``40 s``."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{round(seconds / 60)} min" if seconds >= 60 else f"{round(seconds)} s"
