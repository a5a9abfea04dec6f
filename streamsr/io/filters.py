"""Decoded pictures through FFmpeg's own filters (libavfilter, by PyAV's filter graph).

Deinterlacing, inverse telecine and cropping belong on the picture as decoded, before it becomes
RGB: an interlaced 4:2:0 frame's chroma is only right when its fields are taken apart first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction

import av

from ..errors import DecodeError
from ..frames import VideoInfo


class FilterChain:
    """A chain of libavfilter filters (``"bwdif=mode=send_field"``, ``"fieldmatch"``, ``"decimate"``,
    ``"crop=704:480:8:0"``) that maps decoded frames to filtered ones.

    The graph is built for the first frame's size and pixel format, with the source's time base,
    frame rate and sample aspect ratio. Output pts are given in `time_base` (what the filters make
    of the source's: half of it after deinterlacing); filters that drop or add frames (decimate,
    one frame per field) set the pts of what they emit, so timing stays exact.
    """

    def __init__(self, filters: Sequence[str], info: VideoInfo, time_base: Fraction) -> None:
        self.filters = tuple(filters)
        self.time_base = time_base
        self._info = info
        self._graph: av.filter.Graph | None = None

    def _build(self, frame: av.VideoFrame) -> av.filter.Graph:
        info = self._info
        graph = av.filter.Graph()
        rate = info.fps or Fraction(25)
        nodes = [graph.add("buffer", video_size=f"{frame.width}x{frame.height}", pix_fmt=frame.format.name,
                           time_base=str(info.time_base), pixel_aspect=str(info.sample_aspect_ratio),
                           frame_rate=f"{rate.numerator}/{rate.denominator}")]
        for item in self.filters:
            name, _, args = item.partition("=")
            nodes.append(graph.add(name, args or None))
        nodes.append(graph.add("buffersink"))
        graph.link_nodes(*nodes)
        graph.configure()
        return graph

    def __call__(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        if not self.filters:
            yield from frames
            return
        last_pts = -1
        for frame in frames:
            if self._graph is None:
                self._graph = self._build(frame)
            if frame.pts is None:  # the filters need times: a frame without one takes the next tick
                frame.pts = last_pts + 1
            last_pts = frame.pts
            yield from self._push(frame)
        if self._graph is not None:
            yield from self._push(None)

    def _push(self, frame: av.VideoFrame | None) -> Iterator[av.VideoFrame]:
        assert self._graph is not None
        try:
            self._graph.vpush(frame)
            while True:
                try:
                    out = self._graph.vpull()
                except (av.BlockingIOError, av.EOFError):
                    return
                if out.pts is not None and out.time_base is not None and out.time_base != self.time_base:
                    out.pts = round(out.pts * out.time_base / self.time_base)
                    out.time_base = self.time_base
                yield out
        except av.FFmpegError as e:
            raise DecodeError(f"the picture filters ({','.join(self.filters)}) failed: {e}") from e
