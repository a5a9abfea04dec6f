"""Codec policy: which encoder, pixel format and options an output gets, and what a container holds.

Pure decisions over FFmpeg's capabilities (some found by opening an encoder or a muxer in memory);
`PyAVEncoder` applies them.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import EncodeError
from ..frames import ColorInfo

# Pixel formats we may encode, from 8-bit to deeper, by chroma layout.
_PIX_FMTS_8 = {"420": "yuv420p", "422": "yuv422p", "444": "yuv444p"}
_PIX_FMTS_10 = {"420": "yuv420p10le", "422": "yuv422p10le", "444": "yuv444p10le"}
# Encoders that take a "crf" option, and the option name of their speed preset.
CRF_CODECS = {"libx264", "libx265", "libsvtav1", "libvpx-vp9", "libaom-av1"}

# What --codec auto tries, in order: NVENC when the GPU has it (H.264 first, HEVC for frames wider
# than H.264's 4096 px limit, HEVC only for 10-bit), else x264 (x265 for 10-bit) on every core.
# Datacenter GPUs such as the H100 have no NVENC: there the open fails and the CPU encoder is chosen.
AUTO_CODEC = "auto"
_AUTO_CANDIDATES_8 = ("h264_nvenc", "hevc_nvenc")
_AUTO_CANDIDATES_10 = ("hevc_nvenc",)
_CPU_FALLBACK = "libx264"
_CPU_FALLBACK_10 = "libx265"
"""10-bit sources: HEVC Main10 plays on phones, TVs, browsers and Apple devices; 10-bit H.264
(High 10) plays on almost none of them."""
# x264 preset names -> NVENC's p1 (fastest) .. p7 (best); a p-name passes through.
NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p4",
                  "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7"}


@dataclass(frozen=True)
class EncodeConfig:
    """Video encoder settings. Pixel format and bit depth follow the source unless set."""

    codec: str = AUTO_CODEC
    """An FFmpeg encoder name, or "auto" (NVENC where the GPU has it, else libx264)."""
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str = ""
    """Empty: follow the source (chroma layout and 8- or 10-bit) as far as the codec allows."""
    audio: str = "copy"
    """"copy" (re-encode to AAC only if the container cannot hold the source codec), "aac", "none"."""
    threads: int = 0
    """Encoder threads; 0 lets the encoder use every core."""
    faststart: bool = False
    """MP4/MOV: put the index at the front so playback starts before the download ends (web)."""

    def __post_init__(self) -> None:
        if self.audio not in ("copy", "aac", "none"):
            raise ValueError(f"audio must be copy, aac or none, got {self.audio!r}")
        if self.crf < 0 or self.threads < 0:
            raise ValueError("crf and threads must be >= 0")


def _chroma(pix_fmt: str) -> str:
    if "444" in pix_fmt or pix_fmt.startswith(("gbr", "rgb", "bgr")):
        return "444"
    return "422" if "422" in pix_fmt else "420"


def choose_pix_fmt(codec: str, source_pix_fmt: str, bit_depth: int, requested: str = "") -> str:
    """Follow the source's chroma layout and depth where `codec` allows; else the closest 8-bit."""
    try:
        supported = {f.name for f in (av.codec.Codec(codec, "w").video_formats or ())}
    except av.FFmpegError as e:
        raise EncodeError(f"unknown video encoder {codec!r} ({e})") from e
    if requested:
        if supported and requested not in supported:
            raise EncodeError(f"{codec} cannot encode {requested}; it supports {', '.join(sorted(supported))}")
        return requested
    chroma = _chroma(source_pix_fmt)
    # p010le: the 10-bit layout NVENC takes.
    wanted = [_PIX_FMTS_10[chroma], _PIX_FMTS_10["420"], "p010le"] if bit_depth > 8 else []
    wanted += [_PIX_FMTS_8[chroma], "yuv420p"]
    for fmt in wanted:
        if not supported or fmt in supported:
            return fmt
    return sorted(supported)[0]


@functools.cache
def encoder_opens(codec: str, width: int, height: int, pix_fmt: str) -> bool:
    """True if `codec` opens for this frame size and pixel format on this machine.

    Listing an encoder is not enough for hardware ones: PyAV's FFmpeg lists NVENC everywhere, and
    only opening it finds out whether a GPU with NVENC (and a driver) is there. Costs milliseconds.
    """
    try:
        cc = av.codec.CodecContext.create(codec, "w")
        cc.width, cc.height, cc.pix_fmt = width, height, pix_fmt
        cc.time_base = Fraction(1, 25)
        cc.open()
    except (av.FFmpegError, OSError, ValueError):
        return False
    return True


_WEB_CONTAINERS = {".webm": "libvpx-vp9"}
VP9_SPEED = {"ultrafast": "8", "superfast": "7", "veryfast": "6", "faster": "5", "fast": "5", "medium": "4",
              "slow": "2", "slower": "1", "veryslow": "0"}
"""x264 preset names as libvpx-vp9 cpu-used speeds."""
"""Containers that hold neither H.264 nor HEVC, and the encoder "auto" picks for them."""


def resolve_codec(
    codec: str, *, width: int, height: int, source_pix_fmt: str, bit_depth: int, pix_fmt: str = "", container: str = ""
) -> str:
    """The encoder `--codec` means for an output of `width` x `height` in a file with suffix
    `container`: itself, or for "auto" VP9 for WebM, else the first NVENC encoder that opens here
    (and takes `pix_fmt`, if one is asked for), else x265 (Main10) for sources of more than 8 bits
    and x264 for 8-bit ones."""
    if codec != AUTO_CODEC:
        return codec
    if container.lower() in _WEB_CONTAINERS:
        return _WEB_CONTAINERS[container.lower()]
    for candidate in _AUTO_CANDIDATES_10 if bit_depth > 8 else _AUTO_CANDIDATES_8:
        try:
            candidate_fmt = choose_pix_fmt(candidate, source_pix_fmt, bit_depth, pix_fmt)
        except EncodeError:  # e.g. yuv420p10le asked for: NVENC takes 10-bit only as p010le
            continue
        if encoder_opens(candidate, width, height, candidate_fmt):
            return candidate
    if bit_depth > 8 and _CPU_FALLBACK_10 in av.codecs_available:
        return _CPU_FALLBACK_10
    return _CPU_FALLBACK


# Encoders that write HDR10 static metadata (SEI) from their private options, and how they name it.
_HDR10_OPTIONS = {
    "libx264": ("x264-params", "mastering-display", "cll"),
    "libx265": ("x265-params", "master-display", "max-cll"),
}


def _sei_xy(point: tuple[float, float]) -> str:
    return f"({round(point[0] * 50000)},{round(point[1] * 50000)})"


def hdr10_params(codec: str, color: ColorInfo) -> tuple[str, str] | None:
    """(option, value) that makes `codec` signal the source's mastering display and content light
    level, or None if there is nothing to signal or `codec` cannot (see `_HDR10_OPTIONS`).

    Units are those of the HEVC/AVC SEI: chromaticity in 1/50000, luminance in 1/10000 cd/m2.
    """
    if codec not in _HDR10_OPTIONS or not color.has_hdr10_metadata:
        return None
    option, display_key, light_key = _HDR10_OPTIONS[codec]
    parts = []
    if (md := color.mastering_display) is not None:
        parts.append(f"{display_key}=G{_sei_xy(md.green)}B{_sei_xy(md.blue)}R{_sei_xy(md.red)}WP{_sei_xy(md.white_point)}"
                     f"L({round(md.max_luminance * 10000)},{round(md.min_luminance * 10000)})")
    if (cl := color.content_light) is not None:
        parts.append(f"{light_key}={cl.max_cll},{cl.max_fall}")
    return option, ":".join(parts)


SIDE_FILE_MUXERS = frozenset({"hls", "dash", "segment", "stream_segment", "ssegment"})


def muxer_accepts(format_name: str, stream: av.stream.Stream) -> str | None:
    """Try a header with a copy of `stream` in memory; None if the muxer accepts it, else why not.

    `supported_codecs` knows nothing of codec-less data streams (e.g. Apple's timed metadata),
    which MP4's muxer refuses only when it writes the header: too late to skip them there.
    """
    if format_name in SIDE_FILE_MUXERS:
        # These write each stream's media into files of their own; a trial would leave some behind.
        return f"{format_name} output carries video and audio only"
    buffer = io.BytesIO()
    try:
        with av.open(buffer, "w", format=format_name) as trial:
            v = trial.add_stream("mpeg4", rate=25)
            v.width, v.height, v.pix_fmt = 16, 16, "yuv420p"
            trial.add_stream_from_template(stream)
            trial.start_encoding()
    except (av.FFmpegError, ValueError, TypeError) as e:
        return str(e)
    return None


def output_format_supports(path: Path, codec: str) -> bool:
    """True if the container chosen by `path`'s suffix can hold `codec` ("auto" counts as H.264)."""
    codec = _CPU_FALLBACK if codec == AUTO_CODEC else codec
    try:
        with av.open(str(path), "w") as probe_out:  # nothing is written until a header is
            return codec in probe_out.supported_codecs
    except (av.FFmpegError, ValueError):
        return False
