"""Pixel references for the tests that look at the picture, independent of swscale.

YUV <-> RGB here follows the standards' own equations (ITU-R BT.601/709/2020 matrices, H.273
limited and full range), so a test that compares an output's colours with these catches a
pipeline that converts with the wrong matrix or range, which a test of the tags alone does not.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

KR_KB = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114), 9: (0.2627, 0.0593)}
"""Luma weights of red and blue, by AVColorSpace value (1 BT.709, 5/6 BT.601, 9 BT.2020 NCL)."""

SWATCHES = np.array([
    [0.80, 0.12, 0.10], [0.15, 0.75, 0.20], [0.12, 0.20, 0.85], [0.85, 0.80, 0.15],
    [0.15, 0.80, 0.82], [0.78, 0.18, 0.80], [0.50, 0.50, 0.50], [0.88, 0.66, 0.52],
])
"""Saturated colours (where matrices differ most) and a grey, away from clipping, in [0, 1]."""
PATCH = 16
"""Side of one swatch in source pixels (even, so 4:2:0 chroma never straddles two swatches)."""


def swatch_image(columns: int = 4, rows: int = 2) -> np.ndarray:
    """(rows*PATCH, columns*PATCH, 3) float RGB in [0, 1]: SWATCHES as flat patches, row by row."""
    image = np.zeros((rows * PATCH, columns * PATCH, 3))
    for i, colour in enumerate(SWATCHES[: rows * columns]):
        r, c = divmod(i, columns)
        image[r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH] = colour
    return image


def swatch_centres(rgb: np.ndarray, scale: int, *, margin: int = 5) -> np.ndarray:
    """The mean colour of each swatch's centre in an image `scale` times the swatch image,
    `margin` source pixels in from its edges (where resampling blends neighbours): (N, 3)."""
    side = PATCH * scale
    rows, columns = rgb.shape[0] // side, rgb.shape[1] // side
    m = margin * scale
    return np.array([rgb[r * side + m : (r + 1) * side - m, c * side + m : (c + 1) * side - m].reshape(-1, 3).mean(0)
                     for r in range(rows) for c in range(columns)])


def swatch_spread(rgb: np.ndarray, scale: int, *, margin: int = 5) -> float:
    """The largest range of any channel inside any swatch centre: a flat patch must stay flat."""
    side = PATCH * scale
    rows, columns = rgb.shape[0] // side, rgb.shape[1] // side
    m = margin * scale
    return max(float(np.ptp(rgb[r * side + m : (r + 1) * side - m, c * side + m : (c + 1) * side - m], axis=(0, 1)).max())
               for r in range(rows) for c in range(columns))


def rgb_to_yuv(rgb: np.ndarray, *, matrix: int, full: bool, bits: int) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] -> (H, W, 3) integer Y, Cb, Cr codes."""
    kr, kb = KR_KB[matrix]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    if full:
        peak = (1 << bits) - 1
        codes = np.stack([y * peak, cb * peak + (1 << (bits - 1)), cr * peak + (1 << (bits - 1))], -1)
    else:
        step = 1 << (bits - 8)
        codes = np.stack([(16 + 219 * y) * step, (128 + 224 * cb) * step, (128 + 224 * cr) * step], -1)
    return np.clip(np.round(codes), 0, (1 << bits) - 1).astype(np.int64)


def yuv_to_rgb(yuv: np.ndarray, *, matrix: int, full: bool, bits: int) -> np.ndarray:
    """The inverse of `rgb_to_yuv`: (H, W, 3) Y, Cb, Cr codes -> float RGB (unclipped)."""
    kr, kb = KR_KB[matrix]
    yuv = yuv.astype(np.float64)
    if full:
        peak = (1 << bits) - 1
        y, cb, cr = yuv[..., 0] / peak, (yuv[..., 1] - (1 << (bits - 1))) / peak, (yuv[..., 2] - (1 << (bits - 1))) / peak
    else:
        step = 1 << (bits - 8)
        y, cb, cr = (yuv[..., 0] / step - 16) / 219, (yuv[..., 1] / step - 128) / 224, (yuv[..., 2] / step - 128) / 224
    r = y + 2 * (1 - kr) * cr
    b = y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.stack([r, g, b], -1)


def planes_420(yuv: np.ndarray) -> np.ndarray:
    """(H, W, 3) codes -> PyAV's (H*3/2, W) yuv420p layout (chroma from each 2x2 block's top left)."""
    h, w = yuv.shape[:2]
    u = yuv[::2, ::2, 1].reshape(h // 4, w)
    v = yuv[::2, ::2, 2].reshape(h // 4, w)
    return np.concatenate([yuv[..., 0], u, v])


def unpack_420(planes: np.ndarray) -> np.ndarray:
    """PyAV's (H*3/2, W) yuv420p layout -> (H, W, 3) codes, chroma repeated over each 2x2 block."""
    w = planes.shape[1]
    h = planes.shape[0] * 2 // 3
    u = planes[h : h + h // 4].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1)
    v = planes[h + h // 4 :].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1)
    return np.stack([planes[:h], u, v], -1)


COLOURS = {5: (5, 6), 6: (6, 6), 1: (1, 1), 9: (9, 14)}
"""Primaries and transfer to tag with each matrix: BT.601 (PAL, NTSC), BT.709, BT.2020 10-bit."""


def make_swatch_clip(path: Path, *, matrix: int, full: bool, bits: int, frames: int = 3, audio: bool = False) -> Path:
    """Lossless (FFV1) 4:2:0 clip of `swatch_image()` whose YUV codes come from `rgb_to_yuv`, not
    from swscale, tagged with the matrix, its primaries and transfer, and the range."""
    primaries, transfer = COLOURS[matrix]
    fmt = "yuv420p" if bits == 8 else "yuv420p10le"
    planes = planes_420(rgb_to_yuv(swatch_image(), matrix=matrix, full=full, bits=bits))
    with av.open(str(path), "w") as out:
        v = out.add_stream("ffv1", rate=12)
        v.width, v.height, v.pix_fmt = planes.shape[1], planes.shape[0] * 2 // 3, fmt
        v.time_base = v.codec_context.time_base = Fraction(1, 12)
        cc = v.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = primaries, transfer, matrix, 2 if full else 1
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(planes.astype(np.uint8 if bits == 8 else np.uint16), format=fmt)
            frame.colorspace, frame.color_range = matrix, 2 if full else 1
            frame.pts, frame.time_base = i, Fraction(1, 12)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    return path


def decode_rgb_by_tags(path: Path) -> tuple[list[np.ndarray], dict[str, int]]:
    """Every frame of `path` as float RGB, converted from its raw 4:2:0 planes by the matrix and
    range it is tagged with (not by swscale), and those tags."""
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        frames = list(c.decode(video=0))
    tags = {"primaries": int(cc.color_primaries), "transfer": int(cc.color_trc), "matrix": int(frames[0].colorspace),
            "range": int(frames[0].color_range)}
    first = frames[0]
    if first.format.name not in ("yuv420p", "yuv420p10le"):
        raise AssertionError(f"expected 4:2:0 output, got {first.format.name}")
    bits = 8 if first.format.name == "yuv420p" else 10
    rgb = [yuv_to_rgb(unpack_420(f.to_ndarray()), matrix=tags["matrix"], full=tags["range"] == 2, bits=bits)
           for f in frames]
    return rgb, tags


def read_rgb(path: Path) -> np.ndarray:
    """An image or the first frame of a video as float RGB in [0, 1] at the file's depth."""
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    deep = any(comp.bits > 8 for comp in frame.format.components)
    return frame.to_ndarray(format="rgb48le" if deep else "rgb24") / (65535.0 if deep else 255.0)
