"""Still images: PyAV decodes and encodes the pixels at their full depth (16-bit PNG and TIFF
included); Pillow reads and writes what an image carries besides (EXIF, ICC profile, mode) and
the 8-bit formats."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import InputError
from .probe import open_input


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


DEEP_FORMATS = {"PNG": ("png", "rgb48be", "gray16be", "rgba64be"), "TIFF": ("tiff", "rgb48le", "gray16le", "rgba64le")}
"""Image formats that hold 16 bits per channel: the PyAV encoder and its RGB, grey and RGBA pixel formats."""
_EXIF_ORIENTATION = 0x0112
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


@dataclass(frozen=True)
class Picture:
    """Decoded pixels, upright: colour (3, H, W) uint8/uint16, optional alpha (1, H, W), and what
    the file carried besides."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    grey: bool
    icc_profile: bytes | None
    exif: Image.Exif | None


def _upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to (H, W, C) pixels."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
           8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[orientation](pixels)) if orientation in ops else pixels


def read_picture(path: Path) -> Picture:
    """Decode `path` with PyAV at its full depth; orientation, ICC profile and EXIF through Pillow."""
    try:
        with Image.open(path) as header:
            exif = header.getexif()
            icc = header.info.get("icc_profile")
            grey = header.mode in _GREY_MODES
            has_alpha = header.mode in _ALPHA_MODES or (header.mode == "P" and "transparency" in header.info)
        with open_input(path) as container:
            frame = next(container.decode(video=0))
    except (OSError, av.FFmpegError, StopIteration, Image.DecompressionBombError) as e:
        raise InputError(f"{path}: cannot read as an image ({e})") from e
    deep = any(c.bits > 8 for c in frame.format.components)
    pixels = frame.to_ndarray(format=("rgba64le" if deep else "rgba") if has_alpha else ("rgb48le" if deep else "rgb24"))
    pixels = _upright(pixels, int(exif.get(_EXIF_ORIENTATION, 1)))
    chw = torch.from_numpy(pixels).permute(2, 0, 1)
    rgb, alpha = chw[:3].contiguous(), chw[3:].contiguous() if has_alpha else None
    if _EXIF_ORIENTATION in exif:
        exif[_EXIF_ORIENTATION] = 1  # the pixels are upright now
    return Picture(rgb, alpha, grey, icc, exif or None)


def write_picture(picture: Picture, path: Path, fmt: str) -> None:
    """Write `picture` to `path` in image format `fmt` (Pillow for 8 bits, PyAV for 16)."""
    planes = [picture.rgb] + ([picture.alpha] if picture.alpha is not None else [])
    pixels = torch.cat(planes).permute(1, 2, 0).contiguous().numpy()
    deep = picture.rgb.dtype == torch.uint16
    if deep and fmt in DEEP_FORMATS:
        codec, rgb_fmt, grey_fmt, rgba_fmt = DEEP_FORMATS[fmt]
        src_fmt = "rgba64le" if picture.alpha is not None else "rgb48le"
        out_fmt = rgba_fmt if picture.alpha is not None else grey_fmt if picture.grey else rgb_fmt
        frame = av.VideoFrame.from_ndarray(pixels, format=src_fmt)
        with av.open(str(path), "w", format="image2") as out:
            stream = out.add_stream(codec)
            stream.width, stream.height, stream.pix_fmt = pixels.shape[1], pixels.shape[0], out_fmt
            for packet in [*stream.encode(frame.reformat(format=out_fmt)), *stream.encode(None)]:
                out.mux(packet)
        return
    if deep:  # a format without 16-bit colour: its best is 8 bits
        pixels = (pixels.astype(np.float32) / 257.0).round().astype(np.uint8)
    image = Image.fromarray(pixels, "RGBA" if picture.alpha is not None else "RGB")
    if picture.grey:
        image = image.convert("LA" if picture.alpha is not None else "L")
    if fmt == "JPEG" and image.mode in ("RGBA", "LA"):
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    options: dict[str, object] = {}
    if picture.icc_profile:
        options["icc_profile"] = picture.icc_profile
    if picture.exif is not None and fmt in ("JPEG", "WEBP", "PNG", "TIFF"):
        options["exif"] = picture.exif.tobytes()
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = 95
    image.save(path, format=fmt, **options)
