"""The Decoder protocol both backends implement."""

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
