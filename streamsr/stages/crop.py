"""Black borders: found across the whole video, and cut off before the model sees the picture.

FFmpeg's `cropdetect` is a GPL filter that PyAV's FFmpeg builds leave out, so the detection is
done here the way it does it: a line of the luma plane whose mean is at or under the black limit
(24 of 255) is border. Unlike `cropdetect` over the first second, the frames are sampled across
the file and the picture is the largest box any of them shows, so a dark opening scene does not
cut into the picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import ConfigError
from ..frames import VideoInfo
from ..io.probe import open_input

BLACK_LIMIT = 24
"""Luma mean (0-255) at or under which a line is border, as `cropdetect`'s default limit."""
SAMPLES = 24
"""Places across the file a frame is taken from."""
SEEK_FRAMES = 48
"""Frames decoded at most from a keyframe towards a sample's time: a bound on the cost of long GOPs."""


@dataclass(frozen=True)
class Crop:
    """The picture without its borders: `width` x `height` at (`x`, `y`) of the decoded frame."""

    width: int
    height: int
    x: int
    y: int

    @classmethod
    def parse(cls, text: str) -> Crop:
        """``W:H:X:Y``, as FFmpeg's crop filter takes it."""
        if not re.fullmatch(r"\d+:\d+:\d+:\d+", text):
            raise ConfigError(f"--crop takes auto or W:H:X:Y in pixels (e.g. 720:360:0:60), got {text!r}")
        return cls(*(int(v) for v in text.split(":")))

    def check(self, info: VideoInfo) -> None:
        if self.width <= 0 or self.height <= 0 or self.x + self.width > info.width or self.y + self.height > info.height:
            raise ConfigError(f"crop {self.width}:{self.height}:{self.x}:{self.y} does not fit the "
                              f"{info.width}x{info.height} picture")

    @property
    def filters(self) -> list[str]:
        # exact=1: the offsets as given, even where chroma is subsampled (the rows and columns picked
        # are whole chroma samples when they are even, which detection makes them).
        return [f"crop={self.width}:{self.height}:{self.x}:{self.y}:exact=1"]

    def reshape(self, info: VideoInfo) -> VideoInfo:
        return replace(info, width=self.width, height=self.height)

    def describe(self) -> str:
        return f"cropped to {self.width}x{self.height} at ({self.x}, {self.y})"


def _box(luma: np.ndarray, limit: float) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), bottom and right exclusive, of the lines above `limit`; None for a black frame."""
    rows = np.flatnonzero(luma.mean(axis=1) > limit)
    cols = np.flatnonzero(luma.mean(axis=0) > limit)
    if rows.size == 0 or cols.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def detect_borders(src: str | Path, info: VideoInfo, samples: int = SAMPLES) -> Crop | None:
    """The crop that removes the black borders every sampled frame has; None when there are none.

    Full-range sources have black at 0, limited-range ones at 16: the limit is above black either way.
    """
    top, bottom, left, right = info.height, 0, info.width, 0
    seen = False
    with open_input(src) as container:
        stream = container.streams.video[0]
        duration = info.duration_seconds or 0.0
        for i in range(samples):
            frame = _frame_at(container, stream, duration * (i + 0.5) / samples if duration else None, i)
            if frame is None:
                break
            box = _box(frame.reformat(format="gray").to_ndarray().astype(np.float32), BLACK_LIMIT)
            if box is None:
                continue
            seen = True
            top, bottom, left, right = min(top, box[0]), max(bottom, box[1]), min(left, box[2]), max(right, box[3])
    if not seen:
        return None
    # Whole chroma samples: the picture grows to even lines rather than losing one.
    top, left = top - top % 2, left - left % 2
    bottom, right = min(info.height, bottom + bottom % 2), min(info.width, right + right % 2)
    if (top, left, bottom, right) == (0, 0, info.height, info.width):
        return None
    return Crop(right - left, bottom - top, left, top)


def _frame_at(container: av.container.InputContainer, stream: av.video.stream.VideoStream, seconds: float | None,
              index: int) -> av.VideoFrame | None:
    """The frame at `seconds`, or the last of `SEEK_FRAMES` decoded from the keyframe before it
    (long keyframe intervals); without a duration, the `index`-th frame."""
    try:
        if seconds is None:
            if index == 0:
                container.seek(0)
            return next(container.decode(stream), None)
        tb = stream.time_base or Fraction(1, 1000)
        container.seek(int(seconds / tb), stream=stream, backward=True)
        frame = None
        for count, frame in enumerate(container.decode(stream)):
            if count >= SEEK_FRAMES or (frame.pts is not None and frame.pts * tb >= seconds):
                break
        return frame
    except av.FFmpegError:
        return None
