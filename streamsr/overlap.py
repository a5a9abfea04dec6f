"""Overlapped upload / compute / download over a ring of buffers.

While batch k computes, batch k+1 uploads and batch k-1 downloads: three CUDA streams with events
between them, and preallocated pinned host buffers reused round-robin (pinning per frame is
slow). The same scheduler runs on the CPU with synchronous no-op "streams", which is how its
ordering, ring reuse and bounded depth are tested without a GPU.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from .frames import FrameBatch


class CPUStreams:
    """Synchronous stand-ins for CUDA streams and events."""

    def stream(self) -> None:
        return None

    def use(self, stream: Any) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def record(self, stream: Any) -> None:
        return None

    def wait(self, stream: Any, event: Any) -> None:
        return None

    def synchronize(self, event: Any) -> None:
        return None

    def keep_alive(self, tensor: Tensor, stream: Any) -> None:
        return None

    def host_buffer(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        return torch.empty(shape, dtype=dtype)


class CUDAStreams:
    """CUDA streams, events and pinned host buffers."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def stream(self) -> torch.cuda.Stream:
        return torch.cuda.Stream(device=self.device)

    def use(self, stream: torch.cuda.Stream) -> contextlib.AbstractContextManager[Any]:
        return torch.cuda.stream(stream)

    def record(self, stream: torch.cuda.Stream) -> torch.cuda.Event:
        event = torch.cuda.Event()
        event.record(stream)
        return event

    def wait(self, stream: torch.cuda.Stream, event: torch.cuda.Event) -> None:
        stream.wait_event(event)

    def synchronize(self, event: torch.cuda.Event) -> None:
        event.synchronize()

    def keep_alive(self, tensor: Tensor, stream: torch.cuda.Stream) -> None:
        # The caching allocator must not hand this memory out again before `stream` is done with it.
        tensor.record_stream(stream)

    def host_buffer(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        return torch.empty(shape, dtype=dtype, pin_memory=True)


@dataclass
class _Slot:
    host_in: Tensor | None = None
    host_out: Tensor | None = None


class OverlapScheduler:
    """Run `compute` over batches with uploads and downloads overlapped, `depth` batches in flight.

    `compute` takes a uint8/uint16 (N, 3, H, W) tensor on `device` and returns the upscaled
    frames of the same dtype on `device`. Output batches come back in input order with their pts.
    """

    def __init__(self, compute: Callable[[Tensor], Tensor], device: torch.device, *, scale: int, depth: int = 3,
                 streams: CPUStreams | CUDAStreams | None = None) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.compute, self.device, self.scale, self.depth = compute, device, scale, depth
        self.streams = streams or (CUDAStreams(device) if device.type == "cuda" else CPUStreams())
        s = self.streams
        self._up, self._run, self._down = s.stream(), s.stream(), s.stream()
        self._slots = [_Slot() for _ in range(depth)]
        self.max_in_flight = 0

    def _buffer(self, current: Tensor | None, like: Tensor, shape: tuple[int, ...]) -> Tensor:
        if current is None or current.shape[1:] != shape[1:] or current.shape[0] < shape[0] or current.dtype != like.dtype:
            return self.streams.host_buffer(shape, like.dtype)
        return current

    def _launch(self, batch: FrameBatch, slot: _Slot) -> tuple[Any, Tensor, int]:
        s, n = self.streams, len(batch)
        if batch.data.device.type == self.device.type and batch.data.device == self.device:
            device_in = batch.data  # already on the device (DALI): never visits the host
            uploaded = s.record(self._up)
        else:
            slot.host_in = self._buffer(slot.host_in, batch.data, tuple(batch.data.shape))
            host = slot.host_in[:n]
            host.copy_(batch.data)
            with s.use(self._up):
                device_in = host.to(self.device, non_blocking=True)
            uploaded = s.record(self._up)
        s.wait(self._run, uploaded)
        with s.use(self._run):
            s.keep_alive(device_in, self._run)
            device_out = self.compute(device_in)
        computed = s.record(self._run)
        n_, c, h, w = device_out.shape
        slot.host_out = self._buffer(slot.host_out, device_out, (n_, c, h, w))
        s.wait(self._down, computed)
        with s.use(self._down):
            s.keep_alive(device_out, self._down)
            slot.host_out[:n].copy_(device_out, non_blocking=True)
        return s.record(self._down), slot.host_out, n

    def run(self, batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
        in_flight: deque[tuple[FrameBatch, Any, Tensor, int]] = deque()
        for k, batch in enumerate(batches):
            if len(in_flight) == self.depth:  # the oldest slot must be free before it is reused
                yield self._finish(*in_flight.popleft())
            slot = self._slots[k % self.depth]
            in_flight.append((batch, *self._launch(batch, slot)))
            self.max_in_flight = max(self.max_in_flight, len(in_flight))
        while in_flight:
            yield self._finish(*in_flight.popleft())

    def _finish(self, batch: FrameBatch, downloaded: Any, host_out: Tensor, n: int) -> FrameBatch:
        self.streams.synchronize(downloaded)
        # Clone: the ring slot is overwritten `depth` batches later, the encoder may still hold it.
        return replace(batch, data=host_out[:n].clone())
