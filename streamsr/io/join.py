"""SegmentJoiner: join separately encoded video segments into one output by stream copy, with the
source's other streams copied once beside them.

Each segment was encoded on its own, so its decode timestamps start before its first frame (the
encoder's reorder delay) and overlap the previous segment's tail. The joiner keeps every
presentation timestamp and gives the whole stream fresh decode timestamps: the i-th packet in
decode order gets the (i - D)-th smallest pts, D being the deepest reordering in the stream, which
is monotonic and never after a packet's pts.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path

import av

from ..errors import EncodeError
from ..frames import VideoInfo
from .codecs import EncodeConfig
from .encode import PyAVEncoder
from .passthrough import Warn


def decode_timestamps(pts_in_decode_order: Sequence[int]) -> list[int]:
    """Monotonic dts with dts[i] <= pts[i] for packets given in decode order."""
    ordered = sorted(pts_in_decode_order)
    depth = max((i - bisect.bisect_left(ordered, p) for i, p in enumerate(pts_in_decode_order)), default=0)
    step = min((b - a for a, b in zip(ordered, ordered[1:], strict=False) if b > a), default=1)
    return [ordered[i - depth] if i >= depth else ordered[0] - (depth - i) * step
            for i in range(len(pts_in_decode_order))]


class SegmentJoiner(PyAVEncoder):
    """An output whose video is copied from segment files (same codec and parameters) instead of
    encoded; everything else (other streams, metadata, chapters, atomic naming) as `PyAVEncoder`."""

    def __init__(self, path: str | Path, source: str | Path, info: VideoInfo, segments: Sequence[Path], *, scale: int,
                 config: EncodeConfig | None = None, warn: Warn | None = None) -> None:
        self._segments = list(segments)
        self._template_container = av.open(str(self._segments[0]))
        self._extradata = self._template_container.streams.video[0].codec_context.extradata
        try:
            super().__init__(path, source, info, scale=scale, config=config, warn=warn)
        finally:
            self._template_container.close()

    def _add_video_stream(self, cfg: EncodeConfig) -> av.VideoStream:
        template = self._template_container.streams.video[0]
        self.codec = template.codec_context.name
        if self.codec not in self._known_codecs and self._known_codecs:
            raise EncodeError(f"the {self._out.format.name} container cannot hold {self.codec} video; "
                              "choose another output suffix (.mkv holds all)")
        v = self._out.add_stream_from_template(template)
        v.time_base = template.time_base
        if self.codec == "hevc" and self._mp4:
            v.codec_context.codec_tag = "hvc1"  # Apple's players and browsers open HEVC in MP4 only as hvc1
        self.pix_fmt = template.codec_context.pix_fmt
        return v

    def copy_segments(self) -> int:
        """Mux every segment's video packets in order (other streams interleaved); the frame count."""
        pts = []
        for path in self._segments:
            with av.open(str(path)) as segment:
                stream = segment.streams.video[0]
                if stream.codec_context.extradata != self._extradata:
                    raise EncodeError(f"{path.name}: encoded with other parameters than the first segment; "
                                      "cannot be joined by stream copy")
                pts.extend(p.pts for p in segment.demux(stream) if p.size)
        dts = iter(decode_timestamps(pts))
        for path in self._segments:
            with av.open(str(path)) as segment:
                stream = segment.streams.video[0]
                for packet in segment.demux(stream):
                    if not packet.size:
                        continue
                    packet.dts = next(dts)
                    self._mux_others_until(float(packet.pts * packet.time_base))
                    packet.stream = self._video
                    self._mux_video(packet)
                    self.frames_written += 1
        return self.frames_written

    def _encode(self, frame: av.VideoFrame | None) -> None:
        # Nothing is encoded here: close() flushes no encoder.
        return
