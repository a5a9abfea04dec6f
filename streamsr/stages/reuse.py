"""Frame reuse: a frame that repeats the one the model last upscaled gets that result again.

Animation is drawn on twos and threes, slideshows and screen recordings hold still: upscaling a
repeat again is the largest waste on such footage. Each decoded frame is compared, where it lives
(CPU or GPU), with the *anchor*: the last frame the model upscaled, not merely the previous frame,
so a slow fade or pan cannot creep past the threshold a little per frame. A reused frame keeps its
own pts; only its pixels come from the anchor's output.
"""

from __future__ import annotations

import typing
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F

from ..frames import FrameBatch

ReuseMode = Literal["auto", "exact", "off"]
REUSE_MODES: tuple[str, ...] = typing.get_args(ReuseMode)

BLOCK = 16
"""Side of the blocks whose mean difference is compared: a 16 px change (a cursor, a mouth) is one
block that differs, not noise spread over the frame."""
BLOCK_LIMIT = 2.0
"""`auto`: the largest mean absolute difference (8-bit code values) any block of a reused frame may
have from the anchor. Chosen on validation clips (benchmarks/reuse.py): codec noise on repeats
stays under it at CRF 18-33, while every moving frame of the pans, fades and real motion there
exceeds it."""
SHIFT_LIMIT = 0.5
"""`auto`: the largest mean signed difference over the whole frame (8-bit code values); a fade
moves every pixel the same way and is never reused, codec noise averages out."""


def _stats(frame: torch.Tensor, anchor: torch.Tensor, peak: float) -> tuple[float, float]:
    """(largest block mean |difference|, whole-frame mean signed difference), in 8-bit code values."""
    diff = (frame.float() - anchor.float()).mean(dim=0, keepdim=True) * (255.0 / peak)
    blocks = F.avg_pool2d(diff.abs()[None], BLOCK, ceil_mode=True)
    return float(blocks.max()), float(diff.mean())


def is_repeat(frame: torch.Tensor, anchor: torch.Tensor, mode: str) -> bool:
    """Whether `frame` (3, H, W) may reuse the output of `anchor` under `mode`."""
    if mode == "off" or frame.shape != anchor.shape:
        return False
    if mode == "exact":
        return bool(torch.equal(frame, anchor))
    peak = 255.0 if frame.dtype == torch.uint8 else 65535.0
    block, shift = _stats(frame, anchor, peak)
    return block <= BLOCK_LIMIT and abs(shift) <= SHIFT_LIMIT


@dataclass
class ReuseCount:
    """Frames the model upscaled and frames that reused an earlier result."""

    upscaled: int = 0
    reused: int = 0


@dataclass(frozen=True)
class _Plan:
    """One decoded batch: its pts, and which of its frames go to the model (the rest repeat)."""

    batch: FrameBatch
    fresh: list[bool]


class Reuse:
    """Runs `model` (a stage: the `Upscale`) on the frames that do not repeat their anchor, and
    gives each repeat a copy of its anchor's output, at the repeat's own pts.

    Batches keep their order and their frames' pts; a batch made only of repeats never reaches
    the model. `count` says how many frames were upscaled and reused.
    """

    def __init__(self, model: Callable[[Iterator[FrameBatch]], Iterator[FrameBatch]], mode: str = "auto") -> None:
        if mode not in REUSE_MODES:
            raise ValueError(f"reuse must be one of {', '.join(REUSE_MODES)}, got {mode!r}")
        self.model, self.mode = model, mode
        self.count = ReuseCount()
        self._anchor: torch.Tensor | None = None

    def _split(self, batches: Iterator[FrameBatch], plans: deque[_Plan]) -> Iterator[FrameBatch]:
        """The fresh frames of each batch, for the model; every batch's plan goes to `plans`."""
        for batch in batches:
            fresh = []
            for frame in batch.data:
                repeat = self._anchor is not None and is_repeat(frame, self._anchor, self.mode)
                if not repeat:
                    self._anchor = frame
                fresh.append(not repeat)
            plans.append(_Plan(batch, fresh))
            if all(fresh):
                yield batch
            elif any(fresh):
                keep = torch.tensor(fresh)
                yield replace(batch, data=batch.data[keep.to(batch.data.device)], pts=batch.pts[keep])

    def __call__(self, batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
        if self.mode == "off":
            yield from self.model(batches)
            return
        plans: deque[_Plan] = deque()
        last: torch.Tensor | None = None  # the latest output frame: what a repeat copies

        def only_repeats() -> Iterator[FrameBatch]:
            nonlocal last
            while plans and not any(plans[0].fresh):
                plan = plans.popleft()
                assert last is not None  # the first frame of a run is always fresh
                self.count.reused += len(plan.batch)
                yield replace(plan.batch, data=last.expand(len(plan.batch), *last.shape).clone())

        for out in self.model(self._split(batches, plans)):
            yield from only_repeats()
            plan = plans.popleft()
            frames, k = [], 0
            for fresh in plan.fresh:
                if fresh:
                    last = out.data[k]
                    k += 1
                    self.count.upscaled += 1
                else:
                    self.count.reused += 1
                assert last is not None
                frames.append(last)
            yield replace(out, data=torch.stack(frames), pts=plan.batch.pts, index_start=plan.batch.index_start)
            yield from only_repeats()
        yield from only_repeats()
