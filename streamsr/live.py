"""Live preview: camera (or any file/URL) -> Upscaler -> preview window, real time first.

Capture runs in its own thread and only ever keeps the newest frame (a one-slot mailbox): when
the model falls behind, stale frames are dropped and counted, so latency never builds up.
The window is a small `PreviewSink` protocol; the pygame one lives in `streamsr.preview`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError
from .frames import FrameBatch, VideoInfo
from .io.camera import CaptureThread, camera_input
from .io.codecs import EncodeConfig
from .io.encode import PyAVEncoder
from .io.stream import StreamSource
from .upscaler import Upscaler


@dataclass
class LiveStats:
    """Figures shown on the preview and printed at the end of a headless run."""

    captured: int = 0
    shown: int = 0
    dropped: int = 0
    capture_fps: float = 0.0
    display_fps: float = 0.0
    model_ms: float = 0.0
    """Mean time of one model call."""
    latency_ms: float = 0.0
    """Mean time from capture to display."""
    max_latency_ms: float = 0.0
    model: str = ""
    precision: str = ""
    size_in: str = ""
    size_out: str = ""

    def line(self) -> str:
        what, rates, times = self.lines()
        return f"{what}: {rates}, {times}"

    def lines(self) -> tuple[str, str, str]:
        """What runs, its rates and its times: short lines that fit a small preview window."""
        return (
            f"{self.model} {self.precision} {self.size_in}->{self.size_out}",
            f"capture {self.capture_fps:.1f} fps, shown {self.display_fps:.1f} fps, dropped {self.dropped}",
            f"model {self.model_ms:.0f} ms, latency {self.latency_ms:.0f} ms (max {self.max_latency_ms:.0f})",
        )


@dataclass
class Command:
    """What the preview asked for after a frame."""

    quit: bool = False
    scale: int | None = None
    snapshot: bool = False


class PreviewSink(Protocol):
    def show(self, lr: np.ndarray, sr: np.ndarray, stats: LiveStats) -> Command: ...

    def close(self) -> None: ...


class HeadlessSink:
    """No window: keeps the last upscaled frame (for tests and servers)."""

    def __init__(self) -> None:
        self.last: np.ndarray | None = None

    def show(self, lr: np.ndarray, sr: np.ndarray, stats: LiveStats) -> Command:
        self.last = sr
        return Command()

    def close(self) -> None:
        pass


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255)


def _to_image(x: torch.Tensor) -> np.ndarray:
    return x[0].mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def bicubic_image(rgb: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic upscale shown beside the model's output, computed on uint8 directly.

    torch's uint8 path (the antialiased kernel, which for upscaling is PIL's bicubic, a = -0.5)
    takes 1 ms for 320x240 -> 640x480 where the float path took 9 ms: a frame's worth of the
    preview's budget at 15 fps.
    """
    frames = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # a channels_last view: no copy
    return F.interpolate(frames, scale_factor=scale, mode="bicubic", antialias=True)[0].permute(1, 2, 0).numpy()


@dataclass
class LiveSession:
    """One preview run's state; `run_live` drives it."""

    upscaler: Upscaler
    sink: PreviewSink
    make_upscaler: Callable[[int], Upscaler] | None = None
    record: Path | None = None
    snapshot_dir: Path = Path(".")
    stats: LiveStats = field(default_factory=LiveStats)
    recent_latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=120))
    recent_model_ms: deque[float] = field(default_factory=lambda: deque(maxlen=120))
    recent_shown_at: deque[float] = field(default_factory=lambda: deque(maxlen=60))


def live_model(scale: int, device: str = "auto") -> str:
    """The model that keeps up with a camera at `scale`: the quality SAFDN on CUDA, the real-time
    tiny one on the CPU (docs/benchmarks.md, "Live preview")."""
    on_gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    return f"safdn-x{scale}" if on_gpu else f"safdn-tiny-x{scale}"


def run_live(
    source: str | None = None,
    *,
    upscaler: Upscaler,
    sink: PreviewSink | None = None,
    camera: str | None = None,
    size: str | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    record: str | Path | None = None,
    realtime: bool = True,
    make_upscaler: Callable[[int], Upscaler] | None = None,
    snapshot_dir: str | Path = ".",
) -> LiveStats:
    """Show `source` (a file or URL) or the camera upscaled, until quit, `max_frames`, or the end.

    Returns the final figures. Capture errors are re-raised here.
    """
    sink = sink or HeadlessSink()
    if source is not None:
        url, fmt, options = source, None, {}
    else:
        url, fmt, options = camera_input(camera, size, fps)
    try:
        # The same one-read source as `upscale` of a pipe or URL; no look-ahead, so the preview starts at once.
        stream_source = StreamSource(url, fmt=fmt, options=options, lookahead=0)
    except InputError as e:
        if source is not None:
            raise
        raise InputError(f"cannot open camera {url} ({e.__cause__ or e}); pick another with --camera "
                         "or use --source FILE_OR_URL") from e
    capture = CaptureThread(stream_source, realtime=realtime)
    session = LiveSession(upscaler, sink, make_upscaler, Path(record) if record else None, Path(snapshot_dir))
    stats = session.stats
    stats.model, stats.precision = upscaler.model.name, upscaler.precision_name
    encoder: PyAVEncoder | None = None
    capture.start()
    started = time.perf_counter()
    try:
        while max_frames is None or stats.shown < max_frames:
            item = capture.mailbox.take(timeout=0.2)
            if item is None:
                if capture.error is not None:
                    raise capture.error
                if capture.finished.is_set():
                    break
                continue
            rgb, captured_at = item
            t0 = time.perf_counter()
            sr = _to_image(session.upscaler(_to_tensor(rgb).to(session.upscaler.device)).cpu())
            session.recent_model_ms.append(1000 * (time.perf_counter() - t0))
            if session.record is not None:
                encoder = encoder or _open_recorder(session.record, rgb, session.upscaler.scale, fps or 30)
                pts = round(1000 * (captured_at - started))
                encoder.write(FrameBatch(torch.from_numpy(sr).permute(2, 0, 1)[None], torch.tensor([pts]), Fraction(1, 1000)))
            now = time.perf_counter()
            session.recent_latency_ms.append(1000 * (now - captured_at))
            session.recent_shown_at.append(now)
            stats.shown += 1
            _update(stats, session, capture, rgb, sr, started)
            command = sink.show(rgb, sr, stats)
            if command.snapshot:
                from .io.images import write_png

                write_png(torch.from_numpy(sr).permute(2, 0, 1), session.snapshot_dir / f"streamsr-snapshot-{stats.shown:06d}.png")
            if command.scale and command.scale != session.upscaler.scale and session.make_upscaler is not None:
                session.upscaler = session.make_upscaler(command.scale)
                stats.model = session.upscaler.model.name
            if command.quit:
                break
    finally:
        capture.stop()
        capture.join(timeout=2)
        stream_source.close()
        sink.close()
        if encoder is not None:
            encoder.close()
    _update(stats, session, capture, None, None, started)
    return stats


def _open_recorder(path: Path, rgb: np.ndarray, scale: int, fps: float) -> PyAVEncoder:
    h, w = rgb.shape[:2]
    return PyAVEncoder(path, None, VideoInfo.of_frames(w, h, fps=fps), scale=scale, config=EncodeConfig(preset="veryfast", crf=20))


def _update(stats: LiveStats, s: LiveSession, capture: CaptureThread, rgb: np.ndarray | None, sr: np.ndarray | None, started: float) -> None:
    elapsed = max(1e-6, time.perf_counter() - started)
    stats.captured, stats.dropped = capture.captured, capture.mailbox.dropped
    stats.capture_fps = capture.captured / elapsed
    if len(s.recent_shown_at) > 1:
        stats.display_fps = (len(s.recent_shown_at) - 1) / max(1e-6, s.recent_shown_at[-1] - s.recent_shown_at[0])
    if s.recent_latency_ms:
        stats.latency_ms = sum(s.recent_latency_ms) / len(s.recent_latency_ms)
        stats.max_latency_ms = max(stats.max_latency_ms, s.recent_latency_ms[-1])
        stats.model_ms = sum(s.recent_model_ms) / len(s.recent_model_ms)
    if rgb is not None and sr is not None:
        stats.size_in, stats.size_out = f"{rgb.shape[1]}x{rgb.shape[0]}", f"{sr.shape[1]}x{sr.shape[0]}"
