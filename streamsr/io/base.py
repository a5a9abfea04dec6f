"""The protocols of a run's ends: `Decoder` (both decoders) and `Sink` (every output)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ..errors import DecodeError
from ..frames import FrameBatch, VideoInfo


class Decoder(Protocol):
    """Yields `FrameBatch`es of RGB frames with their source pts, in presentation order."""

    info: VideoInfo
    frames_decoded: int
    error: DecodeError | None

    def __iter__(self) -> Iterator[FrameBatch]: ...

    def frames_missing(self) -> int: ...

    def close(self) -> None: ...


class Sink(Protocol):
    """Takes the upscaled batches of one run: a video file or stream (`PyAVEncoder`, which also
    copies the source's other streams) or a folder of images (`FrameSequenceWriter`)."""

    frames_written: int

    def write(self, batch: FrameBatch) -> None: ...

    def close(self) -> None:
        """Finish the output (flush, trailer, index): it is complete."""

    def abort(self) -> None:
        """Stop without finishing; the output's owner removes what was written."""
