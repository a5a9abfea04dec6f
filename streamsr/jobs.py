"""The unit of work a batch schedules: one file, its settings and its output path. `upscale_one` is a
plain function call, so the local pool and a distributed engine (Ray) run it alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import UpscaleConfig, UpscaleResult
from .run import upscale
from .stages import Progress, Warn
from .upscaler import Upscaler


@dataclass(frozen=True)
class Job:
    """One file's work: where from, where to, with which settings."""

    src: Path
    dst: Path
    config: UpscaleConfig
    segment_seconds: float | None = None
    """Videos longer than this go in resumable segments of about this length (see `segments`)."""


def upscale_one(job: Job, upscaler: Upscaler | None = None, *, on_progress: Progress | None = None,
                on_warning: Warn | None = None) -> UpscaleResult:
    """Run one job: a video or an image, in resumable segments where the job asks for them."""
    job.dst.parent.mkdir(parents=True, exist_ok=True)
    return upscale(job.src, job.dst, job.config, segment_seconds=job.segment_seconds, resume=bool(job.segment_seconds),
                   upscaler=upscaler, on_progress=on_progress, on_warning=on_warning)
