"""upscale_image(): one still image in, the same kind of image out.

PNG, JPEG, WebP, TIFF and BMP keep their format (by the output's suffix), their mode (RGB stays RGB,
grayscale stays grayscale, alpha is kept and upscaled bicubically) and their depth (16-bit PNG and
TIFF stay 16-bit). The EXIF orientation is applied to the pixels, so the output is upright for
every viewer; the ICC profile and the rest of the EXIF data are copied (8-bit outputs). Written to a
temporary name and renamed, like videos (`io.atomic`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import torch

from .config import UpscaleConfig
from .errors import ConfigError, OutputError
from .frames import FrameBatch, VideoInfo
from .io.atomic import AtomicOutput
from .io.images import DEEP_FORMATS, read_picture, write_picture
from .io.probe import check_source
from .models import SCALES
from .outputs import check_output
from .stages import check_scale, make_upscaler
from .stages.resize import Resize, Target, choose_scale, plan_shape
from .upscaler import Upscaler, bicubic_upscale

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                  ".tiff": "TIFF", ".bmp": "BMP"}
"""Image file suffixes and the format each is written in."""
def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _resized(resize: Resize, rgb: torch.Tensor) -> torch.Tensor:
    batch = FrameBatch(data=rgb[None].contiguous(), pts=torch.zeros(1, dtype=torch.int64), time_base=Fraction(1))
    return next(resize(iter([batch]))).data[0]


@dataclass(frozen=True)
class ImageResult:
    output: Path
    width: int
    height: int
    bits: int
    seconds: float


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
    if cfg.crop or cfg.ivtc or cfg.field_rate:
        raise ConfigError("--crop, --ivtc and --field-rate take a video; an image is upscaled whole")
    target = Target(cfg.width, cfg.height, cfg.fit, cfg.square_pixels)  # type: ignore[arg-type]
    picture = read_picture(src)
    h, w = picture.rgb.shape[-2:]
    info = VideoInfo(width=w, height=h, fps=Fraction(0), time_base=Fraction(1), num_frames_estimate=1, codec="",
                     pix_fmt="rgb24", bit_depth=8)
    if upscaler is None:
        scale = cfg.scale if cfg.model or cfg.scale is not None or not target.sized else choose_scale(info, target, SCALES)
        upscaler = make_upscaler(replace(cfg, scale=scale))
    check_scale(upscaler, cfg.scale)
    scale = upscaler.scale
    dst = Path(dst) if dst is not None else src.with_name(f"{src.stem}_x{scale}{src.suffix}")
    fmt = IMAGE_SUFFIXES.get(dst.suffix.lower())
    if fmt is None:
        raise OutputError(f"{dst}: an image needs an image suffix ({', '.join(sorted(IMAGE_SUFFIXES))})")
    check_output(src, dst, overwrite=cfg.overwrite)
    start = time.perf_counter()
    sr = upscaler.upscale_frames(picture.rgb[None])[0].cpu()
    alpha = None
    if picture.alpha is not None:  # alpha is no picture content: bicubic, not the model
        peak = 65535.0 if picture.alpha.dtype == torch.uint16 else 255.0
        big = bicubic_upscale(picture.alpha[None].float().div(peak), scale)
        alpha = big[0].mul_(peak).round_().to(picture.alpha.dtype)
    shape = plan_shape(info, target, scale)
    if shape.resized:  # a target size: the same resampling and fit as for a video's frames
        resize = Resize(shape)
        sr = _resized(resize, sr)
        alpha = _resized(resize, alpha.expand(3, -1, -1))[:1] if alpha is not None else None
    result = replace(picture, rgb=sr, alpha=alpha)
    with AtomicOutput(dst) as tmp:
        try:
            write_picture(result, tmp, fmt)
        except OSError as e:  # also Pillow's refusals, which are no errno
            raise OutputError(f"{dst}: cannot be written ({e.strerror or e})") from e
    bits = 16 if sr.dtype == torch.uint16 and fmt in DEEP_FORMATS else 8
    return ImageResult(dst, sr.shape[-1], sr.shape[-2], bits, time.perf_counter() - start)
