"""Media input/output: probe, decoders (PyAV on the CPU, DALI on the GPU), encoder/muxer."""

from __future__ import annotations

from pathlib import Path

from ..errors import BackendUnavailableError
from ..frames import VideoInfo
from .encode import EncodeConfig, PyAVEncoder
from .images import read_image, write_png
from .probe import probe
from .pyav import PyAVDecoder

DECODERS: tuple[str, ...] = ("auto", "pyav", "dali")


def open_decoder(src: str | Path, *, backend: str = "auto", batch: int = 4, info: VideoInfo | None = None) -> PyAVDecoder:
    """Choose the decoder: DALI when asked (or, for "auto", when it is usable), else PyAV.

    An explicit ``backend="dali"`` that cannot run raises `BackendUnavailableError` with the
    reason instead of falling back.
    """
    if backend not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {backend!r}")
    if backend == "dali":
        raise BackendUnavailableError("the DALI decoder is not available in this build; use --decoder pyav")
    return PyAVDecoder(src, batch=batch, info=info)


__all__ = ["DECODERS", "EncodeConfig", "PyAVDecoder", "PyAVEncoder", "open_decoder", "probe", "read_image", "write_png"]
