"""Shared fixtures: tiny media made on the fly with PyAV, tiny random-init weights, GPU markers."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from streamsr.models import save_weights
from streamsr.models.archs.safdn import SAFDN

REQUIRE_GPU = os.environ.get("STREAMSR_REQUIRE_GPU") == "1"


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("needs_cuda") and not torch.cuda.is_available() and not REQUIRE_GPU:
            item.add_marker(pytest.mark.skip(reason="CUDA not available"))
        if item.get_closest_marker("needs_dali") and not dali_available() and not REQUIRE_GPU:
            item.add_marker(pytest.mark.skip(reason="DALI not installed"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pattern(width: int, height: int, index: int) -> np.ndarray:
    """A moving colour pattern with edges and gradients, (H, W, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(1, width - 1) + index * 9) % 256
    g = (y * 255 // max(1, height - 1) + index * 5) % 256
    b = (((x // 6 + y // 6 + index) % 2) * 200 + 30)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def make_clip(
    path: Path,
    *,
    width: int = 64,
    height: int = 48,
    frames: int = 12,
    fps: int = 12,
    codec: str = "mpeg4",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    audio: bool = True,
    audio_codec: str = "aac",
    subtitle: bool = False,
    color: dict[str, int] | None = None,
    chapters: Sequence[tuple[int, int, str]] = (),
    options: dict[str, str] | None = None,
    painter: Callable[[int, int, int], np.ndarray] = pattern,
) -> Path:
    """Write a small clip: moving pattern video, optional 440 Hz AAC audio and an SRT cue.

    `pts` (in `time_base`) gives variable frame timing; default is one frame every 1/fps s.
    `painter(width, height, index)` draws each frame (default: `pattern`).
    """
    tb = time_base or Fraction(1, fps)
    frame_pts = list(pts) if pts is not None else list(range(frames))
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = width, height, pix_fmt
        v.options = options or {}
        v.time_base = tb
        v.codec_context.time_base = tb
        if color:
            for key, value in color.items():
                setattr(v.codec_context, key, value)
        a = out.add_stream(audio_codec, rate=48000 if audio_codec == "libopus" else 16000) if audio else None
        s = out.add_mux_stream("subrip") if subtitle else None  # pre-encoded text packets, no encoder
        if s is not None:
            s.metadata["language"] = "eng"
        if chapters:  # (start_ms, end_ms, title)
            out.set_chapters([{"id": i + 1, "start": a, "end": b, "time_base": Fraction(1, 1000), "metadata": {"title": t}}
                              for i, (a, b, t) in enumerate(chapters)])
        out.metadata["title"] = "streamsr test clip"
        out.start_encoding()
        if s is not None:
            _write_subtitle(out, s, text="hello subtitles", start_ms=0, end_ms=500)
        for i, p in enumerate(frame_pts):
            rgb = painter(width, height, i)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if color:
                frame = frame.reformat(format=pix_fmt, dst_colorspace=color.get("colorspace"),
                                       dst_color_range=color.get("color_range"))
            else:
                frame = frame.reformat(format=pix_fmt)
            frame.pts = p
            frame.time_base = tb
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            seconds = float((frame_pts[-1] + 1) * tb)
            _write_tone(out, a, seconds)
    return path


def _write_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    rate, chunk = stream.rate, 1024
    total = int(rate * seconds)
    t = 0
    while t < total:
        n = min(chunk, total - t)
        samples = (0.3 * np.sin(2 * math.pi * 440 * (np.arange(t, t + n) / rate))).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, t
        out.mux(stream.encode(frame))
        t += n
    out.mux(stream.encode(None))


def _write_subtitle(out: av.container.OutputContainer, stream: av.stream.Stream, *, text: str, start_ms: int, end_ms: int) -> None:
    packet = av.Packet(text.encode())
    packet.stream = stream
    packet.time_base = Fraction(1, 1000)
    packet.pts = packet.dts = start_ms
    packet.duration = end_ms - start_ms
    out.mux(packet)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_mp4(media_dir: Path) -> Path:
    """12 frames of 64x48 mpeg4 at 12 fps + 1 s of 440 Hz AAC, in MP4."""
    return make_clip(media_dir / "clip.mp4")


@pytest.fixture(scope="session")
def clip_mkv_subs(media_dir: Path) -> Path:
    """MKV with video, AAC audio and an SRT subtitle track."""
    return make_clip(media_dir / "subs.mkv", subtitle=True)


@pytest.fixture(scope="session")
def clip_vfr(media_dir: Path) -> Path:
    """Variable frame rate: irregular pts in a 1/1000 time base (MKV)."""
    pts = [0, 40, 90, 100, 180, 200, 290, 300, 333, 420]
    return make_clip(media_dir / "vfr.mkv", frames=len(pts), pts=pts, time_base=Fraction(1, 1000))


@pytest.fixture(scope="session")
def clip_odd(media_dir: Path) -> Path:
    """Odd dimensions (4:4:4 so no chroma subsampling constraint), no audio."""
    return make_clip(media_dir / "odd.mkv", width=37, height=23, frames=5, codec="ffv1", pix_fmt="yuv444p", audio=False)


@pytest.fixture(scope="session")
def clip_10bit(media_dir: Path) -> Path:
    """10-bit 4:2:0 (FFV1, lossless) tagged BT.2020 / PQ / limited range."""
    color = {"color_primaries": 9, "color_trc": 16, "colorspace": 9, "color_range": 1}
    return make_clip(media_dir / "tenbit.mkv", frames=6, codec="ffv1", pix_fmt="yuv420p10le", color=color)


# HDR10 static metadata as x265 takes it (chromaticity in 1/50000, luminance in 1/10000 cd/m2).
HDR10_X265 = "log-level=error:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400"


@pytest.fixture(scope="session")
def clip_hdr10(media_dir: Path) -> Path:
    """10-bit HEVC, BT.2020 / PQ, with mastering-display and content-light-level SEI."""
    color = {"color_primaries": 9, "color_trc": 16, "colorspace": 9, "color_range": 1}
    return make_clip(media_dir / "hdr10.mp4", frames=4, codec="libx265", pix_fmt="yuv420p10le", color=color,
                     audio=False, options={"x265-params": HDR10_X265})


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-init small SAFDN x2 saved with streamsr metadata. Its upsampler starts at zero, so
    it computes exactly bilinear: right for tests of plumbing and colour, blind to the model."""
    path = tmp_path_factory.mktemp("weights") / "tiny-x2.safetensors"
    save_weights(SAFDN(feat=8, blocks=1, esa=4, scale=2), path, arch="safdn")
    return path


@pytest.fixture(scope="session")
def net_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small SAFDN x2 whose every layer is seeded random, the upsampler included: its output
    differs from bilinear and bicubic by several code values wherever the picture has detail,
    so a test can tell that the network, and no plain resize, made a frame."""
    path = tmp_path_factory.mktemp("weights") / "net-x2.safetensors"
    with torch.random.fork_rng():
        torch.manual_seed(20261207)
        model = SAFDN(feat=8, blocks=1, esa=4, scale=2)
        torch.nn.init.normal_(model.upsample[0].weight, std=0.02)
    save_weights(model, path, arch="safdn")
    return path
