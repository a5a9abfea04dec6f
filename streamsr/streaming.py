"""upscale_stream(): upscale from a pipe or network source, or into stdout or a network sink.

The source is read once (`io.stream.StreamSource`): the decoder and the stream copy share that
read, nothing seeks, and no duration is needed. A file output is still written under a hidden
name and renamed when complete; stdout and URLs cannot be, so a failure there ends the stream
where it stopped (the exit code says so) and leaves no file behind.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import av

from .engine import Upscaler
from .errors import DecodeError, EncodeError, OutputError
from .io.encode import PyAVEncoder
from .io.pyav import PyAVDecoder
from .io.stream import LIVE_POLICIES, StreamSource, is_live, is_playlist, is_stream_location, playlist_options
from .partials import remove_partial, remove_partials_of, temporary_path
from .pipeline import (
    Progress,
    UpscaleConfig,
    UpscaleResult,
    Warn,
    WarningLog,
    check_complete,
    check_output,
    check_scale,
    make_upscaler,
    output_codec,
    run_stages,
)


def upscale_stream(
    src: str | Path,
    dst: str | Path,
    config: UpscaleConfig | None = None,
    *,
    input_format: str | None = None,
    input_options: dict[str, str] | None = None,
    output_format: str | None = None,
    output_options: dict[str, str] | None = None,
    live_policy: str = "auto",
    upscaler: Upscaler | None = None,
    on_progress: Progress | None = None,
    on_warning: Warn | None = None,
) -> UpscaleResult:
    """Upscale `src` into `dst`, either of which may be ``-`` (stdin/stdout) or a URL.

    `input_format`/`output_format` name FFmpeg's demuxer/muxer (``matroska``, ``mpegts``,
    ``flv``...); an output with no suffix to tell it (stdout, most URLs) needs one.
    `input_options`/`output_options` go to FFmpeg's demuxer/muxer and protocol
    (``rtsp_transport=tcp``, ``listen=1``, ``reconnect=1``...).

    `live_policy`: ``drop`` skips frames the model has no time for, so a live source is read in
    real time (each kept frame keeps its pts; a warning counts the rest); ``wait`` never drops,
    and warns when the output fell behind the source's clock; ``auto`` drops for live sources
    (network streams such as RTSP/RTMP/SRT/UDP/TCP, capture devices) and waits for the rest.

    Raises:
        InputError: the source cannot be opened or has no decodable video.
        OutputError: the output needs a format, or cannot be opened.
        DecodeError: the source broke off or is damaged part-way (what decoded was written).
    """
    cfg = config or UpscaleConfig()
    warn = WarningLog(on_warning)
    src, dst = str(src), str(dst)
    if live_policy not in LIVE_POLICIES:
        raise ValueError(f"live_policy must be one of {', '.join(LIVE_POLICIES)}, got {live_policy!r}")
    drop = live_policy == "drop" or (live_policy == "auto" and is_live(src, input_format))
    dropped = 0

    def count_dropped(frames: int) -> None:
        nonlocal dropped
        dropped += frames

    to_stream = is_stream_location(dst)
    # A playlist names its media files after itself: it cannot be written under a hidden name.
    playlist = not to_stream and is_playlist(dst, output_format)
    atomic = not to_stream and not playlist  # written under a hidden name, renamed when complete
    if not to_stream:
        check_output(Path(src), Path(dst), overwrite=cfg.overwrite)
    elif output_format is None and dst == "-":
        raise OutputError("-: writing to stdout needs a container format; pass -f (e.g. -f matroska, -f mpegts)")
    if upscaler is None:
        upscaler = make_upscaler(cfg, on_warning=warn)
    check_scale(upscaler, cfg.scale)
    source = StreamSource(src, fmt=input_format, options=input_options)
    info = source.info
    target = dst
    try:
        codec = output_codec(cfg, info, upscaler.scale,
                             ".webm" if output_format == "webm" else Path(dst.split("?")[0]).suffix)
        before = set(Path(dst).parent.iterdir()) if playlist else set()
        if atomic:
            remove_partials_of(Path(dst))
            target = str(temporary_path(Path(dst)))
        decoder = PyAVDecoder(None, batch=upscaler.batch_for(info.height, info.width), source=source)
        start = time.perf_counter()
        try:
            encoder = PyAVEncoder(target, source, info, scale=upscaler.scale, config=cfg.encode, warn=warn, fmt=output_format,
                                  options=playlist_options(dst, output_format, output_options) if playlist else output_options)
        except EncodeError as e:
            raise OutputError(f"{dst}: cannot write there: {e}") from None
        try:
            times = run_stages(iter(decoder), upscaler.stream, encoder.write, queue_size=cfg.queue_size,
                               on_progress=on_progress, on_drop=count_dropped if drop else None)
            if encoder.frames_written == 0:
                raise DecodeError(f"{src}: no frame could be decoded")
            encoder.close()
        except (av.FFmpegError, OSError) as e:
            # The muxer's own errors: a sink that refused the connection (opened at the first
            # packet), closed it, or a full disk.
            encoder.abort()
            raise OutputError(f"{dst}: cannot write there: {e.strerror or e}") from e
        except BaseException:
            encoder.abort()
            raise
        if atomic:
            os.replace(target, dst)
    except BaseException:
        if playlist:  # the playlist and the media files this run began
            for path in set(Path(dst).parent.iterdir()) - before:
                remove_partial(path)
        elif atomic:
            Path(target).unlink(missing_ok=True)
        raise
    finally:
        source.close()
    seconds = time.perf_counter() - start
    if dropped:
        warn(f"{dropped} frame(s) dropped to keep up with the source in real time (--live-policy drop)")
    elif is_live(src, input_format) and decoder.stream_seconds() < seconds - 1:
        warn(f"the output fell {seconds - decoder.stream_seconds():.1f} s behind the live source "
             f"(--live-policy drop keeps real time by skipping frames)")
    result = UpscaleResult(Path(dst), encoder.frames_written, seconds, *times, warnings=tuple(warn.messages), codec=codec)
    check_complete(decoder, Path(src), result)
    return result


__all__ = ["upscale_stream"]
