"""The stage runner: decode -> stages -> sink in three threads joined by bounded queues.

Memory stays flat however long the video is: at most `queue_size` batches wait between the
source and the stages, and as many between the stages and the sink. The first error anywhere
stops all three and is raised to the caller, and so is Ctrl-C.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..frames import FrameBatch

Progress = Callable[[int], None]
Warn = Callable[[str], None]


_DONE = object()


class _Stage(threading.Thread):
    """A worker thread: its exception is kept (and re-raised by the pipeline), and stops all."""

    def __init__(self, name: str, target: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn, self._stop_all = target, stop
        self.error: BaseException | None = None
        self.busy_seconds = 0.0

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:
            self.error = e
            self._stop_all.set()


def _put(q: queue.Queue[Any], item: object, stop: threading.Event) -> bool:
    """Put unless the pipeline is stopping; False means stop."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    """Next item, or `_DONE` once the pipeline is stopping."""
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return _DONE


def run_stages(
    batches: Iterator[FrameBatch],
    stages: Callable[[Iterator[FrameBatch]], Iterator[FrameBatch]],
    write: Callable[[FrameBatch], None],
    *,
    queue_size: int = 4,
    on_progress: Progress | None = None,
    on_drop: Progress | None = None,
) -> tuple[float, float, float]:
    """Drive decode (thread) -> stages (this thread) -> write (thread) through bounded queues.

    `stages` maps the stream of decoded batches to the stream of batches to write (the model,
    and whatever runs before and after it: `stages.chain`), so a GPU `Upscaler` can keep several
    in flight. Returns the busy seconds of (decode, stages, write). The first error in any
    thread stops all three and is re-raised here; so is Ctrl-C.

    With `on_drop`, a decoded batch that finds the upscaler's queue full is dropped (its frame
    count passed to `on_drop`) instead of waiting: a live source is then read in real time and
    the output holds the frames the model kept up with, each at its own pts.
    """
    decoded: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
    upscaled: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
    stop = threading.Event()

    def decode_loop() -> None:
        it = iter(batches)
        while not stop.is_set():
            t = time.perf_counter()
            batch = next(it, _DONE)
            decoder.busy_seconds += time.perf_counter() - t
            if on_drop is not None and batch is not _DONE:
                try:
                    decoded.put_nowait(batch)
                except queue.Full:
                    on_drop(len(batch))
                continue
            if not _put(decoded, batch, stop) or batch is _DONE:
                return

    def write_loop() -> None:
        while (batch := _get(upscaled, stop)) is not _DONE:
            t = time.perf_counter()
            write(batch)
            writer.busy_seconds += time.perf_counter() - t
            if on_progress is not None:
                on_progress(len(batch))

    decoder = _Stage("streamsr-decode", decode_loop, stop)
    writer = _Stage("streamsr-encode", write_loop, stop)
    decoder.start()
    writer.start()
    upscale_seconds = 0.0
    waited = [0.0]  # time the stages spent waiting on the decoder: not their work

    def from_decoder() -> Iterator[FrameBatch]:
        while True:
            t = time.perf_counter()
            batch = _get(decoded, stop)
            waited[0] += time.perf_counter() - t
            if batch is _DONE:
                return
            yield batch

    try:
        results = stages(from_decoder())
        while True:
            t = time.perf_counter()
            out = next(results, _DONE)
            upscale_seconds += time.perf_counter() - t
            if out is _DONE or not _put(upscaled, out, stop):
                break
        _put(upscaled, _DONE, stop)
        writer.join()
    finally:
        stop.set()  # unblocks whichever stage still waits on a queue
        decoder.join()
        writer.join()
    for stage in (decoder, writer):
        if stage.error is not None:
            raise stage.error
    return decoder.busy_seconds, upscale_seconds - waited[0], writer.busy_seconds


class WarningLog:
    """Warnings of one run, each also passed on to the caller's callback as it happens."""

    def __init__(self, on_warning: Warn | None) -> None:
        self.messages: list[str] = []
        self._on_warning = on_warning

    def __call__(self, message: str) -> None:
        self.messages.append(message)
        if self._on_warning is not None:
            self._on_warning(message)
