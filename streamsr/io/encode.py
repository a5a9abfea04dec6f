"""PyAVEncoder: encode upscaled frames at their source pts, beside a copy of the source's other streams.

The video is encoded at the upscaled size with the source's time base, colour and HDR metadata;
everything else (audio, subtitles, chapters, metadata) is `StreamCopier`'s. The output may be a
file, stdout (``-``) or a URL FFmpeg writes to.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import EncodeError
from ..frames import FrameBatch, VideoInfo
from .codecs import CRF_CODECS, NVENC_PRESETS, VP9_SPEED, EncodeConfig, choose_pix_fmt, hdr10_params, resolve_codec
from .passthrough import StreamCopier, Warn, known_codecs, mux_or_count
from .pyav import swscale_matrix
from .stream import StreamSource, ffmpeg_location, is_stream_location

_MP4_FORMATS = {"mp4", "mov", "ipod", "ismv", "3gp"}
_MP4_SUFFIXES = (".mp4", ".mov", ".m4v")


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
        self._copier: StreamCopier | None = None
        try:
            self._video = self._add_video_stream(cfg)
            if self.info.rotation_degrees:
                self._video.set_display_rotation(self.info.rotation_degrees)
            # Without a source (a camera), there are no other streams to copy.
            if source is not None:
                self._copier = StreamCopier(self._out, source, audio=cfg.audio, warn=self._warn)
                self._video.metadata.update(self._copier.video_tags)
        except BaseException:
            self.abort()
            raise
        self.frames_written = 0
        self.frames_dropped = 0
        """Frames whose pts repeats or goes back (damaged timing, or two VFR frames on one pts):
        no container can show them, so they are dropped and counted, never restamped."""
        self.packets_dropped = 0
        """Video packets the muxer refused (timestamps out of order after damage)."""
        self._last_pts: int | None = None

    # -- set-up ------------------------------------------------------------------------------

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
        if info.sample_aspect_ratio != 1:  # non-square pixels display as the source did
            cc.sample_aspect_ratio = info.sample_aspect_ratio
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

    # -- video -------------------------------------------------------------------------------

    def _to_frame(self, rgb: np.ndarray) -> av.VideoFrame:
        fmt = "rgb24" if rgb.dtype == np.uint8 else "rgb48le"
        frame = av.VideoFrame.from_ndarray(rgb, format=fmt)
        c = self.info.color
        # The RGB is already in the source's primaries and transfer: tag it so. Asking swscale for
        # other primaries than the frame's makes it convert the gamut (BT.2020 came out desaturated).
        frame.color_primaries, frame.color_trc = c.primaries, c.transfer
        return frame.reformat(
            format=self.pix_fmt,
            dst_colorspace=swscale_matrix(c.matrix),
            dst_color_range=c.range or None,
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
            self._mux_video(packet)

    def _mux_others_until(self, seconds: float) -> None:
        if self._copier is not None:
            self._copier.mux_until(seconds)

    def _mux_video(self, packet: av.Packet) -> None:
        self.packets_dropped += not mux_or_count(self._out, packet)

    def close(self) -> None:
        """Flush the encoder, copy the remaining packets, write the trailer."""
        self._encode(None)  # frames the encoder still holds
        if self._copier is not None:
            self._copier.close()
            self.packets_dropped += self._copier.packets_dropped
        self._out.close()
        if self.frames_dropped:
            self._warn(f"{self.frames_dropped} frame(s) dropped: their timestamps repeat or go back in the source")
        if self.packets_dropped:
            self._warn(f"{self.packets_dropped} packet(s) dropped: the muxer refused their timestamps")

    def abort(self) -> None:
        """Close the source and the output without finalising it (the caller deletes it)."""
        if getattr(self, "_copier", None) is not None:
            self._copier.abort()
        if getattr(self, "_out", None) is not None:
            with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                self._out.close()
