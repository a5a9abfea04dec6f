"""StreamCopier: a source's audio, subtitles, data, attachments, chapters and metadata into an output.

Every stream but the video is copied packet for packet, interleaved by time with the video its
owner muxes: from a demux of a source file, or from the one read of a pipe or network source
(`StreamSource`). Audio is re-encoded only where the output container cannot hold its codec (or
``audio="aac"`` asks for it), and then we say so.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import av

from .codecs import SIDE_FILE_MUXERS, muxer_accepts
from .probe import open_input
from .stream import StreamSource

Warn = Callable[[str], None]

# Tags that muxers compute from the data: copying the source's would describe the wrong file.
_STALE_TAGS = {"encoder", "duration", "number_of_frames", "number_of_bytes", "bps", "_statistics_tags",
               "_statistics_writing_app", "_statistics_writing_date_utc"}


def fresh_tags(tags: dict[str, str]) -> dict[str, str]:
    """`tags` less those a muxer computes from the data it writes."""
    return {k: v for k, v in tags.items() if k.lower() not in _STALE_TAGS}


_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
"""FFmpeg's default layout for a channel count, for audio that gives a count without an order."""
_PCM_REFUSED_LATE = frozenset({"mp4", "ipod"})
"""Muxers that list PCM but refuse it (a layout without a channel order) only in the trailer, after
the whole file was written, and whose players seldom play it: PCM is re-encoded for them."""


def known_codecs(out: av.container.OutputContainer) -> frozenset[str]:
    """The codecs the muxer says it holds; empty where it does not say. Muxers without a codec
    table (MPEG-TS, segment, HLS, Ogg...) answer only for their default codecs, a short list
    that would refuse H.264 in MPEG-TS: those are left to refuse a stream when they meet it."""
    listed = out.supported_codecs
    if len(listed) <= 12:
        return frozenset()
    if out.format.name in _PCM_REFUSED_LATE:
        listed = {c for c in listed if not c.startswith("pcm_")}
    return frozenset(listed)


def mux_or_count(out: av.container.OutputContainer, packet: av.Packet) -> bool:
    """Mux `packet`; False where the muxer refuses its timestamps (EINVAL after damage)."""
    try:
        out.mux(packet)
    except av.ArgumentError:
        return False
    return True


class StreamCopier:
    """Adds the source's non-video streams to `out` and muxes their packets on request.

    Create it after the output's video stream (which stays stream 0), call `mux_until(t)` before
    each video packet at time t, and `close()` before the output's trailer. A file source is
    opened here and closed by `close()`; a `StreamSource` belongs to its caller.
    """

    def __init__(self, out: av.container.OutputContainer, source: str | Path | StreamSource, *,
                 audio: str = "copy", warn: Warn | None = None) -> None:
        self._out = out
        self._warn = warn or (lambda _msg: None)
        self._stream_source = source if isinstance(source, StreamSource) else None
        self._src = self._stream_source.container if self._stream_source is not None else open_input(source)
        self._copies: dict[int, av.stream.Stream] = {}
        self._transcodes: dict[int, tuple[av.AudioStream, av.audio.resampler.AudioResampler]] = {}
        self.packets_dropped = 0
        """Copied packets the muxer refused (timestamps out of order after damage)."""
        try:
            video = self._src.streams.video[0]
            self.video_tags = fresh_tags(video.metadata)
            """The source video stream's tags, for the output's video stream."""
            self._add_streams(video.index, audio)
            self._copy_container_metadata()
        except BaseException:
            self.abort()
            raise
        self._pending = self._file_packets()
        self._next: av.Packet | None = None

    # -- set-up ------------------------------------------------------------------------------

    def _add_streams(self, video_index: int, audio: str) -> None:
        supported, muxer = known_codecs(self._out), self._out.format.name
        for s in self._src.streams:
            if s.index == video_index:
                continue
            codec = s.codec_context.name if s.codec_context is not None else None
            what = f"stream #{s.index} ({s.type}{', ' + codec if codec else ''})"
            if s.type == "audio" and audio == "none":
                self._warn(f"dropping {what}: --audio none")
                continue
            if s.type == "audio" and codec is None:  # a damaged header: nothing says how to read it
                self._warn(f"skipping {what}: its codec is unknown (damaged header)")
                continue
            if s.type == "audio" and (audio == "aac" or (supported and codec not in supported)):
                target = "aac" if not supported or "aac" in supported else "opus"
                if audio == "copy":
                    self._warn(f"{what}: the {muxer} container cannot hold {codec}; re-encoding it to {target}")
                self._add_transcode(s, target)
                continue
            if codec is not None and supported and codec not in supported:
                self._warn(f"skipping {what}: the {muxer} container cannot hold it; use a .mkv output to keep it")
                continue
            if s.type != "audio" and (why := muxer_accepts(muxer, s)) is not None:
                # FFmpeg's own reason ("Invalid argument: '<none>' returned 22") says nothing to a user.
                reason = why if muxer in SIDE_FILE_MUXERS else (
                    f"the {muxer} container cannot hold this {s.type} stream; use a .mkv output to keep it")
                self._warn(f"skipping {what}: {reason}")
                continue
            try:
                copy = self._out.add_stream_from_template(s)
            except (av.FFmpegError, ValueError, TypeError) as e:
                self._warn(f"skipping {what}: cannot copy it ({e})")
                continue
            copy.metadata.update(fresh_tags(s.metadata))
            self._copies[s.index] = copy

    def _add_transcode(self, s: av.AudioStream, target: str) -> None:
        # Opus (what WebM holds) codes at 48 kHz only; AAC keeps the source's rate.
        encoder, sample_format, rate = ("libopus", "flt", 48000) if target == "opus" else ("aac", "fltp", s.codec_context.sample_rate)
        layout = s.codec_context.layout
        if layout.name.endswith("channels"):  # a count without an order: encoders want the usual one
            layout = av.AudioLayout(_DEFAULT_LAYOUTS.get(s.codec_context.channels, layout.name))
        out = self._out.add_stream(encoder, rate=rate)
        out.layout = layout
        out.metadata.update(fresh_tags(s.metadata))
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate)
        self._transcodes[s.index] = (out, resampler)

    def _copy_container_metadata(self) -> None:
        self._out.metadata.update(fresh_tags(self._src.metadata))
        chapters = self._src.chapters()
        if chapters:
            try:
                self._out.set_chapters(chapters)
            except (av.FFmpegError, ValueError, TypeError) as e:
                self._warn(f"chapters not copied: {e}")

    # -- packets -----------------------------------------------------------------------------

    def _wanted(self, index: int) -> bool:
        return index in self._copies or index in self._transcodes

    def _file_packets(self) -> Iterator[av.Packet]:
        if self._stream_source is not None:
            return
        wanted = [s for s in self._src.streams if self._wanted(s.index)]
        if not wanted:
            return
        for packet in self._src.demux(wanted):
            if packet.size:  # a zero-size packet is demux's end-of-stream flush, not data
                yield packet

    def _take(self) -> av.Packet | None:
        """The next packet to copy, or None if there is none (yet, for a stream source)."""
        if self._stream_source is None:
            return next(self._pending, None)
        while (packet := self._stream_source.take_other()) is not None:
            if self._wanted(packet.stream.index):
                return packet
        return None

    def mux_until(self, seconds: float) -> None:
        """Mux the packets up to `seconds`, so the streams stay interleaved in the output."""
        while True:
            if self._next is None:
                self._next = self._take()
                if self._next is None:
                    return
            p = self._next
            ts = p.dts if p.dts is not None else p.pts
            if ts is not None and p.time_base is not None and float(ts * p.time_base) > seconds:
                return
            self._mux(p)
            self._next = None

    def _mux(self, packet: av.Packet) -> None:
        index = packet.stream.index
        if index in self._copies:
            packet.stream = self._copies[index]
            self.packets_dropped += not mux_or_count(self._out, packet)
            return
        out, resampler = self._transcodes[index]
        for frame in packet.decode():
            for resampled in resampler.resample(frame):
                self._out.mux(out.encode(resampled))

    def close(self) -> None:
        """Mux what is left (a stream source's tail is read first) and flush the audio encoders."""
        if self._stream_source is not None:
            self._stream_source.finish()
        self.mux_until(math.inf)
        for out, _ in self._transcodes.values():
            self._out.mux(out.encode(None))
        self.abort()

    def abort(self) -> None:
        """Close the source file this copier opened (a stream source is its caller's)."""
        if self._stream_source is None:
            with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                self._src.close()

