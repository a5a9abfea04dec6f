"""Stages: the steps between a source and a sink.

A stage maps a stream of `FrameBatch`es to another (`Stage.__call__`); `chain` runs several in
order as one, inside the runner's middle thread. A stage may keep, drop, repeat or replace
frames, but every frame it emits carries the pts it is shown at, in the source's time base: the
sink writes timing from those pts alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from torch import Tensor

from ..errors import DecodeError
from ..frames import FrameBatch
from ..io.base import Decoder, Sink
from ..upscaler import Upscaler
from .reuse import Reuse
from .runner import Progress, Warn, WarningLog, run_stages
from .upscale import Upscale, check_scale, make_upscaler, prepare_run


class Stage(Protocol):
    def __call__(self, batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]: ...


def chain(stages: Sequence[Callable[[Iterator[FrameBatch]], Iterator[FrameBatch]]]) -> Stage:
    """One stage that runs `stages` in order (none: the batches pass unchanged)."""

    def run(batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
        for stage in stages:
            batches = stage(batches)
        return batches

    return run


_StageFn = Callable[[Iterator[FrameBatch]], Iterator[FrameBatch]]


def model_stage(upscaler: Upscaler, reuse: str = "off") -> Reuse:
    """The model on what changed since the frames it last upscaled (`reuse`: auto, exact, off; see
    `stages.reuse`); its `count` says how many frames reused a result whole or in part."""

    def region(crop: Tensor) -> Tensor:
        return upscaler.upscale_frames(crop[None])[0]

    return Reuse(Upscale(upscaler), reuse, region=region)


def frame_stages(model: _StageFn, before: Sequence[_StageFn] = (), after: Sequence[_StageFn] = ()) -> Stage:
    """The stages of a run: `before` the model (on decoded frames), the model, `after` it."""
    return chain([*before, model, *after])


def drive(source: Decoder, stages: Stage, sink: Sink, *, name: str | Path, queue_size: int,
          on_progress: Progress | None = None, on_drop: Progress | None = None) -> tuple[float, float, float]:
    """Run `source` (called `name` in errors) through `stages` into `sink` and finish the sink; on
    any error the sink is aborted (its owner removes what it wrote). Returns the busy seconds of
    (decode, stages, write)."""
    try:
        times = run_stages(iter(source), stages, sink.write, queue_size=queue_size, on_progress=on_progress, on_drop=on_drop)
        if sink.frames_written == 0:
            raise DecodeError(f"{name}: no frame could be decoded; the file may be corrupt")
        sink.close()
    except BaseException:
        sink.abort()
        raise
    return times


__all__ = ["Progress", "Reuse", "Stage", "Upscale", "Warn", "WarningLog", "chain", "check_scale", "drive", "frame_stages",
           "make_upscaler", "model_stage",
           "prepare_run", "run_stages"]
