"""Live sources: the platform's camera as an FFmpeg input, and a capture thread that keeps only
the newest frame (a one-slot mailbox), so a consumer that falls behind drops stale frames instead
of building up latency."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from ..errors import InputError
from .pyav import frame_to_rgb
from .stream import StreamSource


def camera_input(camera: str | None, size: str | None, fps: float | None) -> tuple[str, str | None, dict[str, str]]:
    """(url, format, options) for the platform's camera API."""
    options: dict[str, str] = {}
    if size:
        options["video_size"] = size
    if fps:
        options["framerate"] = str(fps)
    if sys.platform.startswith("linux"):
        return camera or "/dev/video0", "v4l2", options
    if sys.platform == "darwin":
        return camera or "0", "avfoundation", options
    if sys.platform == "win32":
        return f"video={camera or 'Integrated Camera'}", "dshow", options
    raise InputError(f"no camera support on {sys.platform}; use --source FILE_OR_URL")


class _Mailbox:
    """One slot holding the newest frame; putting over an unread frame drops it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: tuple[np.ndarray, float] | None = None
        self.dropped = 0

    def put(self, item: tuple[np.ndarray, float]) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def take(self, timeout: float) -> tuple[np.ndarray, float] | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item


class CaptureThread(threading.Thread):
    """Reads frames as fast as the source gives them (files are paced at their own frame rate)."""

    def __init__(self, source: StreamSource, *, realtime: bool) -> None:
        super().__init__(name="streamsr-capture", daemon=True)
        self.source, self.realtime = source, realtime
        self.mailbox = _Mailbox()
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._halt = threading.Event()
        self.captured = 0
        self.started_at = time.perf_counter()

    def run(self) -> None:
        start = time.perf_counter()
        first_pts: float | None = None
        try:
            for frame in self.source.frames():
                if self._halt.is_set():
                    break
                if self.realtime and frame.pts is not None and frame.time_base is not None:
                    t = float(frame.pts * frame.time_base)
                    first_pts = t if first_pts is None else first_pts
                    delay = start + (t - first_pts) - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                self.mailbox.put((frame_to_rgb(frame, "rgb24"), time.perf_counter()))
                self.captured += 1
        except BaseException as e:  # re-raised by the preview loop
            self.error = e
        finally:
            self.finished.set()

    def stop(self) -> None:
        self._halt.set()
