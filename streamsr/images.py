"""upscale_image(): one still image in, the same kind of image out.

PNG, JPEG, WebP, TIFF and BMP keep their format (by the output's suffix), their mode (RGB stays RGB,
grayscale stays grayscale, alpha is kept and upscaled bicubically) and their depth (16-bit PNG and
TIFF stay 16-bit). The EXIF orientation is applied to the pixels, so the output is upright for
every viewer; the ICC profile and the rest of the EXIF data are copied (8-bit outputs). Written to a
temporary name and renamed, like videos.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .engine import Upscaler
from .errors import InputError, OutputError
from .io.probe import check_source
from .partials import stale_partials, temporary_path
from .pipeline import UpscaleConfig, check_output, check_scale, make_upscaler

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                  ".tiff": "TIFF", ".bmp": "BMP"}
"""Image file suffixes and the format each is written in."""
_DEEP_FORMATS = {"PNG": ("png", "rgb48be", "gray16be"), "TIFF": ("tiff", "rgb48le", "gray16le")}
"""Formats that hold 16 bits per channel: the PyAV encoder and its RGB and grey pixel formats."""
_EXIF_ORIENTATION = 0x0112
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class Picture:
    """Decoded pixels, upright: colour (3, H, W) uint8/uint16, optional alpha (1, H, W), and what
    the file carried besides."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    grey: bool
    icc_profile: bytes | None
    exif: Image.Exif | None


@dataclass(frozen=True)
class ImageResult:
    output: Path
    width: int
    height: int
    bits: int
    seconds: float


def _upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to (H, W, C) pixels."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 1)[::-1],
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
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (OSError, av.FFmpegError, StopIteration, Image.DecompressionBombError) as e:
        raise InputError(f"{path}: cannot read as an image ({e})") from e
    deep = any(c.bits > 8 for c in frame.format.components)
    pixels = frame.to_ndarray(format=("rgba64le" if deep else "rgba") if has_alpha else ("rgb48le" if deep else "rgb24"))
    pixels = _upright(pixels, int(exif.get(_EXIF_ORIENTATION, 1)))
    chw = torch.from_numpy(pixels.astype(np.int32) if deep else pixels).permute(2, 0, 1)
    rgb = chw[:3].to(torch.uint16) if deep else chw[:3].contiguous()
    alpha = (chw[3:].to(torch.uint16) if deep else chw[3:].contiguous()) if has_alpha else None
    if _EXIF_ORIENTATION in exif:
        exif[_EXIF_ORIENTATION] = 1  # the pixels are upright now
    return Picture(rgb, alpha, grey, icc, exif or None)


def _bicubic(plane: torch.Tensor, scale: int) -> torch.Tensor:
    peak = 65535.0 if plane.dtype == torch.uint16 else 255.0
    x = plane[None].float().div(peak)
    y = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp_(0, 1)
    return y[0].mul_(peak).round_().to(plane.dtype)


def write_picture(picture: Picture, path: Path, fmt: str) -> None:
    """Write `picture` to `path` in image format `fmt` (Pillow for 8 bits, PyAV for 16)."""
    planes = [picture.rgb] + ([picture.alpha] if picture.alpha is not None else [])
    pixels = torch.cat(planes).permute(1, 2, 0).contiguous().numpy()
    deep = picture.rgb.dtype == torch.uint16
    if deep and fmt in _DEEP_FORMATS:
        codec, rgb_fmt, grey_fmt = _DEEP_FORMATS[fmt]
        src_fmt = "rgba64le" if picture.alpha is not None else "rgb48le"
        out_fmt = grey_fmt if picture.grey and picture.alpha is None else rgb_fmt
        if picture.alpha is not None:
            out_fmt = "rgba64be" if codec == "png" else "rgba64le"
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


def upscale_image(
    src: str | Path,
    dst: str | Path | None = None,
    config: UpscaleConfig | None = None,
    *,
    upscaler: Upscaler | None = None,
) -> ImageResult:
    """Upscale one image file (`IMAGE_SUFFIXES`) into `dst` (default ``NAME_x<scale>.<ext>`` beside it).

    Raises:
        InputError: not readable as an image. OutputError: `dst` must not or cannot be written.
        UnsupportedModelError: the model does not fit `config.scale`.
    """
    cfg = config or UpscaleConfig()
    src = check_source(src)
    if upscaler is None:
        upscaler = make_upscaler(cfg)
    check_scale(upscaler, cfg.scale)
    scale = upscaler.scale
    dst = Path(dst) if dst is not None else src.with_name(f"{src.stem}_x{scale}{src.suffix}")
    fmt = IMAGE_SUFFIXES.get(dst.suffix.lower())
    if fmt is None:
        raise OutputError(f"{dst}: an image needs an image suffix ({', '.join(sorted(IMAGE_SUFFIXES))})")
    check_output(src, dst, overwrite=cfg.overwrite)
    start = time.perf_counter()
    picture = read_picture(src)
    sr = upscaler.upscale_frames(picture.rgb[None])[0].cpu()
    alpha = _bicubic(picture.alpha, scale) if picture.alpha is not None else None
    result = replace(picture, rgb=sr, alpha=alpha)
    for leftover in stale_partials(dst):
        leftover.unlink(missing_ok=True)
    tmp = temporary_path(dst)
    try:
        write_picture(result, tmp, fmt)
        os.replace(tmp, dst)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"{dst}: cannot be written ({e.strerror or e})") from e
        raise
    bits = 16 if sr.dtype == torch.uint16 and fmt in _DEEP_FORMATS else 8
    return ImageResult(dst, sr.shape[-1], sr.shape[-2], bits, time.perf_counter() - start)
