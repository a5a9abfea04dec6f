"""probe(): read a source's streams and video properties once, with clear errors for bad input."""

from __future__ import annotations

import hashlib
import math
import re
import struct
from fractions import Fraction
from pathlib import Path

import av
import av.logging

from ..errors import InputError
from ..frames import ColorInfo, ContentLightLevel, MasteringDisplay, StreamInfo, VideoInfo

# FFmpeg's last-resort demuxers render any text file as "video"; a user never means that.
_TEXT_FORMATS = {"tty"}



def codec_name(cc: av.codec.context.CodecContext) -> str:
    """The codec's name: FFmpeg's own decoders are named after it (h264, srt), a library's after
    the library (libdav1d decodes av1), so those give the codec's canonical name."""
    if cc.name.startswith("lib"):
        return getattr(cc.codec, "canonical_name", None) or cc.name
    return cc.name

def check_source(path: str | Path) -> Path:
    """Raise `InputError` unless `path` is a non-empty regular file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file; check the path")
    if p.is_dir():
        raise InputError(f"{p}: is a directory; give a video file (or use `streamsr batch` for folders)")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty (0 bytes)")
    return p


_BAD_SIZE = re.compile(r"Picture size (\d+)x(\d+) is invalid")


def _open_failure(path: Path, e: av.FFmpegError) -> str:
    """Why FFmpeg could not open `path`, in words. Its log says more than the errno (a picture size
    it refuses comes back as EBUSY), but PyAV keeps no log by default: open once more with it on."""
    detail = ""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(), av.open(str(path), metadata_errors="ignore"):
            pass
    except av.FFmpegError as again:
        detail = again.log[2].strip() if again.log else ""
    finally:
        av.logging.set_level(level)
    if size := _BAD_SIZE.search(detail):
        return f"declares a {size[1]}x{size[2]} picture, larger than FFmpeg can decode; the header is damaged or the video too large"
    return f"not a media file FFmpeg can read ({e.strerror or e})"


def open_input(path: str | Path) -> av.container.InputContainer:
    """Open a media file with PyAV, turning FFmpeg's errors into `InputError`."""
    p = check_source(path)
    try:
        container = av.open(str(p), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise InputError(f"{p}: {_open_failure(p, e)}") from e
    if container.format.name in _TEXT_FORMATS:
        container.close()
        raise InputError(f"{p}: not a media file FFmpeg can read (it looks like text)")
    return container


def bit_depth_of(pix_fmt: str) -> int:
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.FFmpegError):
        return 8


def _stream_info(stream: av.stream.Stream) -> StreamInfo:
    kind = stream.type
    cc = stream.codec_context
    codec = codec_name(cc) if cc is not None else (getattr(stream, "codec_tag", None) or "data")
    detail = ""
    if kind == "video" and cc is not None:
        detail = f"{cc.width}x{cc.height} {cc.pix_fmt}"
    elif kind == "audio" and cc is not None:
        layout = cc.layout.name if cc.layout else f"{cc.channels} ch"
        detail = f"{cc.sample_rate} Hz {layout}"
    return StreamInfo(stream.index, kind, codec, stream.metadata.get("language"), detail)


def _frame_steps(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> list[int]:
    """pts differences of the first ~48 frames, from demuxed packets (nothing is decoded)."""
    pts = []
    for packet in container.demux(stream):
        if packet.pts is not None:
            pts.append(packet.pts)
        if len(pts) >= 64:
            break
    return pts_steps(pts)


def pts_steps(pts: list[int]) -> list[int]:
    """Differences between the first 48 presentation times of ~64 read ahead. Packets come in
    decode order; with B-frames the newest ones may still have gaps, so only the first 48
    presentation times are complete."""
    first = sorted(pts)[:48]
    return [b - a for a, b in zip(first, first[1:], strict=False)]


def is_variable_rate(steps: list[int], tb: Fraction) -> bool:
    """True when the pts steps vary. Millisecond-rounded timestamps (Matroska) jitter by a tick,
    and a constant-rate timeline with holes (frames a damaged file lost) has steps that are whole
    multiples of its usual (median) step: neither is variable."""
    if not steps:
        return False
    base = sorted(steps)[len(steps) // 2]
    slack = Fraction(1, 1000) + tb
    if base <= 0:
        return (max(steps) - min(steps)) * tb > slack
    for step in steps:
        multiple = max(1, round(step / base))
        if abs(step - multiple * base) * tb > slack / 2 + multiple * tb:  # each frame may round by a tick
            return True
    return False


def frame_rate(stream: av.video.stream.VideoStream, steps: list[int]) -> Fraction:
    """The stream's frame rate: as declared, unless its pts steps say otherwise."""
    fps = Fraction(stream.average_rate or stream.guessed_rate or 0)
    if steps and min(steps) > 0:
        measured = 1 / (Fraction(sorted(steps)[len(steps) // 2]) * Fraction(stream.time_base))
        # Some muxers report the time base as the rate (Matroska: 1000 fps); trust the pts.
        if not fps or not measured / 2 < fps < measured * 2:
            fps = measured.limit_denominator(1001)
    return fps


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def hdr_metadata(frame: av.VideoFrame) -> tuple[MasteringDisplay | None, ContentLightLevel | None]:
    """HDR10 static metadata carried as frame side data (decoders attach it to every frame)."""
    mastering = light = None
    for side in frame.side_data:
        raw = bytes(side)
        if side.type == av.sidedata.sidedata.Type.MASTERING_DISPLAY_METADATA and len(raw) == 88:
            # AVMasteringDisplayMetadata: 3 primaries (R, G, B) and the white point as (x, y)
            # rationals, min and max luminance as rationals, then has_primaries, has_luminance.
            v = struct.unpack("<22i", raw)
            xy = [(_ratio(v[i], v[i + 1]), _ratio(v[i + 2], v[i + 3])) for i in range(0, 16, 4)]
            if v[20] and v[21]:  # both halves present; a half-filled record cannot be signalled
                mastering = MasteringDisplay(red=xy[0], green=xy[1], blue=xy[2], white_point=xy[3],
                                             min_luminance=_ratio(v[16], v[17]), max_luminance=_ratio(v[18], v[19]))
        elif side.type == av.sidedata.sidedata.Type.CONTENT_LIGHT_LEVEL and len(raw) == 8:
            light = ContentLightLevel(*struct.unpack("<2I", raw))
    return mastering, light


def probe(path: str | Path) -> VideoInfo:
    """Describe the first video stream of `path` and list all its streams.

    Raises:
        InputError: missing, a directory, empty, unreadable, no video stream, or no decodable frame.
    """
    p = check_source(path)
    with open_input(p) as container:
        if not container.streams.video:
            kinds = ", ".join(s.type for s in container.streams) or "no streams"
            raise InputError(f"{p}: has no video stream ({kinds})")
        stream = container.streams.video[0]
        cc = stream.codec_context
        try:
            first = next(container.decode(stream))
        except (av.FFmpegError, StopIteration) as e:
            raise InputError(f"{p}: the video stream does not decode ({e}); the file may be corrupt or truncated") from e
        width, height, codec = cc.width, cc.height, codec_name(cc)
    # The frame steps from a second open rather than a seek back: damaged files can refuse to seek.
    with open_input(p) as container:
        stream = container.streams.video[0]
        steps = _frame_steps(container, stream)
        tb = Fraction(stream.time_base)
        variable = is_variable_rate(steps, tb)
        fps = frame_rate(stream, steps)
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        estimate = stream.frames or (math.ceil(duration * fps) if duration and fps else 0)
        return VideoInfo(
            width=width, height=height, fps=fps, time_base=Fraction(stream.time_base),
            num_frames_estimate=int(estimate), codec=codec, pix_fmt=first.format.name,
            bit_depth=bit_depth_of(first.format.name), color=color_of(first),
            rotation_degrees=int(first.rotation or 0), duration_seconds=duration,
            variable_frame_rate=variable, container=container.format.name,
            streams=stream_infos(container), **shape_of(stream, first),
        )


# AVFieldOrder: 1 progressive; 2 TT and 5 BT show the top field first, 3 BB and 4 TB the bottom one.
_FIELD_ORDERS = {1: "progressive", 2: "tff", 5: "tff", 3: "bff", 4: "bff"}


def shape_of(stream: av.video.stream.VideoStream, first: av.VideoFrame) -> dict[str, object]:
    """The `VideoInfo` fields of the picture's shape: its sample aspect ratio (1 where unknown or
    nonsensical) and its declared field order (frame flags where the stream declares none)."""
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    if not sar or sar <= 0:
        sar = Fraction(1)
    order = _FIELD_ORDERS.get(int(stream.codec_context.field_order or 0), "unknown")
    if order == "unknown":
        order = "unknown" if first.interlaced_frame else "progressive"
    return {"sample_aspect_ratio": Fraction(sar), "field_order": order}


def color_of(frame: av.VideoFrame) -> ColorInfo:
    """A decoded frame's colour description, HDR10 static metadata included."""
    mastering, light = hdr_metadata(frame)
    return ColorInfo(
        primaries=int(frame.color_primaries), transfer=int(frame.color_trc),
        matrix=int(frame.colorspace), range=int(frame.color_range),
        mastering_display=mastering, content_light=light,
    )


def stream_infos(container: av.container.InputContainer) -> tuple[StreamInfo, ...]:
    return tuple(_stream_info(s) for s in container.streams)


def file_digest(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in pieces (a segment or a source may be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def source_identity(src: Path, *, blocks: int = 16, block_size: int = 1 << 16) -> dict[str, int | str]:
    """Size, time and a hash of `blocks` blocks spread over the file (the last one included): a
    different file with the same size and time is told apart without reading all of it."""
    st = src.stat()
    digest = hashlib.sha256()
    with src.open("rb") as f:
        for i in range(blocks):
            f.seek(max(0, (st.st_size - block_size) * i // max(1, blocks - 1)))
            digest.update(f.read(block_size))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sample_sha256": digest.hexdigest()}
