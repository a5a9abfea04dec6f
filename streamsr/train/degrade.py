"""Degradations for training and evaluation. MATLAB-compatible bicubic `imresize` first of all.

Every published SR table makes LR images with MATLAB's ``imresize(hr, 1/s, 'bicubic')``
(antialiased, symmetric padding, a = -0.5) and rounds to uint8; PIL's and torch's bicubic
differ from it by tenths of a dB, so we build MATLAB's weight matrices ourselves.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache

import av
import numpy as np
import torch
from torch import Tensor


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=64)
def _resize_matrix(in_len: int, out_len: int, scale: float) -> Tensor:
    """Dense (out_len, in_len) float64 matrix applying MATLAB's bicubic along one axis."""
    width = 4.0
    antialias = scale < 1
    if antialias:
        width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    weights = scale * _cubic(dist * scale) if antialias else _cubic(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric padding at the borders, as MATLAB's imresize.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    m = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(m, (np.repeat(np.arange(out_len), taps), cols.ravel()), weights.ravel())
    return torch.from_numpy(m)


def imresize(img: Tensor, scale: float, *, out_hw: tuple[int, int] | None = None) -> Tensor:
    """MATLAB ``imresize(img, scale, 'bicubic')`` on a (..., H, W) tensor.

    A uint8 input gives a uint8 output rounded as MATLAB does; a float input gives float64.
    """
    h, w = img.shape[-2:]
    oh, ow = out_hw if out_hw is not None else (math.ceil(h * scale), math.ceil(w * scale))
    x = img.to(torch.float64)
    # MATLAB resizes the dimension with the smaller scale first; with equal scales, rows first.
    x = torch.einsum("oh,...hw->...ow", _resize_matrix(h, oh, scale), x)
    x = torch.einsum("pw,...hw->...hp", _resize_matrix(w, ow, scale), x)
    if img.dtype == torch.uint8:
        return x.round_().clamp_(0, 255).to(torch.uint8)
    return x


def modcrop(img: Tensor, scale: int) -> Tensor:
    """Crop (..., H, W) so that H and W are multiples of `scale` (top-left aligned)."""
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


def bicubic_lr(hr: Tensor, scale: int) -> Tensor:
    """The standard "BI" degradation: MATLAB bicubic downscale of a modcropped uint8 image."""
    return imresize(modcrop(hr, scale), 1 / scale)


# -- compression ---------------------------------------------------------------------------------

CODECS = {"x264": "libx264", "x265": "libx265"}
"""Degradation codec names and the PyAV encoders behind them."""


@dataclass(frozen=True)
class Compression:
    """LR passed through a video codec, as real sources are: ``x264:crf=28``, ``x265:crf=18-35``,
    ``x264+x265:crf=18-35,noise=2`` (several codecs: one drawn per sequence; a CRF range: one CRF
    drawn per sequence; ``noise``: Gaussian noise of up to that many 8-bit code values added
    before encoding, as a sensor adds it)."""

    codecs: tuple[str, ...]
    crf: tuple[int, int]
    noise: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> Compression:
        usage = f"degradation {spec!r}: expected CODEC[+CODEC]:crf=N[-M][,noise=SIGMA] with CODEC one of {', '.join(CODECS)}"
        head, _, tail = spec.partition(":")
        codecs = tuple(head.split("+"))
        if not all(c in CODECS for c in codecs):
            raise ValueError(usage)
        options = dict(part.partition("=")[::2] for part in tail.split(",") if part)
        if set(options) - {"crf", "noise"} or "crf" not in options:
            raise ValueError(usage)
        try:
            lo, _, hi = options["crf"].partition("-")
            crf = (int(lo), int(hi or lo))
            noise = float(options.get("noise", 0))
        except ValueError as e:
            raise ValueError(usage) from e
        if not 0 <= crf[0] <= crf[1] <= 51 or noise < 0:
            raise ValueError(f"degradation {spec!r}: crf must be within 0-51 (low-high) and noise not negative")
        return cls(codecs, crf, noise)

    def __str__(self) -> str:
        crf = str(self.crf[0]) if self.crf[0] == self.crf[1] else f"{self.crf[0]}-{self.crf[1]}"
        return f"{'+'.join(self.codecs)}:crf={crf}" + (f",noise={self.noise:g}" if self.noise else "")

    def apply(self, frames: list[Tensor], rng: np.random.Generator | None = None) -> list[Tensor]:
        """Encode uint8 (3, h, w) frames as one video and decode them back (a draw of codec, CRF
        and noise per call; without `rng`, the first codec and the low CRF, no noise)."""
        if rng is None:
            return compress_frames(frames, self.codecs[0], self.crf[0])
        codec = self.codecs[int(rng.integers(len(self.codecs)))]
        crf = int(rng.integers(self.crf[0], self.crf[1] + 1))
        if self.noise:
            sigma = float(rng.uniform(0, self.noise))
            frames = [(f.float() + torch.from_numpy(rng.normal(0, sigma, f.shape)).float()).round_().clamp_(0, 255).to(torch.uint8)
                      for f in frames]
        return compress_frames(frames, codec, crf)


def compress_frames(frames: list[Tensor], codec: str, crf: int) -> list[Tensor]:
    """uint8 RGB (3, h, w) frames through `codec` (x264/x265, 4:2:0, preset medium) at `crf`, decoded back."""
    h, w = frames[0].shape[-2:]
    # Pad by replicating the edge (cropped after decoding) to whole 16 px macroblocks and at least
    # one 64 px coding tree unit: x265 corrupts its heap on smaller or ragged frames.
    ph, pw = (max(64, side + (-side % 16)) - side for side in (h, w))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream(CODECS[codec], rate=25)
        stream.width, stream.height, stream.pix_fmt = w + pw, h + ph, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        if codec == "x265":
            stream.options["x265-params"] = "log-level=none"
        for f in frames:
            rgb = torch.nn.functional.pad(f[None].float(), (0, pw, 0, ph), mode="replicate")[0].to(torch.uint8)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb.permute(1, 2, 0).numpy()), format="rgb24")
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer) as src:
        decoded = [torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1)[:, :h, :w].contiguous()
                   for f in src.decode(video=0)]
    if len(decoded) != len(frames):
        raise RuntimeError(f"{codec} returned {len(decoded)} of {len(frames)} frames")
    return decoded


def compressed_lr(lr: Tensor, compression: Compression, rng: np.random.Generator) -> Tensor:
    """One training LR image through `compression` as the last frame of a short pan.

    Two frames shifted by a few pixels come first, so the image is coded as a predicted frame,
    with the motion-compensated artefacts of real video rather than those of a still."""
    shifts = rng.integers(-3, 4, size=(2, 2))
    lead = [torch.roll(lr, shifts=(int(dy), int(dx)), dims=(-2, -1)) for dy, dx in shifts]
    return compression.apply([*lead, lr], rng)[-1]
