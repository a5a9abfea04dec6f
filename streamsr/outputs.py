"""Outputs: the default name beside a source, the checks an output must pass before a run starts
(never the input, no silent overwrite, a folder that exists and takes files), and its video codec."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import OutputError
from .frames import VideoInfo
from .io.codecs import output_format_supports, resolve_codec
from .io.sequence import TIMESTAMPS_FILE, is_sequence_file

if TYPE_CHECKING:
    from .config import UpscaleConfig


def fit_container(dst: Path, codec: str) -> Path:
    """`dst`, or `dst` with a ``.mkv`` suffix when its container cannot hold `codec` video."""
    return dst if output_format_supports(dst, codec) else dst.with_suffix(".mkv")


def default_output(src: Path, scale: int, codec: str) -> Path:
    """``video.mp4`` -> ``video_x4.mp4`` beside the source (``.mkv`` if .mp4 cannot hold `codec`)."""
    return fit_container(src.with_name(f"{src.stem}_x{scale}{src.suffix}"), codec)


def check_output(src: Path, dst: Path, *, overwrite: bool) -> None:
    """Raise `OutputError` for an output that must not or cannot be written."""
    if dst.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"{dst}: the output would overwrite the input; choose another -o path")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a directory; give a file name for the output")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: already exists; pass --overwrite to replace it")
    check_parent(dst)


def check_parent(dst: Path) -> None:
    """Raise `OutputError` unless the folder `dst` goes into exists and is writable."""
    parent = dst.parent
    if not parent.is_dir():
        raise OutputError(f"{parent}: the output directory does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{parent}: the output directory is not writable")


def check_frames_folder(src: Path, folder: Path, *, overwrite: bool) -> None:
    """Raise `OutputError` for a frame folder that must not or cannot be written. An existing folder
    is replaced only with `overwrite`, and only if it holds an earlier sequence (its timestamps file):
    a folder of other files is never deleted."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder; give a folder for the frames")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise OutputError(f"{folder}: already holds files; pass --overwrite to replace an earlier frame sequence")
        if not (folder / TIMESTAMPS_FILE).is_file():
            raise OutputError(f"{folder}: holds files that are not a frame sequence; choose a new or empty folder")
        # The earlier sequence is replaced as a whole: nothing else may be in the folder with it.
        others = sorted(p.name for p in folder.iterdir() if not is_sequence_file(p.name))
        if others:
            raise OutputError(f"{folder}: holds other files beside an earlier frame sequence ({', '.join(others[:3])}"
                              f"{', ...' if len(others) > 3 else ''}); move them, or choose a new or empty folder")
    if folder.resolve() == src.resolve().parent:
        raise OutputError(f"{folder}: is the source's folder; choose a new or empty folder for the frames")
    check_parent(folder)


def output_codec(cfg: UpscaleConfig, info: VideoInfo, scale: int, container: str) -> str:
    """The video encoder `cfg` asks for, for this source upscaled by `scale` into a container
    with suffix `container` ("auto" resolved: see `io.codecs.resolve_codec`)."""
    return resolve_codec(cfg.encode.codec, width=info.width * scale, height=info.height * scale,
                         source_pix_fmt=info.pix_fmt, bit_depth=info.bit_depth, pix_fmt=cfg.encode.pix_fmt,
                         container=container)
