"""Frame reuse: what repeats the picture the model last upscaled gets that result again.

Animation is drawn on twos and threes; slideshows, lectures and screen recordings hold still, or
change in one place only: upscaling that again is the largest waste on such footage. Each decoded
frame is compared, where it lives (CPU or GPU), block by block with what the output shows (the
frames last upscaled there, not merely the previous frame, so a slow fade or pan cannot creep past
the limit a little per frame). A frame in which no block changed reuses the last output whole;
under `auto`, one in which only some blocks changed has just the box around them upscaled, with
`MARGIN` pixels of context, and pasted into the last output. Every frame keeps its own pts.
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
BLOCK_LIMIT = 1.5
"""`auto`: the largest mean absolute difference (8-bit code values) any block of a reused frame may
have from what the output shows. Chosen on a validation stretch (benchmarks/reuse.py): the largest
limit at which no frame of a 0.25 px/frame pan or a fade is reused (2.0 reuses 5% of the pan's
frames), while x264's noise on repeats passes for 97% / 81% / 56% / 26% of them at CRF 18 / 23 /
28 / 33, each reused output 48.8 dB or more from a fresh upscale."""
SHIFT_LIMIT = 0.5
"""`auto`: the largest mean signed difference over the whole frame (8-bit code values); a fade
moves every pixel the same way and is never reused, codec noise averages out."""
MARGIN = 32
"""Pixels of context around a changed box. With 32, the box matches a full upscale of the frame at
49 dB or more on text, 60 dB on pictures (16: 46.5 dB on text; benchmarks/still_regions.py)."""
REGION_SHARE = 0.5
"""A changed box larger than this share of the frame (with its margin) is upscaled as a whole frame."""


def _blocks(frame: torch.Tensor, anchor: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(mean |difference| of each block, whole-frame mean signed difference), in 8-bit code values."""
    peak = 255.0 if frame.dtype == torch.uint8 else 65535.0
    diff = (frame.float() - anchor.float()).mean(dim=0, keepdim=True) * (255.0 / peak)
    return F.avg_pool2d(diff.abs()[None], BLOCK, ceil_mode=True)[0, 0], float(diff.mean())


def _stats(frame: torch.Tensor, anchor: torch.Tensor, peak: float) -> tuple[float, float]:
    """(largest block mean |difference|, whole-frame mean signed difference), in 8-bit code values."""
    blocks, shift = _blocks(frame, anchor)
    return float(blocks.max()), shift


def is_repeat(frame: torch.Tensor, anchor: torch.Tensor, mode: str) -> bool:
    """Whether `frame` (3, H, W) may reuse the output of `anchor` under `mode`."""
    if mode == "off" or frame.shape != anchor.shape:
        return False
    if mode == "exact":
        return bool(torch.equal(frame, anchor))
    blocks, shift = _blocks(frame, anchor)
    return float(blocks.max()) <= BLOCK_LIMIT and abs(shift) <= SHIFT_LIMIT


Box = tuple[int, int, int, int]
"""(top, bottom, left, right) in frame pixels, bottom and right exclusive."""


def changed_box(frame: torch.Tensor, shown: torch.Tensor) -> Box | None:
    """The box, grown by one block, around the blocks of `frame` that differ from `shown` beyond
    the limit; None when none does (a repeat). A fade (every pixel brighter or darker) is the whole frame."""
    h, w = frame.shape[-2:]
    if frame.shape != shown.shape:
        return (0, h, 0, w)
    blocks, shift = _blocks(frame, shown)
    if abs(shift) > SHIFT_LIMIT:
        return (0, h, 0, w)
    changed = F.max_pool2d((blocks > BLOCK_LIMIT).float()[None, None], 3, stride=1, padding=1)[0, 0] > 0
    rows, cols = torch.nonzero(changed.any(1)).flatten(), torch.nonzero(changed.any(0)).flatten()
    if rows.numel() == 0:
        return None
    return (int(rows[0]) * BLOCK, min(h, (int(rows[-1]) + 1) * BLOCK),
            int(cols[0]) * BLOCK, min(w, (int(cols[-1]) + 1) * BLOCK))


@dataclass
class ReuseCount:
    """Frames the model upscaled whole, in part (a changed box), and not at all (reused)."""

    upscaled: int = 0
    reused: int = 0
    partial: int = 0


FRESH, REPEAT = "fresh", "repeat"
Action = str | Box
"""What a frame gets: FRESH (the model on the whole frame), REPEAT (the last output), or a Box
(the last output with that box upscaled again)."""


@dataclass(frozen=True)
class _Plan:
    """One decoded batch and what each of its frames gets."""

    batch: FrameBatch
    actions: list[Action]

    @property
    def to_model(self) -> bool:
        return FRESH in self.actions


class Reuse:
    """Runs `model` (a stage: the `Upscale`) on the frames that need it whole; gives each repeat a
    copy of the last output; with `region` (auto), upscales only the changed box of a frame that
    changed in part, through `region(crop) -> upscaled crop`, and pastes it into the last output.

    Batches keep their order, their size and their frames' pts; a batch with no frame for the
    model never reaches it. `count` says how many frames were upscaled whole, in part and reused.
    What the output shows carries over from one call to the next, so a stream may come in pieces.
    """

    def __init__(self, model: Callable[[Iterator[FrameBatch]], Iterator[FrameBatch]], mode: str = "auto",
                 region: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if mode not in REUSE_MODES:
            raise ValueError(f"reuse must be one of {', '.join(REUSE_MODES)}, got {mode!r}")
        self.model, self.mode = model, mode
        self.region = region if mode == "auto" else None
        self.count = ReuseCount()
        self._shown: torch.Tensor | None = None  # the input pictures the output shows, block by block
        self._last: torch.Tensor | None = None  # the latest output frame

    def _action(self, frame: torch.Tensor) -> Action:
        shown = self._shown
        if shown is None or frame.shape != shown.shape:
            self._shown = frame.clone()
            return FRESH
        if self.mode == "exact":
            return REPEAT if torch.equal(frame, shown) else self._fresh(frame)
        box = changed_box(frame, shown)
        if box is None:
            return REPEAT
        top, bottom, left, right = box
        h, w = frame.shape[-2:]
        area = (min(h, bottom + MARGIN) - max(0, top - MARGIN)) * (min(w, right + MARGIN) - max(0, left - MARGIN))
        if self.region is None or area > REGION_SHARE * h * w:
            return self._fresh(frame)
        shown[:, top:bottom, left:right] = frame[:, top:bottom, left:right]
        return box

    def _fresh(self, frame: torch.Tensor) -> Action:
        assert self._shown is not None
        self._shown.copy_(frame)
        return FRESH

    def _split(self, batches: Iterator[FrameBatch], plans: deque[_Plan]) -> Iterator[FrameBatch]:
        """The frames of each batch the model upscales whole; every batch's plan goes to `plans`."""
        for batch in batches:
            actions = [self._action(frame) for frame in batch.data]
            plans.append(_Plan(batch, actions))
            fresh = [a == FRESH for a in actions]
            if all(fresh):
                yield batch
            elif any(fresh):
                keep = torch.tensor(fresh)
                yield replace(batch, data=batch.data[keep.to(batch.data.device)], pts=batch.pts[keep])

    def _apply(self, action: Action, frame: torch.Tensor, last: torch.Tensor | None) -> torch.Tensor:
        """The output of a frame that is no FRESH one, from the last output."""
        assert last is not None  # the first frame of a run is always fresh
        if action == REPEAT:
            self.count.reused += 1
            return last
        assert self.region is not None and not isinstance(action, str)
        top, bottom, left, right = action
        h, w = frame.shape[-2:]
        y0, y1, x0, x1 = max(0, top - MARGIN), min(h, bottom + MARGIN), max(0, left - MARGIN), min(w, right + MARGIN)
        up = self.region(frame[:, y0:y1, x0:x1])
        s = up.shape[-1] // (x1 - x0)
        out = last.clone()
        out[:, top * s:bottom * s, left * s:right * s] = \
            up[:, (top - y0) * s:(bottom - y0) * s, (left - x0) * s:(right - x0) * s].to(out.device)
        self.count.partial += 1
        return out

    def __call__(self, batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
        if self.mode == "off":
            yield from self.model(batches)
            return
        plans: deque[_Plan] = deque()

        def without_model() -> Iterator[FrameBatch]:
            while plans and not plans[0].to_model:
                plan = plans.popleft()
                frames = []
                for action, frame in zip(plan.actions, plan.batch.data, strict=True):
                    self._last = self._apply(action, frame, self._last)
                    frames.append(self._last)
                yield replace(plan.batch, data=torch.stack(frames))

        for out in self.model(self._split(batches, plans)):
            yield from without_model()
            plan = plans.popleft()
            frames, k = [], 0
            for action, frame in zip(plan.actions, plan.batch.data, strict=True):
                if action == FRESH:
                    self._last = out.data[k]
                    k += 1
                    self.count.upscaled += 1
                else:
                    self._last = self._apply(action, frame, self._last)
                frames.append(self._last)
            yield replace(out, data=torch.stack(frames), pts=plan.batch.pts, index_start=plan.batch.index_start)
            yield from without_model()
        yield from without_model()
