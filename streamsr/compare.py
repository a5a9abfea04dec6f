"""compare_picture(): one before/after picture a person can look at.

Top: the source frame upscaled by bicubic (left) beside the model's frame (right), each labelled.
Bottom: the same crop of both, the region with the most detail in the model's frame, enlarged so
its pixels can be seen. The model's frame is computed, or read from an upscaled file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from .errors import InputError, OutputError
from .images import is_image
from .io.images import read_picture
from .io.probe import open_input
from .upscaler import Upscaler, bicubic_upscale

PANEL_WIDTH = 960
"""Width of each half of the overview, in pixels of the picture."""
ZOOM_SIDE = 480
"""Side of each enlarged crop in the picture."""
LABEL_HEIGHT = 24


@dataclass(frozen=True)
class Comparison:
    picture: Image.Image
    crop: tuple[int, int, int]
    """The enlarged region of the upscaled frame: x, y (top left) and side, in its pixels."""
    seconds: float
    """Time of the frame in the source (0 for an image)."""


def frame_at(path: Path, seconds: float) -> tuple[np.ndarray, float]:
    """The first frame shown at or after `seconds` as (H, W, 3) uint8 RGB, and its time."""
    if is_image(path):
        rgb = read_picture(path).rgb
        if rgb.dtype != torch.uint8:
            rgb = (rgb.float() / 257).round().to(torch.uint8)
        return rgb.permute(1, 2, 0).numpy(), 0.0
    with open_input(path) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        if seconds > 0 and tb is not None:
            container.seek(int(seconds / tb), stream=stream, backward=True)
        try:
            last = None
            for frame in container.decode(stream):
                last = frame
                if frame.pts is not None and tb is not None and float(frame.pts * tb) >= seconds - 1e-6:
                    break
        except av.FFmpegError as e:
            raise InputError(f"{path}: cannot decode a frame at {seconds:g} s ({e})") from e
        if last is None:
            raise InputError(f"{path}: no frame at {seconds:g} s")
        shown = float(last.pts * tb) if last.pts is not None and tb is not None else seconds
        return last.to_ndarray(format="rgb24"), shown


def most_detailed(rgb: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left corner of the `side` x `side` window with the most gradient energy."""
    grey = torch.from_numpy(rgb).float().mean(-1)
    energy = (grey[1:, :-1] - grey[:-1, :-1]).abs() + (grey[:-1, 1:] - grey[:-1, :-1]).abs()
    h, w = energy.shape
    side = min(side, h, w)
    step = max(1, side // 4)
    sums = F.avg_pool2d(energy[None, None], side, stride=step)[0, 0]
    index = int(sums.argmax())
    return (index % sums.shape[1]) * step, (index // sums.shape[1]) * step


def _labelled(image: Image.Image, text: str) -> Image.Image:
    canvas = Image.new("RGB", (image.width, image.height + LABEL_HEIGHT), "black")
    canvas.paste(image, (0, LABEL_HEIGHT))
    ImageDraw.Draw(canvas).text((6, 5), text, fill="white")
    return canvas


@dataclass(frozen=True)
class BeforeAfter:
    """One frame upscaled by bicubic and by the model, at the same size: (H, W, 3) uint8 RGB each."""

    bicubic: np.ndarray
    upscaled: np.ndarray
    scale: int
    name: str
    """What made `upscaled`: the model's name, or the upscaled file's."""
    seconds: float
    """Time of the frame in the source (0 for an image)."""


def before_after(source: Path, upscaled: Path | None = None, *, at: float = 0.0,
                 upscaler: Upscaler | None = None) -> BeforeAfter:
    """The frame of `source` shown at `at` seconds, upscaled by bicubic and by the model (or read
    from `upscaled`, a file the model wrote, at the same time)."""
    lr, shown = frame_at(source, at)
    if upscaled is not None:
        sr, _ = frame_at(upscaled, shown)
        scale = sr.shape[0] // lr.shape[0]
        if scale < 2 or sr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
            raise InputError(f"{upscaled}: {sr.shape[1]}x{sr.shape[0]} is not a whole multiple of the source's "
                             f"{lr.shape[1]}x{lr.shape[0]}")
        name = upscaled.name
    else:
        if upscaler is None:
            raise ValueError("give an upscaler or an upscaled file")
        frames = torch.from_numpy(lr).permute(2, 0, 1)[None]
        sr = upscaler.upscale_frames(frames)[0].cpu().permute(1, 2, 0).numpy()
        scale, name = upscaler.scale, upscaler.model.name
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)
    bicubic = bicubic_upscale(x, scale)[0].mul(255).round().byte().permute(1, 2, 0).numpy()
    return BeforeAfter(bicubic, np.ascontiguousarray(sr), scale, name, shown)


def compare_picture(source: Path, upscaled: Path | None = None, *, at: float = 0.0,
                    upscaler: Upscaler | None = None) -> Comparison:
    """Bicubic beside the model (or beside `upscaled`, a file the model wrote) at `at` seconds."""
    pair = before_after(source, upscaled, at=at, upscaler=upscaler)
    bicubic, sr, scale, name = pair.bicubic, pair.upscaled, pair.scale, pair.name
    h, w = sr.shape[:2]
    side = max(16, min(h, w) // 4)
    cx, cy = most_detailed(sr, side)
    side = min(side, h, w)
    panel = (PANEL_WIDTH, max(1, round(h * PANEL_WIDTH / w)))
    halves = [_labelled(Image.fromarray(img).resize(panel, Image.Resampling.LANCZOS), label)
              for img, label in ((bicubic, f"bicubic x{scale}"), (sr, name))]
    crops = [_labelled(Image.fromarray(np.ascontiguousarray(img[cy:cy + side, cx:cx + side]))
                       .resize((ZOOM_SIDE, ZOOM_SIDE), Image.Resampling.NEAREST), f"{label}, detail at ({cx}, {cy})")
             for img, label in ((bicubic, "bicubic"), (sr, name))]
    top_h, bottom_h = halves[0].height, crops[0].height
    picture = Image.new("RGB", (2 * PANEL_WIDTH, top_h + bottom_h), "black")
    picture.paste(halves[0], (0, 0))
    picture.paste(halves[1], (PANEL_WIDTH, 0))
    offset = (PANEL_WIDTH - ZOOM_SIDE) // 2
    picture.paste(crops[0], (offset, top_h))
    picture.paste(crops[1], (PANEL_WIDTH + offset, top_h))
    return Comparison(picture, (cx, cy, side), pair.seconds)


def save_picture(comparison: Comparison, path: Path) -> None:
    """Write the picture (format by suffix: PNG, JPEG, WebP)."""
    try:
        comparison.picture.save(path)
    except (OSError, ValueError) as e:
        raise OutputError(f"{path}: cannot write the comparison ({e})") from e
