"""Media input/output: probe, decoders (PyAV on the CPU, DALI on the GPU), encoder/muxer."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import BackendUnavailableError
from ..frames import VideoInfo
from .base import Decoder
from .codecs import EncodeConfig
from .encode import PyAVEncoder
from .filters import FilterChain
from .images import read_image, write_png
from .probe import probe
from .pyav import PyAVDecoder

DECODERS: tuple[str, ...] = ("auto", "pyav", "dali")


def open_decoder(src: str | Path, *, backend: str = "auto", batch: int = 4, info: VideoInfo | None = None,
                 filters: FilterChain | None = None) -> Decoder:
    """Choose the decoder: DALI when asked (or, for "auto", when CUDA, DALI and a constant-rate
    8-bit stream it can decode are all there), else PyAV. Picture `filters` (deinterlacing,
    cropping) run on PyAV's decoded frames: with them "auto" is PyAV, and "dali" is refused.

    An explicit ``backend="dali"`` that cannot run raises `BackendUnavailableError` with the
    reason instead of falling back. Without CUDA it uses DALI's CPU decoder (VP8, VP9, MJPEG), a
    diagnostic mode; "auto" imports DALI only when CUDA is present, so the CPU path never pays
    its import cost.
    """
    if backend not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {backend!r}")
    info = info or probe(src)
    if filters is not None:
        if backend == "dali":
            raise BackendUnavailableError(f"the DALI decoder cannot run {', '.join(filters.filters)}; use --decoder pyav")
        return PyAVDecoder(src, batch=batch, info=info, filters=filters)
    if backend == "dali" or (backend == "auto" and torch.cuda.is_available()):
        from .dali import DALIDecoder

        try:
            return DALIDecoder(src, batch=batch, info=info)
        except BackendUnavailableError:
            if backend == "dali":
                raise
    return PyAVDecoder(src, batch=batch, info=info)


__all__ = ["DECODERS", "Decoder", "EncodeConfig", "PyAVDecoder", "PyAVEncoder", "open_decoder", "probe", "read_image", "write_png"]
