"""PyAVDecoder: CPU decode of any FFmpeg-readable video into RGB FrameBatches with source pts."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from ..errors import DecodeError
from ..frames import FrameBatch, VideoInfo
from .filters import FilterChain
from .probe import open_input, probe
from .stream import StreamSource


def rgb_format(bit_depth: int) -> str:
    """The packed RGB format frames are converted to: 8-bit stays 8-bit, deeper goes to 16-bit."""
    return "rgb24" if bit_depth <= 8 else "rgb48le"


# YUV matrices swscale converts with (AVColorSpace values); others (unspecified, RGB, ICtCp...)
# fall back to swscale's default, used the same way in both directions so colours round-trip.
_SWSCALE_MATRICES = frozenset({1, 4, 5, 6, 7, 9})


def swscale_matrix(matrix: int) -> int | None:
    return matrix if matrix in _SWSCALE_MATRICES else None


def frame_to_rgb(frame: av.VideoFrame, fmt: str) -> np.ndarray:
    """(H, W, 3) uint8/uint16 RGB, converted with the frame's own matrix and range."""
    # swscale assumes limited range unless told; pass the frame's tags so full-range sources
    # (yuvj*, or yuv* tagged "pc") are not crushed.
    rgb = frame.reformat(
        format=fmt,
        src_colorspace=swscale_matrix(int(frame.colorspace)),
        src_color_range=frame.color_range or None,
    )
    return rgb.to_ndarray()


class PyAVDecoder:
    """Decode the first video stream of a file with FFmpeg's frame threading.

    Iterating yields `FrameBatch`es of up to `batch` frames: (N, 3, H, W) RGB, uint8 for 8-bit
    sources and uint16 for 10/12-bit ones, each frame with its own pts (never fps x index).
    After iteration, `frames_decoded` is the count and `error` holds a mid-file decode error.

    With `source` (a pipe or network stream, read once) it decodes that read's video packets,
    starting with the frames the source decoded to describe itself; `path` is then unused.

    `start_pts`/`end_pts` decode one segment of a file: it seeks to the keyframe at or before
    `start_pts` and yields the frames with `start_pts <= pts < end_pts` (None: open-ended).

    `filters` (deinterlacing, inverse telecine, cropping) run on each decoded picture before it
    becomes RGB; the batches then carry the pts and time base the filters give.
    """

    def __init__(self, path: str | Path | None, *, batch: int = 4, threads: int = 0, info: VideoInfo | None = None,
                 source: StreamSource | None = None, start_pts: int | None = None, end_pts: int | None = None,
                 filters: FilterChain | None = None) -> None:
        self._source = source
        self._filters = filters
        self.batch = batch
        if source is not None:
            self.path: Path | str = source.location
            self.info = source.info
            self._container, self._stream = source.container, source.video
        else:
            self.path = Path(path)
            self.info = info or probe(self.path)
            self._container = open_input(self.path)
            self._stream = self._container.streams.video[0]
            # Frame threading: a large speed-up for H.264/HEVC at the price of a few frames' latency.
            self._stream.thread_type = "AUTO"
            self._stream.codec_context.thread_count = threads
            if start_pts is not None:
                self._container.seek(start_pts, stream=self._stream, backward=True, any_frame=False)
        self._range = (start_pts, end_pts)
        self._fmt = rgb_format(self.info.bit_depth)
        self.frames_decoded = 0
        self.packets_damaged = 0
        """Packets the decoder refused: each is a frame lost, and decoding goes on after it."""
        self.frames_skipped = 0
        """Frames a constant-rate source's timeline lacks between two decoded ones (packets the
        demuxer lost in damaged parts of the file)."""
        fps, tb = self.info.fps, self.info.time_base
        self._step = float(1 / (fps * tb)) if fps and tb and not self.info.variable_frame_rate else 0.0
        self._last_pts: int | None = None
        self._first_pts: int | None = None
        self.error: DecodeError | None = None

    @property
    def time_base(self) -> Fraction:
        """The time base of the batches' pts: the source's, or what the filters make of it."""
        return self._filters.time_base if self._filters is not None else Fraction(self.info.time_base)

    def frames(self) -> Iterator[tuple[np.ndarray, int]]:
        """(rgb HWC array, pts) per frame, in presentation order as FFmpeg outputs them."""
        pictures = self._in_range(self._decoded())
        if self._filters is not None:
            pictures = self._filters(pictures)
        last_pts = -1
        try:
            for frame in pictures:
                # A frame with no pts (rare, broken muxers) gets the next tick after the last one.
                last_pts = frame.pts if frame.pts is not None else last_pts + 1
                yield frame_to_rgb(frame, self._fmt), last_pts
        except av.FFmpegError as e:
            self.error = DecodeError(
                f"{self.path}: decoding stopped after {self.frames_decoded} frames ({e})",
                frames_done=self.frames_decoded,
            )
        if self._source is not None and (why := self._source.describe_error()) is not None and self.error is None:
            self.error = DecodeError(f"{self.path}: the stream broke off after {self.frames_decoded} frames ({why})",
                                     frames_done=self.frames_decoded)

    def _in_range(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """The decoded frames of the segment asked for (all without one), counted as they pass."""
        last_pts = -1
        start, end = self._range
        for frame in frames:
            # A frame with no pts (rare, broken muxers) gets the next tick after the last one.
            pts = frame.pts if frame.pts is not None else last_pts + 1
            if start is not None and pts < start:  # before the segment: the seek lands on a keyframe
                continue
            if end is not None and pts >= end:  # frames come in presentation order: the segment is done
                return
            if self._step and self._last_pts is not None and pts - self._last_pts > 1.5 * self._step:
                self.frames_skipped += round((pts - self._last_pts) / self._step) - 1
            last_pts = pts
            self._last_pts = pts
            if self._first_pts is None:
                self._first_pts = pts
            frame.pts = pts
            self.frames_decoded += 1
            yield frame

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Decoded frames in output order; a packet the decoder refuses is counted and skipped."""
        if self._source is not None:
            yield from self._source.frames(on_damaged=self._count_damaged)
            return
        for packet in self._container.demux(self._stream):
            try:
                decoded = packet.decode()
            except av.InvalidDataError:
                self.packets_damaged += 1
                continue
            yield from decoded

    def __iter__(self) -> Iterator[FrameBatch]:
        arrays: list[np.ndarray] = []
        pts: list[int] = []
        start = 0
        tb = self.time_base
        for rgb, p in self.frames():
            arrays.append(rgb)
            pts.append(p)
            if len(arrays) == self.batch:
                yield _batch(arrays, pts, tb, start)
                start += len(arrays)
                arrays, pts = [], []
        if arrays:
            yield _batch(arrays, pts, tb, start)

    def _count_damaged(self) -> None:
        self.packets_damaged += 1

    def stream_seconds(self) -> float:
        """Source time from the first decoded frame to the last."""
        if self._first_pts is None or self._last_pts is None:
            return 0.0
        return float((self._last_pts - self._first_pts) * self.info.time_base)

    def frames_missing(self) -> int:
        """Frames the container announces but that did not decode (0 if it cannot tell), for a
        file or a pipe or URL alike (one that breaks off is short of what its header declared).

        Uses the header's frame count (MP4) or, failing that (Matroska, whose header has a
        duration but no count): the packets the decoder refused, the gaps in a constant-rate
        timeline, and how far the last decoded frame falls short of the announced duration (three
        quarters of a frame of slack for constant-rate streams, two for variable-rate ones).
        """
        announced = self._stream.frames
        if announced:
            return max(0, announced - self.frames_decoded, self.packets_damaged)
        return max(self.packets_damaged, self.frames_skipped + self._frames_missing_at_the_end())

    def declares_length(self) -> bool:
        """True when the source says how long it is (a frame count or a duration), so a source that
        broke off shows as frames missing; MPEG-TS and live streams say nothing."""
        return bool(self._stream.frames) or video_stream_seconds(self._stream) is not None

    def _frames_missing_at_the_end(self) -> int:
        info = self.info
        duration = video_stream_seconds(self._stream)
        if duration is None or not info.fps or self._last_pts is None:
            return 0
        start = float((self._stream.start_time or 0) * info.time_base)
        last = float(self._last_pts * info.time_base)
        short_by = (start + duration - last) * float(info.fps) - 1  # frames
        # Containers give the end of the last frame to the millisecond: a constant-rate stream that
        # ends three quarters of a frame early has lost its last frame. A variable-rate one's last
        # frame may last longer than the average; it is allowed two.
        slack = 2 if info.variable_frame_rate else 0.75
        return round(short_by) if short_by > slack else 0

    def close(self) -> None:
        if self._source is None:  # a stream source is closed by its owner, after the muxer copied from it
            self._container.close()

    def __enter__(self) -> PyAVDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def video_stream_seconds(stream: av.video.stream.VideoStream) -> float | None:
    """The video stream's own duration: from the stream, or Matroska's per-stream DURATION tag.

    Not the container's, which covers the longest stream (a subtitle may outlast the video).
    """
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if not tag:
        return None
    try:
        h, m, sec = tag.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def _batch(arrays: list[np.ndarray], pts: list[int], tb: Fraction, start: int) -> FrameBatch:
    data = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return FrameBatch(data=data, pts=torch.tensor(pts, dtype=torch.int64), time_base=tb, index_start=start)
