"""Upright: frames turned as the source's display rotation says, for outputs that cannot carry it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import torch

from ..frames import FrameBatch


class Upright:
    """Turns every frame by the display rotation (FFmpeg's sign: -90 is a quarter turn clockwise),
    as a player shows it. A video keeps the rotation as metadata instead; a frame sequence has none."""

    def __init__(self, rotation_degrees: float) -> None:
        # Players show a matrix that is no quarter turn at the nearest one, and so does this.
        self.quarter_turns = round(rotation_degrees / 90) % 4

    def __call__(self, batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
        for batch in batches:
            if self.quarter_turns:
                batch = replace(batch, data=torch.rot90(batch.data, self.quarter_turns, dims=(2, 3)).contiguous())
            yield batch
