"""Upscaled frames as a numbered image sequence, with each frame's source timestamp kept beside them.

The folder holds ``000001.png``, ``000002.png``, ... and ``timestamps.txt`` in Matroska's
"timestamp format v2" (one presentation time in milliseconds per frame, in file order), which
mkvmerge reads back (``--timestamps 0:timestamps.txt``) so a variable-rate source keeps its timing
after the images are edited and re-encoded.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from ..errors import EncodeError
from ..frames import FrameBatch
from .images import Picture, write_picture

SEQUENCE_FORMATS = {"png": "PNG", "tiff": "TIFF", "jpg": "JPEG", "webp": "WEBP"}
"""Image suffixes a sequence may use, and their format. PNG and TIFF keep 16 bits for deep sources."""
TIMESTAMPS_FILE = "timestamps.txt"
_TIMESTAMPS_HEADER = "# timestamp format v2\n"


def frame_name(number: int, suffix: str) -> str:
    """File name of frame `number` (counted from 1) of a sequence."""
    return f"{number:06d}.{suffix}"


def check_sequence_format(image_format: str) -> None:
    """Raise `ValueError` unless a sequence can be written in `image_format`."""
    if image_format not in SEQUENCE_FORMATS:
        raise ValueError(f"image format must be one of {', '.join(SEQUENCE_FORMATS)}, got {image_format!r}")


def is_sequence_file(name: str) -> bool:
    """True for a name a sequence is made of: a numbered frame or the timestamps file."""
    stem, _, suffix = name.partition(".")
    return name == TIMESTAMPS_FILE or (stem.isdigit() and len(stem) >= 6 and suffix in SEQUENCE_FORMATS)


def milliseconds(pts: int, time_base: Fraction) -> str:
    """A presentation time as timestamp-v2 writes it: milliseconds, exact to the microsecond."""
    return f"{float(pts * time_base * 1000):.6f}".rstrip("0").rstrip(".")


class FrameSequenceWriter:
    """Writes each upscaled frame as an image into `folder`; `close()` writes the timestamps."""

    def __init__(self, folder: Path, image_format: str = "png") -> None:
        check_sequence_format(image_format)
        self.folder, self.suffix = folder, image_format
        self._times: list[str] = []
        self._last_pts: int | None = None
        self.frames_written = 0
        self.frames_dropped = 0
        """Frames whose pts repeat or go back: a sequence has one image per presentation time."""

    def write(self, batch: FrameBatch) -> None:
        for rgb, pts in zip(batch.data, batch.pts.tolist(), strict=True):
            if self._last_pts is not None and pts <= self._last_pts:
                self.frames_dropped += 1
                continue
            self._last_pts = pts
            path = self.folder / frame_name(self.frames_written + 1, self.suffix)
            try:
                picture = Picture(rgb=rgb, alpha=None, grey=False, icc_profile=None, exif=None)
                write_picture(picture, path, SEQUENCE_FORMATS[self.suffix])
            except ValueError as e:  # Pillow's refusal of a size the format cannot hold
                raise EncodeError(f"{path.name}: cannot be written as {self.suffix} ({e})") from e
            self._times.append(milliseconds(pts, batch.time_base))
            self.frames_written += 1

    def close(self) -> None:
        """Write ``timestamps.txt``: the sequence is complete."""
        (self.folder / TIMESTAMPS_FILE).write_text(_TIMESTAMPS_HEADER + "".join(f"{t}\n" for t in self._times))

    def abort(self) -> None:
        """Nothing to release: each image is closed once written."""
