"""The output's shape: a target size, square pixels, and the fit of one aspect into another.

`plan_shape` is arithmetic on sizes (what the model must reach, the picture's size after it, the
frame it sits in); `Resize` is the stage after the model that resamples each frame to that
picture and pads or crops it into its frame.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal

import av
import numpy as np
import torch

from ..errors import ConfigError
from ..frames import FrameBatch, VideoInfo

Fit = Literal["pad", "crop", "stretch"]
FITS: tuple[str, ...] = typing.get_args(Fit)

RESAMPLER = "bicubic"
"""swscale's bicubic. After the model, Lanczos, spline and bicubic score within 0.01 dB of each other
and 0.15-0.2 dB above area and bilinear; bicubic is the fastest of the three (docs/benchmarks.md,
"Resampling to a target size")."""


def even(x: float) -> int:
    """The nearest even whole number, at least 2: 4:2:0 video needs even sizes."""
    return max(2, 2 * round(x / 2))


@dataclass(frozen=True)
class Target:
    """The output size asked for. A target size is a display size: its pixels are square."""

    width: int | None = None
    height: int | None = None
    fit: Fit = "pad"
    """When both sides are given and the picture's aspect differs: "pad" fits it inside with black
    bars, "crop" fills the frame and cuts the overflow, "stretch" fills it by distorting."""
    square_pixels: bool = False
    """Resample a non-square-pixel source to square pixels at its display aspect (no target size needed)."""

    def __post_init__(self) -> None:
        for side in (self.width, self.height):
            if side is not None and (side < 2 or side % 2):
                raise ConfigError(f"a target size must be even and at least 2 pixels, got {side}")
        if self.fit not in FITS:
            raise ConfigError(f"fit must be one of {', '.join(FITS)}, got {self.fit!r}")

    @property
    def sized(self) -> bool:
        return self.width is not None or self.height is not None

    @property
    def square(self) -> bool:
        return self.square_pixels or self.sized


@dataclass(frozen=True)
class Shape:
    """Where the model's output goes: resampled to `picture` and placed at `offset` in a `canvas`
    frame (a negative offset cuts the picture: fit crop). `picture` None: the model's output as it is."""

    canvas: tuple[int, int]
    picture: tuple[int, int] | None = None
    offset: tuple[int, int] = (0, 0)
    sample_aspect_ratio: Fraction = Fraction(1)

    @property
    def resized(self) -> bool:
        return self.picture is not None

    def describe(self, model_size: tuple[int, int]) -> str:
        w, h = self.canvas
        if self.picture is None:
            return f"{w}x{h}"
        pw, ph = self.picture
        how = f"{model_size[0]}x{model_size[1]} resampled to {pw}x{ph} ({RESAMPLER})"
        if (pw, ph) == (w, h):
            return how
        return how + (f", padded to {w}x{h}" if pw <= w and ph <= h else f", cropped to {w}x{h}")


def _picture_size(info: VideoInfo, target: Target, scale: int) -> tuple[int, int]:
    """The picture's size as shown, in output pixels, before any fit into a frame."""
    dar = info.display_aspect_ratio
    if target.width is not None and target.height is not None:
        w, h = target.width, target.height
        if target.fit == "stretch":
            return w, h
        wider = Fraction(w, h) > dar  # the frame is wider than the picture
        if (target.fit == "pad") == wider:
            return even(h * dar), h
        return w, even(w / dar)
    if target.width is not None:
        return target.width, even(target.width / dar)
    if target.height is not None:
        return even(target.height * dar), target.height
    # Square pixels at the model's scale: the side whose pixels are the longer keeps its samples.
    if info.sample_aspect_ratio >= 1:
        return even(info.height * scale * dar), info.height * scale
    return info.width * scale, even(info.width * scale / dar)


def needed_scale(info: VideoInfo, target: Target) -> float:
    """The factor the model must reach for `target` (1.0 when it asks for no size)."""
    if not target.sized:
        return 1.0
    w, h = _picture_size(info, target, 1)
    return max(w / info.width, h / info.height)


def choose_scale(info: VideoInfo, target: Target, scales: Sequence[int]) -> int:
    """The smallest of `scales` that reaches `target`; the largest when none does."""
    need = needed_scale(info, target)
    return min((s for s in scales if s >= need - 1e-9), default=max(scales))


def plan_shape(info: VideoInfo, target: Target, scale: int) -> Shape:
    """The output's shape for a picture described by `info`, upscaled x`scale` by the model."""
    model = (info.width * scale, info.height * scale)
    if not target.square:
        return Shape(canvas=model, sample_aspect_ratio=info.sample_aspect_ratio)
    picture = _picture_size(info, target, scale)
    canvas = (target.width or picture[0], target.height or picture[1])
    offset = ((canvas[0] - picture[0]) // 2, (canvas[1] - picture[1]) // 2)
    if picture == model and canvas == model:
        return Shape(canvas=model)
    return Shape(canvas=canvas, picture=picture, offset=(offset[0] - offset[0] % 2, offset[1] - offset[1] % 2))


class Resize:
    """Each upscaled frame resampled to the planned picture size and placed in its frame (black
    bars around it, or its overflow cut off). Frames keep their pts."""

    def __init__(self, shape: Shape, resampler: str = RESAMPLER) -> None:
        if shape.picture is None:
            raise ValueError("nothing to resize: the shape keeps the model's output")
        self.shape = shape
        self._interpolation = resampler.upper()

    def _resample(self, rgb: np.ndarray) -> np.ndarray:
        fmt = "rgb24" if rgb.dtype == np.uint8 else "rgb48le"
        width, height = typing.cast(tuple[int, int], self.shape.picture)
        frame = av.VideoFrame.from_ndarray(rgb, format=fmt)
        return frame.reformat(width=width, height=height, format=fmt, interpolation=self._interpolation).to_ndarray()

    def _place(self, picture: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) into the (N, 3, H, W) canvas at the offset (black around it, or cut)."""
        cw, ch = self.shape.canvas
        x, y = self.shape.offset
        n, c, h, w = picture.shape
        if (w, h) == (cw, ch):
            return picture
        canvas = torch.zeros((n, c, ch, cw), dtype=picture.dtype)
        sx, sy = max(0, -x), max(0, -y)  # what is cut off the picture
        dx, dy = max(0, x), max(0, y)  # where it starts in the canvas
        ww, hh = min(w - sx, cw - dx), min(h - sy, ch - dy)
        canvas[:, :, dy:dy + hh, dx:dx + ww] = picture[:, :, sy:sy + hh, sx:sx + ww]
        return canvas

    def __call__(self, batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
        for batch in batches:
            hwc = batch.data.cpu().permute(0, 2, 3, 1).contiguous().numpy()
            resampled = np.stack([self._resample(rgb) for rgb in hwc])
            data = torch.from_numpy(resampled).permute(0, 3, 1, 2)
            yield replace(batch, data=self._place(data).contiguous())


def output_info(info: VideoInfo, shape: Shape) -> VideoInfo:
    """The description of the frames a sink gets: the canvas's size and pixel aspect."""
    return replace(info, width=shape.canvas[0], height=shape.canvas[1], sample_aspect_ratio=shape.sample_aspect_ratio)


__all__ = ["FITS", "RESAMPLER", "Fit", "Resize", "Shape", "Target", "choose_scale", "even", "needed_scale",
           "output_info", "plan_shape"]
