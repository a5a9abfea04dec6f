"""Interlaced and telecined sources: what the pictures are, and the filters that make them progressive.

Field order flags are often wrong both ways (progressive DVD rips flagged interlaced, captures
flagged progressive), so the pictures decide: FFmpeg's `idet` counts, over the first frames, the
ones whose fields belong to two moments (and which came first) and the fields repeated from the
frame before (the signature of 3:2 pulldown).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Literal

import av

from ..frames import VideoInfo
from ..io.filters import FilterChain
from ..io.probe import open_input, probe

DeinterlaceMode = Literal["auto", "off", "bwdif", "yadif"]
DEINTERLACE_MODES: tuple[str, ...] = typing.get_args(DeinterlaceMode)

IDET_FRAMES = 120
"""Frames `idet` looks at: four to five seconds, enough for a verdict past a still opening."""


@dataclass(frozen=True)
class Interlacing:
    """What `idet` found in the first frames of a video."""

    frames: int
    """Frames looked at."""
    tff: int
    bff: int
    progressive: int
    repeated_fields: int
    """Fields identical to the one a frame before: 2 in every 5 frames of 3:2 pulldown."""

    @property
    def decided(self) -> bool:
        """Enough frames were told apart for a verdict (idet needs a few to judge each)."""
        return self.tff + self.bff + self.progressive >= 5

    @property
    def interlaced(self) -> bool:
        """Most of the frames whose kind could be told have two moments in them."""
        return self.tff + self.bff > self.progressive

    @property
    def order(self) -> str:
        """"tff" or "bff" when interlaced, else "progressive"."""
        if not self.interlaced:
            return "progressive"
        return "tff" if self.tff >= self.bff else "bff"

    @property
    def telecined(self) -> bool:
        """Repeated fields in about 2 of 5 frames, the 3:2 pulldown of 24 fps film to 30 fps video.
        Noisy sources hide repeats, so this says "looks telecined", never "is not"."""
        return self.frames >= 20 and 0.3 <= self.repeated_fields / self.frames <= 0.5

    def describe(self) -> str:
        found = f"idet on {self.frames} frames: {self.tff} tff, {self.bff} bff, {self.progressive} progressive"
        return found + (f", {self.repeated_fields} repeated fields (looks telecined)" if self.telecined else "")


def detect_interlacing(src: str | Path, info: VideoInfo | None = None, frames: int = IDET_FRAMES) -> Interlacing:
    """Run `idet` over the first `frames` frames of `src`'s video (a damaged file: over those that
    decode); `info` is `probe(src)`, read here if not given."""
    info = info or probe(src)
    with open_input(src) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            return idet(islice(_decodable(container, stream), frames), info)
        except av.FFmpegError:
            return Interlacing(0, 0, 0, 0, 0)  # no verdict: the flags decide, and decoding says what is wrong


def _decodable(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
    """The frames that decode; a packet the decoder refuses is passed over."""
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue


def idet(frames: Iterator[av.VideoFrame], info: VideoInfo) -> Interlacing:
    """`idet`'s verdict on `frames` (its counts after the last one)."""
    metadata: dict[str, str] = {}
    count = 0
    chain = FilterChain(["idet"], info, info.time_base)
    for out in chain(frames):
        metadata, count = dict(out.metadata), count + 1

    def number(key: str) -> int:
        return round(float(metadata.get(f"lavfi.idet.{key}", 0)))

    return Interlacing(frames=count, tff=number("multiple.tff"), bff=number("multiple.bff"),
                       progressive=number("multiple.progressive"),
                       repeated_fields=number("repeated.top") + number("repeated.bottom"))


@dataclass(frozen=True)
class Deinterlace:
    """Interlaced frames to progressive ones with `bwdif` (or `yadif`), before the model.

    One output frame per frame, or with `field_rate` one per field (50i to 50p), each at its
    field's time: the time base halves, so both fall on exact ticks.
    """

    method: str = "bwdif"
    order: str = "tff"
    field_rate: bool = False

    def __post_init__(self) -> None:
        if self.method not in ("bwdif", "yadif"):
            raise ValueError(f"deinterlacing method must be bwdif or yadif, got {self.method!r}")
        if self.order not in ("tff", "bff"):
            raise ValueError(f"field order must be tff or bff, got {self.order!r}")

    @property
    def filters(self) -> list[str]:
        mode = "send_field" if self.field_rate else "send_frame"
        # deint=all: every frame is deinterlaced, whatever its flag says (the flags are what we distrust).
        deint = "all" if self.method == "bwdif" else "0"
        return [f"{self.method}=mode={mode}:parity={self.order}:deint={deint}"]

    def reshape(self, info: VideoInfo) -> VideoInfo:
        """The description of the frames that come out."""
        fps = info.fps * 2 if self.field_rate else info.fps
        return replace(info, time_base=info.time_base / 2, fps=fps, field_order="progressive",
                       num_frames_estimate=info.num_frames_estimate * (2 if self.field_rate else 1))

    def describe(self) -> str:
        per = "one frame per field" if self.field_rate else "one frame per frame"
        return f"deinterlaced with {self.method} ({self.order}, {per})"


@dataclass(frozen=True)
class InverseTelecine:
    """3:2 pulldown undone: `fieldmatch` puts each film frame's two fields back together and
    `decimate` drops the one duplicate in every five, so 29.97 fps video gives back its 23.976
    film frames, each at its own time (the time base becomes the film's frame duration)."""

    order: str = "tff"

    @property
    def filters(self) -> list[str]:
        return [f"fieldmatch=order={self.order}", "decimate"]

    def reshape(self, info: VideoInfo) -> VideoInfo:
        fps = info.fps * Fraction(4, 5)
        return replace(info, fps=fps, time_base=1 / fps, field_order="progressive",
                       num_frames_estimate=info.num_frames_estimate * 4 // 5)

    def describe(self) -> str:
        return "inverse telecine (fieldmatch, decimate)"
