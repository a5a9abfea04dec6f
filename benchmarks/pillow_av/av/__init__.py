"""A stand-in for PyAV that reads still images through Pillow, for `streamsr train` on the device.

The device image has Pillow but not PyAV, and PyAV's wheel (36 MB) would take over half of the
64 MiB a call carries: room that training images fill better. `benchmarks/device_env.sh` puts this
folder on PYTHONPATH only when `import av` fails there. It decodes what `streamsr.io.images.read_image`
asks of it and nothing else, so a video path run on it fails loudly: `open` for writing raises
`FFmpegError`, and PyAV's other names are missing (AttributeError).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

import numpy as np
from PIL import Image

__version__ = "0+pillow-stand-in"


class FFmpegError(Exception):
    """What the stand-in raises for an unreadable image or for anything but reading one."""


class _Frame:
    def __init__(self, image: Image.Image) -> None:
        self._image = image

    def to_ndarray(self, format: str = "rgb24") -> np.ndarray:  # noqa: A002 - PyAV's keyword
        if format != "rgb24":
            raise FFmpegError(f"the Pillow stand-in gives rgb24 only, not {format}")
        # A writable copy, as PyAV gives; grayscale replicated and alpha dropped, as its rgb24 does.
        return np.array(self._image.convert("RGB"))


class _ImageContainer:
    def __init__(self, path: str) -> None:
        try:
            self._image = Image.open(path)
            self._image.load()
        except OSError as e:  # Pillow's UnidentifiedImageError is an OSError too
            raise FFmpegError(f"{path}: {e}") from e

    def decode(self, video: int = 0) -> Iterator[_Frame]:
        yield _Frame(self._image)

    def close(self) -> None:
        self._image.close()

    def __enter__(self) -> _ImageContainer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def open(path: str, mode: str = "r", **options: object) -> _ImageContainer:  # noqa: A001 - PyAV's name
    if mode != "r" or options:
        raise FFmpegError("the Pillow stand-in for PyAV only reads still images")
    return _ImageContainer(path)
