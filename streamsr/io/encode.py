"""PyAVEncoder: encode upscaled frames at their source pts and stream-copy every other stream.

Audio, subtitles, data and attachments are copied packet for packet, interleaved by time with the
video: from a second demux of a source file, or from the one read of a pipe or network source
(`StreamSource`). Chapters and metadata are copied too. Nothing is re-encoded unless the output
container cannot hold a stream, and then we say so. The output may be a file, stdout (``-``) or
a URL FFmpeg writes to.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import EncodeError
from ..frames import FrameBatch, VideoInfo
from .codecs import (
    CRF_CODECS,
    NVENC_PRESETS,
    VP9_SPEED,
    EncodeConfig,
    choose_pix_fmt,
    hdr10_params,
    muxer_accepts,
    resolve_codec,
)
from .probe import open_input
from .pyav import swscale_matrix
from .stream import StreamSource, ffmpeg_location, is_stream_location

Warn = Callable[[str], None]

_MP4_FORMATS = {"mp4", "mov", "ipod", "ismv", "3gp"}
_MP4_SUFFIXES = (".mp4", ".mov", ".m4v")

# Tags that muxers compute from the data: copying the source's would describe the wrong file.
_STALE_TAGS = {"encoder", "duration", "number_of_frames", "number_of_bytes", "bps", "_statistics_tags",
               "_statistics_writing_app", "_statistics_writing_date_utc"}


def known_codecs(out: av.container.OutputContainer) -> frozenset[str]:
    """The codecs the muxer says it holds; empty where it does not say. Muxers without a codec
    table (MPEG-TS, segment, HLS, Ogg...) answer only for their default codecs, a short list
    that would refuse H.264 in MPEG-TS: those are left to refuse a stream when they meet it."""
    listed = out.supported_codecs
    return frozenset(listed) if len(listed) > 12 else frozenset()


def _fresh_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.lower() not in _STALE_TAGS}


class PyAVEncoder:
    """Writes one output file: upscaled video + copies of the source's other streams.

    Use as a context manager; `close()` flushes and finalises, `abort()` (called on error)
    closes without finalising. The caller owns the path: it writes to a temporary name and
    renames on success.
    """

    def __init__(
        self, path: str | Path, source: str | Path | StreamSource | None, info: VideoInfo, *, scale: int,
        config: EncodeConfig | None = None, warn: Warn | None = None, fmt: str | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.location, self.info, self.scale = str(path), info, scale
        self.config = cfg = config or EncodeConfig()
        self._warn = warn or (lambda _msg: None)
        streaming = is_stream_location(self.location)
        self._mp4 = fmt in _MP4_FORMATS if fmt else Path(self.location.split("?")[0]).suffix.lower() in _MP4_SUFFIXES
        try:
            # MP4/MOV muxers drop tags they do not know (e.g. Apple's com.apple.quicktime.*)
            # unless told to keep them. Written where nothing can seek back, MP4 must be fragmented.
            muxer_options = {}
            if self._mp4:
                layout = "+frag_keyframe+empty_moov+default_base_moof" if streaming else "+faststart" if cfg.faststart else ""
                muxer_options["movflags"] = "use_metadata_tags" + layout
            muxer_options.update(options or {})
            self._out = av.open(ffmpeg_location(self.location, output=True), "w", format=fmt, options=muxer_options)
        except (av.FFmpegError, OSError, ValueError) as e:  # OSError: a network sink that refuses
            raise EncodeError(f"{self.location}: cannot create output ({e})") from e
        self._known_codecs = known_codecs(self._out)
        # Without a source (a camera), there are no other streams to copy. A stream source is read
        # once: its other packets come from that read, and its owner closes it.
        self._stream_source = source if isinstance(source, StreamSource) else None
        if self._stream_source is not None:
            self._src: av.container.InputContainer | None = self._stream_source.container
        else:
            self._src = open_input(source) if source is not None else None
        try:
            self._setup_video(cfg)
            self._copies: dict[int, av.stream.Stream] = {}
            self._audio_encoders: dict[int, tuple[av.AudioStream, av.audio.resampler.AudioResampler]] = {}
            self._setup_other_streams(cfg)
            self._copy_container_metadata()
        except BaseException:
            self.abort()
            raise
        self._pending = self._other_packets()
        self._next_other: av.Packet | None = next(self._pending, None)
        self.frames_written = 0
        self.frames_dropped = 0
        """Frames whose pts repeats or goes back (damaged timing, or two VFR frames on one pts):
        no container can show them, so they are dropped and counted, never restamped."""
        self.packets_dropped = 0
        """Copied packets the muxer refused (timestamps out of order after damage)."""
        self._last_pts: int | None = None

    # -- set-up ------------------------------------------------------------------------------

    def _setup_video(self, cfg: EncodeConfig) -> None:
        self._video = v = self._add_video_stream(cfg)
        if self.info.rotation_degrees:
            v.set_display_rotation(self.info.rotation_degrees)
        if self._src is not None:
            src_v = self._src.streams.video[0]
            v.metadata.update(_fresh_tags(src_v.metadata))
            self._video_src_index = src_v.index

    def _add_video_stream(self, cfg: EncodeConfig) -> av.VideoStream:
        """The video stream and its encoder, set for the upscaled size, the source's time base and colour."""
        info = self.info
        width, height = info.width * self.scale, info.height * self.scale
        self.codec = codec = resolve_codec(cfg.codec, width=width, height=height, source_pix_fmt=info.pix_fmt,
                                           bit_depth=info.bit_depth, pix_fmt=cfg.pix_fmt)
        if codec not in self._known_codecs and self._known_codecs:
            fmt_name = self._out.format.name
            raise EncodeError(f"the {fmt_name} container cannot hold {codec} video; choose another --codec or output suffix (.mkv holds all)")
        self.pix_fmt = choose_pix_fmt(codec, info.pix_fmt, info.bit_depth, cfg.pix_fmt)
        rate = info.fps if info.fps else Fraction(25)
        try:
            v = self._out.add_stream(codec, rate=rate)
        except (av.FFmpegError, ValueError) as e:
            raise EncodeError(f"cannot open video encoder {codec!r} ({e})") from e
        v.width, v.height = width, height
        v.pix_fmt = self.pix_fmt
        if codec in ("libx265", "hevc_nvenc") and self._mp4:
            v.codec_context.codec_tag = "hvc1"  # Apple's players and browsers open HEVC in MP4 only as hvc1
        # Keep the source's time base so every pts is copied exactly (VFR stays VFR).
        v.time_base = info.time_base
        v.codec_context.time_base = info.time_base
        cc = v.codec_context
        c = info.color
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = c.primaries, c.transfer, c.matrix, c.range
        options: dict[str, str] = {}
        if codec in CRF_CODECS:
            options["crf"] = str(cfg.crf)
            # SVT-AV1 presets are numbers (0 slowest .. 13 fastest); x264-style names map to 8.
            options["preset"] = cfg.preset if codec != "libsvtav1" or cfg.preset.isdigit() else "8"
            if codec == "libvpx-vp9":  # constant quality needs a zero target bitrate; no named presets
                options.update(b="0", deadline="good", **{"cpu-used": VP9_SPEED.get(cfg.preset, "4"), "row-mt": "1"})
                del options["preset"]
        elif codec.endswith("_nvenc"):
            # Constant quality like CRF: variable bitrate with no cap, quality level cq.
            options.update(rc="vbr", cq=str(cfg.crf), b="0", preset=NVENC_PRESETS.get(cfg.preset, cfg.preset))
        if codec == "libx265":
            options["x265-params"] = "log-level=error"
        if (hdr := hdr10_params(codec, c)) is not None:
            key, value = hdr
            options[key] = ":".join(filter(None, (options.get(key), value)))
        elif c.has_hdr10_metadata:
            self._warn(f"the source's HDR10 mastering-display/light-level metadata is not written by {codec}; "
                       "use --codec libx265 or libx264 to keep it")
        v.options = options
        cc.thread_count = cfg.threads
        return v

    def _setup_other_streams(self, cfg: EncodeConfig) -> None:
        if self._src is None:
            return
        supported = self._known_codecs
        for s in self._src.streams:
            if s.index == self._video_src_index:
                continue
            codec = s.codec_context.name if s.codec_context is not None else None
            what = f"stream #{s.index} ({s.type}{', ' + codec if codec else ''})"
            if s.type == "audio" and cfg.audio == "none":
                self._warn(f"dropping {what}: --audio none")
                continue
            if s.type == "audio" and codec is None:  # a damaged header: nothing says how to read it
                self._warn(f"skipping {what}: its codec is unknown (damaged header)")
                continue
            if s.type == "audio" and (cfg.audio == "aac" or (supported and codec not in supported)):
                target = "aac" if not supported or "aac" in supported else "opus"
                if cfg.audio == "copy":
                    self._warn(f"{what}: the {self._out.format.name} container cannot hold {codec}; re-encoding it to {target}")
                self._add_audio_encoder(s, target)
                continue
            if codec is not None and supported and codec not in supported:
                self._warn(f"skipping {what}: the {self._out.format.name} container cannot hold it; use a .mkv output to keep it")
                continue
            if s.type != "audio" and (why := muxer_accepts(self._out.format.name, s)) is not None:
                self._warn(f"skipping {what}: the {self._out.format.name} muxer refuses it ({why})")
                continue
            try:
                out = self._out.add_stream_from_template(s)
            except (av.FFmpegError, ValueError, TypeError) as e:
                self._warn(f"skipping {what}: cannot copy it ({e})")
                continue
            out.metadata.update(_fresh_tags(s.metadata))
            self._copies[s.index] = out

    def _add_audio_encoder(self, s: av.AudioStream, target: str = "aac") -> None:
        # Opus (what WebM holds) codes at 48 kHz only; AAC keeps the source's rate.
        encoder, sample_format, rate = ("libopus", "flt", 48000) if target == "opus" else ("aac", "fltp", s.codec_context.sample_rate)
        out = self._out.add_stream(encoder, rate=rate)
        out.layout = s.codec_context.layout
        out.metadata.update(_fresh_tags(s.metadata))
        resampler = av.AudioResampler(format=sample_format, layout=s.codec_context.layout, rate=rate)
        self._audio_encoders[s.index] = (out, resampler)

    def _copy_container_metadata(self) -> None:
        if self._src is None:
            return
        self._out.metadata.update(_fresh_tags(self._src.metadata))
        chapters = self._src.chapters()
        if chapters:
            try:
                self._out.set_chapters(chapters)
            except (av.FFmpegError, ValueError, TypeError) as e:
                self._warn(f"chapters not copied: {e}")

    # -- other streams -----------------------------------------------------------------------

    def _other_packets(self) -> Iterator[av.Packet]:
        if self._src is None or self._stream_source is not None:
            return
        wanted = [s for s in self._src.streams if s.index in self._copies or s.index in self._audio_encoders]
        if not wanted:
            return
        for packet in self._src.demux(wanted):
            if packet.size == 0:  # demux's flush packet at end of stream, not data
                continue
            yield packet

    def _take_other(self) -> av.Packet | None:
        """The next packet to copy, or None if there is none (yet, for a stream source)."""
        if self._stream_source is None:
            return next(self._pending, None)
        while (packet := self._stream_source.take_other()) is not None:
            if packet.stream.index in self._copies or packet.stream.index in self._audio_encoders:
                return packet
        return None

    def _mux_others_until(self, seconds: float) -> None:
        """Mux copied packets up to `seconds`, so streams stay interleaved in the file."""
        while True:
            if self._next_other is None:
                self._next_other = self._take_other()
                if self._next_other is None:
                    return
            p = self._next_other
            ts = p.dts if p.dts is not None else p.pts
            if ts is not None and p.time_base is not None and float(ts * p.time_base) > seconds:
                return
            self._mux_other(p)
            self._next_other = None

    def _mux_other(self, packet: av.Packet) -> None:
        index = packet.stream.index
        if index in self._copies:
            packet.stream = self._copies[index]
            self._mux_checked(packet)
            return
        out, resampler = self._audio_encoders[index]
        for frame in packet.decode():
            for resampled in resampler.resample(frame):
                self._out.mux(out.encode(resampled))

    # -- video -------------------------------------------------------------------------------

    def _to_frame(self, rgb: np.ndarray) -> av.VideoFrame:
        fmt = "rgb24" if rgb.dtype == np.uint8 else "rgb48le"
        frame = av.VideoFrame.from_ndarray(rgb, format=fmt)
        c = self.info.color
        return frame.reformat(
            format=self.pix_fmt,
            dst_colorspace=swscale_matrix(c.matrix),
            dst_color_range=c.range or None,
            dst_color_trc=c.transfer,
            dst_color_primaries=c.primaries,
        )

    def write(self, batch: FrameBatch) -> None:
        """Encode a batch of upscaled frames; each keeps its pts."""
        if batch.time_base != self.info.time_base:
            raise EncodeError(f"frame time base {batch.time_base} differs from the source's {self.info.time_base}")
        hwc = batch.data.permute(0, 2, 3, 1).contiguous().numpy()
        for rgb, pts in zip(hwc, batch.pts.tolist(), strict=True):
            if self._last_pts is not None and pts <= self._last_pts:
                self.frames_dropped += 1
                continue
            self._last_pts = pts
            frame = self._to_frame(rgb)
            frame.pts = pts
            frame.time_base = self._video.codec_context.time_base
            self._encode(frame)
            self.frames_written += 1

    def _encode(self, frame: av.VideoFrame | None) -> None:
        try:
            packets = self._video.encode(frame)
        except av.FFmpegError as e:
            raise EncodeError(f"video encoder failed: {e}") from e
        for packet in packets:
            if packet.pts is not None and packet.time_base is not None:
                self._mux_others_until(float(packet.pts * packet.time_base))
            self._mux_checked(packet)

    def _mux_checked(self, packet: av.Packet) -> None:
        """Mux a packet; one the muxer refuses for its timestamps (EINVAL) is dropped and counted."""
        try:
            self._out.mux(packet)
        except av.ArgumentError:
            self.packets_dropped += 1

    def close(self) -> None:
        """Flush the encoder, copy the remaining packets, write the trailer."""
        self._encode(None)  # frames the encoder still holds
        if self._stream_source is not None:
            self._stream_source.finish()  # audio after the last video packet
        self._mux_others_until(math.inf)
        for out, _ in self._audio_encoders.values():
            self._out.mux(out.encode(None))
        if self._src is not None and self._stream_source is None:
            self._src.close()
        self._out.close()
        if self.frames_dropped:
            self._warn(f"{self.frames_dropped} frame(s) dropped: their timestamps repeat or go back in the source")
        if self.packets_dropped:
            self._warn(f"{self.packets_dropped} packet(s) dropped: the muxer refused their timestamps")

    def abort(self) -> None:
        """Close both files without finalising the output (the caller deletes it)."""
        owned_source = getattr(self, "_src", None) if getattr(self, "_stream_source", None) is None else None
        for container in (owned_source, getattr(self, "_out", None)):
            if container is not None:
                with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                    container.close()
