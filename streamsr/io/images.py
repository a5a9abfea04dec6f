"""Still images through PyAV (PNG, WebP, JPEG, ...): no extra imaging dependency."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
from torch import Tensor

from ..errors import InputError


def read_image(path: str | Path) -> Tensor:
    """Decode an image file to a uint8 (3, H, W) RGB tensor (grayscale is replicated)."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            rgb = frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, StopIteration, OSError) as e:
        raise InputError(f"{path}: cannot read as an image ({e})") from e
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).contiguous()


def write_png(image: Tensor, path: str | Path) -> None:
    """Write a uint8 (3, H, W) RGB tensor as a PNG."""
    rgb = np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy())
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
