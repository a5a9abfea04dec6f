"""Sources and sinks that are not regular files: stdin/stdout (``-``) and anything FFmpeg opens by
URL (``http(s)://``, ``rtsp://``, ``rtmp://``, ``srt://``, ``udp://``, ``tcp://``, ``file:``).

Such a source can be read only once, in order, without seeking. `StreamSource` therefore opens
it once and demuxes every stream from that one read: video packets go to the decoder, the others
(audio, subtitles) wait in a queue for the muxer to copy. Its description (`VideoInfo`) comes from
the same read: the first frame is decoded there and handed to the decoder, not decoded twice.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av

from ..errors import InputError
from ..frames import VideoInfo
from .probe import bit_depth_of, codec_name, color_of, frame_rate, is_variable_rate, pts_steps, shape_of, stream_infos

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_LOOKAHEAD_PACKETS = 64
"""Video packets read ahead at open to tell constant from variable frame rate (about 2 s of video)."""


def is_stream_location(location: str) -> bool:
    """True for ``-`` (stdin/stdout) and URLs; False for paths (a Windows drive letter is a path)."""
    return location == "-" or (_URL.match(location) is not None and not re.match(r"^[A-Za-z]:[\\/]", location))


# Protocols and capture devices that deliver in real time: they do not wait for a slow reader.
LIVE_PROTOCOLS = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "rtmpt", "srt", "udp", "rtp", "tcp"})
LIVE_FORMATS = frozenset({"v4l2", "video4linux2", "avfoundation", "dshow", "gdigrab", "x11grab", "kmsgrab", "decklink"})
LIVE_POLICIES = ("auto", "drop", "wait")


def is_live(location: str, fmt: str | None = None) -> bool:
    """True for a source that runs in real time (a network stream or a capture device), as
    opposed to one read at the reader's pace (a file, an HTTP download, a pipe)."""
    scheme = location.split(":", 1)[0].lower() if _URL.match(location) else ""
    return scheme in LIVE_PROTOCOLS or (fmt or "") in LIVE_FORMATS


def reconnect_options(location: str) -> dict[str, str]:
    """FFmpeg's options to reconnect an HTTP(S) source that drops; `ValueError` for others."""
    if not location.lower().startswith(("http://", "https://")):
        raise ValueError("--reconnect works for http(s) sources; FFmpeg cannot resume other protocols mid-stream")
    return {"reconnect": "1", "reconnect_streamed": "1", "reconnect_on_network_error": "1", "reconnect_delay_max": "30"}


LIVE_JUMP_SECONDS = 1.0
"""How far back a live source's decode time may step (a broadcast's discontinuity) before it
counts as restarted. A source read at the reader's pace (a file over HTTP, a pipe) never steps
back: any step back there is a restart, and nothing of it may be spliced in."""


def describe_network_error(error: BaseException, timeout: float | None) -> str:
    """An error of a network read in words: FFmpeg reports its own time-out as an "immediate exit"."""
    if isinstance(error, av.ExitError | TimeoutError):
        return f"timed out: no data for {timeout:g} s" if timeout else "timed out"
    return getattr(error, "strerror", None) or str(error)


PLAYLIST_FORMATS = {".m3u8": "hls", ".mpd": "dash"}


def is_playlist(location: str, fmt: str | None = None) -> bool:
    """True for an HLS or DASH output: a playlist file plus media files named after it."""
    return fmt in PLAYLIST_FORMATS.values() or Path(location).suffix.lower() in PLAYLIST_FORMATS


def playlist_options(location: str, fmt: str | None, options: dict[str, str] | None) -> dict[str, str]:
    """`options` plus media file names after the playlist's own: HLS does so by itself, DASH
    names them init-stream0.m4s... whatever the manifest, and two manifests in a folder collide."""
    merged = dict(options or {})
    if (fmt or PLAYLIST_FORMATS.get(Path(location).suffix.lower())) == "dash":
        stem = Path(location).stem
        merged.setdefault("init_seg_name", f"{stem}-init-stream$RepresentationID$.$ext$")
        merged.setdefault("media_seg_name", f"{stem}-chunk-stream$RepresentationID$-$Number%05d$.$ext$")
    return merged


def ffmpeg_location(location: str, *, output: bool) -> str:
    """The name FFmpeg opens: ``-`` is its pipe protocol on stdout or stdin."""
    if location == "-":
        return "pipe:1" if output else "pipe:0"
    return location


def parse_options(pairs: tuple[str, ...] | list[str], what: str) -> dict[str, str]:
    """``key=value`` strings as a dict; raises `ValueError` naming the malformed one."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} must be key=value, got {pair!r}")
        options[key] = value
    return options


class StreamSource:
    """One read of a source: demuxes all its streams once, in order.

    `video_packets()` is consumed by the decoder (on the decoding thread); the other streams'
    packets collect in `take_other()`'s queue as the demux passes them. `finish()` reads the rest
    of the source after the video ended (the muxer calls it at close), so trailing audio is kept.
    """

    def __init__(self, location: str, *, fmt: str | None = None, options: dict[str, str] | None = None,
                 timeout: float | None = 30.0, lookahead: int = _LOOKAHEAD_PACKETS) -> None:
        """`lookahead`: video packets read ahead to tell constant from variable frame rate; 0 for a
        preview that must start at once (the rate is then the one the stream declares)."""
        self.location = location
        self._lookahead = lookahead
        try:
            self.container = av.open(ffmpeg_location(location, output=False), "r", format=fmt, options=options or {},
                                     metadata_errors="ignore", timeout=timeout)
        except (av.FFmpegError, OSError) as e:  # OSError: a refused or dropped connection
            raise InputError(f"{location}: cannot open ({describe_network_error(e, timeout)})") from e
        except ValueError as e:  # an unknown -f name
            raise InputError(f"{location}: {e}") from e
        if not self.container.streams.video:
            kinds = ", ".join(s.type for s in self.container.streams) or "no streams"
            self.container.close()
            raise InputError(f"{location}: has no video stream ({kinds})")
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self._demux = self.container.demux()
        self._video: collections.deque[av.Packet] = collections.deque()
        self._other: collections.deque[av.Packet] = collections.deque()
        self._ended = False
        self._timeout = timeout
        self.error: av.FFmpegError | None = None
        """What ended the demux early (a dropped connection), if anything."""
        self.restarted_at: float | None = None
        """The time (s) the video went back to, where a reconnect restarted the stream from an
        earlier point (a server that ignores byte ranges sends the file again from its start):
        the read ends there rather than splice the restart into the output."""
        self._latest: dict[int, float] = {}
        self._jump = LIVE_JUMP_SECONDS if is_live(location, fmt) else 0.0
        self._shown = -math.inf  # the latest presentation time of a video packet
        self.first_frames: list[av.VideoFrame] = []
        """Frames decoded to describe the source; the decoder yields them first."""
        self.info = self._describe()

    def _pull(self) -> bool:
        """Read one packet into its queue; False once the source has ended."""
        if self._ended:
            return False
        try:
            packet = next(self._demux)
        except StopIteration:
            self._ended = True
            return False
        except av.FFmpegError as e:
            self.error, self._ended = e, True
            return False
        is_video = packet.stream.index == self.video.index
        if packet.size == 0 and not is_video:  # end-of-stream marker; the video's flushes the decoder
            return True
        if self._went_back(packet):
            self._ended = True
            return False
        (self._video if is_video else self._other).append(packet)
        return True

    def _went_back(self, packet: av.Packet) -> bool:
        """True when a packet's decode time lies before the latest of its stream (for a live source:
        more than `LIVE_JUMP_SECONDS` before): the source started over. Decode times only rise;
        B-frames reorder presentation times only."""
        if packet.time_base is None or packet.stream.type not in ("video", "audio"):
            return False
        # A keyframe is shown after every frame decoded before it: one whose presentation time is not
        # past them all starts the stream over (Matroska's first packets carry no decode time).
        if packet.stream.type == "video" and packet.pts is not None:
            shown = float(packet.pts * packet.time_base)
            if packet.is_keyframe and shown <= self._shown - self._jump and math.isfinite(self._shown):
                self.restarted_at = shown
                return True
            self._shown = max(self._shown, shown)
        # Decode times only rise; presentation times go back and forth with B-frames.
        if packet.dts is None:
            return False
        seconds = float(packet.dts * packet.time_base)
        latest = self._latest.get(packet.stream.index, -math.inf)
        if seconds < latest - self._jump:
            self.restarted_at = seconds
            return True
        self._latest[packet.stream.index] = max(latest, seconds)
        return False

    def describe_error(self) -> str | None:
        """Why the read ended early, in words; None if it did not."""
        if self.restarted_at is not None:
            return (f"it went back to {max(0.0, self.restarted_at):.1f} s and started over, as a reconnect to a server "
                    "that ignores byte ranges does; nothing after that point is spliced in")
        if self.error is None:
            return None
        return describe_network_error(self.error, self._timeout)

    def video_packets(self) -> Iterator[av.Packet]:
        while True:
            if self._video:
                yield self._video.popleft()
            elif not self._pull():
                return

    def frames(self, on_damaged: Callable[[], None] | None = None) -> Iterator[av.VideoFrame]:
        """The video's decoded frames, from the first; a packet the decoder refuses is skipped
        (and reported to `on_damaged`)."""
        first, self.first_frames = self.first_frames, []
        yield from first
        for packet in self.video_packets():
            try:
                decoded = packet.decode()
            except av.InvalidDataError:
                if on_damaged is not None:
                    on_damaged()
                continue
            yield from decoded

    def take_other(self) -> av.Packet | None:
        """The next non-video packet read so far, or None if none is waiting."""
        return self._other.popleft() if self._other else None

    def finish(self) -> None:
        """Read to the end, keeping the other streams' packets (the video has been decoded)."""
        while self._pull():
            self._video.clear()

    def _describe(self) -> VideoInfo:
        stream = self.video
        packets = self.video_packets()
        while not self.first_frames:
            packet = next(packets, None)
            try:
                self.first_frames.extend(packet.decode() if packet is not None else stream.codec_context.decode(None))
            except av.FFmpegError as e:
                raise InputError(f"{self.location}: the video stream does not decode ({e})") from e
            if packet is None and not self.first_frames:
                raise InputError(f"{self.location}: {self._no_frame_reason()}")
        first = self.first_frames[0]
        while len(self._video) < self._lookahead and self._pull():
            pass
        steps = pts_steps([f.pts for f in self.first_frames if f.pts is not None]
                          + [p.pts for p in self._video if p.pts is not None])
        tb = Fraction(stream.time_base)
        fps = frame_rate(stream, steps)
        duration = self.container.duration / av.time_base if self.container.duration else None
        cc = stream.codec_context
        return VideoInfo(
            width=cc.width, height=cc.height, fps=fps, time_base=tb,
            num_frames_estimate=math.ceil(duration * fps) if duration and fps else 0,
            codec=codec_name(cc), pix_fmt=first.format.name, bit_depth=bit_depth_of(first.format.name),
            color=color_of(first), rotation_degrees=int(first.rotation or 0), duration_seconds=duration,
            variable_frame_rate=is_variable_rate(steps, tb), container=self.container.format.name,
            streams=stream_infos(self.container), **shape_of(stream, first),
        )

    def _no_frame_reason(self) -> str:
        if self.error is None:
            return "the video stream ended before its first frame"
        if "mp4" in self.container.format.name and self.location == "-":
            # MP4 written without faststart keeps its index after the data: reading it needs a seek back.
            return ("an MP4 with its index at the end cannot be read from a pipe; give the file's path, "
                    "or remux it with its index first (ffmpeg -i in.mp4 -c copy -movflags faststart out.mp4)")
        return f"the stream broke off before its first frame ({self.error.strerror or self.error})"

    def close(self) -> None:
        self.container.close()
