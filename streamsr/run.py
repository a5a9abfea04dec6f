"""upscale(): one run, from a source through the stages into a sink, inside one owned output.

Every kind of run has the same shape: a source (`Decoder`: a file, a pipe or URL read once, a
keyframe segment) yields `FrameBatch`es; the stages (`stages.chain`: the model, and whatever runs
before or after it) map them; a sink (`io.base.Sink`: a video file, a stream, a playlist, a
folder of images) takes them. `stages.run_stages` drives the three in their own threads, and the
output is owned by `io.atomic` (a temporary name renamed when complete, or a playlist's files
removed on failure). `upscale` picks the source, stages and sink for a source and a destination.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import av

from .config import UpscaleConfig, UpscaleResult
from .errors import DecodeError, EncodeError, OutputError
from .frames import VideoInfo
from .io import open_decoder
from .io.atomic import AtomicOutput, PlaylistOutput
from .io.base import Decoder
from .io.encode import PyAVEncoder
from .io.pyav import PyAVDecoder
from .io.sequence import FrameSequenceWriter, check_sequence_format
from .io.stream import LIVE_POLICIES, StreamSource, is_live, is_playlist, is_stream_location, playlist_options
from .models import SCALES
from .outputs import check_frames_folder, check_output, default_output, output_codec
from .stages import (
    Progress,
    Warn,
    WarningLog,
    check_scale,
    drive,
    frame_stages,
    make_upscaler,
    model_stage,
    prepare_run,
)
from .stages.footage import Footage, plan_picture
from .stages.orient import Upright
from .stages.reuse import ReuseCount
from .upscaler import Upscaler


def check_complete(decoder: Decoder, src: str | Path, result: UpscaleResult) -> None:
    """Raise `DecodeError` (with the counts) if the source lost frames: what decoded was written."""
    missing = decoder.frames_missing()
    if decoder.error is not None or missing:
        lost = f"{missing} frames lost" if missing else "the rest did not decode"
        # The decoder's own error says where and why it stopped (a damaged packet, a time-out, a restart).
        what = str(decoder.error) if decoder.error is not None else f"{src}: the source is damaged"
        raise DecodeError(f"{what}; {result.frames} frames were upscaled into {result.output}, {lost}",
                          frames_done=result.frames, frames_lost=missing or None)


def _result(decoder: Decoder, src: str | Path, output: Path, frames: int, seconds: float, times: tuple[float, float, float],
            warn: WarningLog, codec: str, footage: Footage, count: ReuseCount) -> UpscaleResult:
    """What a run did; `DecodeError` (with the counts) instead if its source lost frames. `src` is
    named as given (a URL's // survives)."""
    result = UpscaleResult(output, frames, seconds, *times, warnings=tuple(warn.messages), codec=codec,
                           picture=footage.notes, reused=count.reused, partial=count.partial)
    check_complete(decoder, src, result)
    return result


def _open_file_source(src: Path, info: VideoInfo, upscaler: Upscaler, cfg: UpscaleConfig, footage: Footage) -> Decoder:
    picture = footage.picture
    return open_decoder(src, backend=cfg.decoder, batch=upscaler.batch_for(picture.height, picture.width), info=info,
                        filters=footage.filters())


def upscale_file(
    src: str | Path,
    dst: str | Path | None = None,
    config: UpscaleConfig | None = None,
    *,
    upscaler: Upscaler | None = None,
    info: VideoInfo | None = None,
    on_progress: Progress | None = None,
    on_warning: Warn | None = None,
) -> UpscaleResult:
    """Upscale one video file into a video file.

    Args:
        src: the source video; never modified.
        dst: the output path; default ``<stem>_x<scale><suffix>`` beside the source.
        config: scale, model, device, encoder settings...
        upscaler: an already loaded `Upscaler` (batch jobs load the model once).
        info: `probe(src)`, if the caller has just read it (the CLI does, for its progress bar).
        on_progress: called with the number of frames written after each batch.
        on_warning: called with each warning (streams skipped or re-encoded, frames lost).

    Raises:
        InputError, OutputError, EncodeError, UnsupportedModelError: nothing was written.
        DecodeError: the source is damaged part-way; the frames that decoded were written.
    """
    warn = WarningLog(on_warning)
    src, info, upscaler, cfg, footage = prepare_run(src, config or UpscaleConfig(), upscaler, info, warn)
    out = footage.output(upscaler.scale)
    codec = output_codec(cfg, out, 1, Path(dst).suffix if dst is not None else src.suffix)
    cfg = replace(cfg, encode=replace(cfg.encode, codec=codec))
    dst = Path(dst) if dst is not None else default_output(src, upscaler.scale, codec)
    check_output(src, dst, overwrite=cfg.overwrite)
    decoder = _open_file_source(src, info, upscaler, cfg, footage)
    start = time.perf_counter()
    try:
        with AtomicOutput(dst) as tmp:
            try:
                encoder = PyAVEncoder(tmp, src, out, scale=1, config=cfg.encode, warn=warn)
            except EncodeError as e:
                if "output format" not in str(e):
                    raise
                raise OutputError(f"{dst}: no container format has the suffix {dst.suffix or '(none)'!r}; "
                                  f"use .mp4, .mov, .mkv or .webm") from None
            model = model_stage(upscaler, cfg.reuse)
            times = drive(decoder, frame_stages(model, after=footage.after()), encoder, name=src,
                          queue_size=cfg.queue_size, on_progress=on_progress)
    finally:
        decoder.close()
    return _result(decoder, src, dst, encoder.frames_written, time.perf_counter() - start, times, warn, codec, footage,
                   model.count)


def upscale_to_frames(
    src: str | Path,
    folder: str | Path,
    config: UpscaleConfig | None = None,
    *,
    image_format: str = "png",
    upscaler: Upscaler | None = None,
    info: VideoInfo | None = None,
    on_progress: Progress | None = None,
    on_warning: Warn | None = None,
) -> UpscaleResult:
    """Upscale one video into a folder of numbered images (``000001.png``, ...) and ``timestamps.txt``
    (each frame's source time, so the sequence can be re-encoded with its timing; see `io.sequence`).

    The sequence is written into a hidden folder beside `folder` and renamed when complete: a
    failed or stopped run leaves no half-filled folder. 10-bit and deeper sources give 16-bit PNG
    or TIFF. Audio and the other streams are not part of a sequence. Errors as `upscale_file`.
    """
    warn = WarningLog(on_warning)
    src, info, upscaler, cfg, footage = prepare_run(src, config or UpscaleConfig(), upscaler, info, warn)
    folder = Path(folder)
    check_frames_folder(src, folder, overwrite=cfg.overwrite)
    check_sequence_format(image_format)  # before anything is decoded
    decoder = _open_file_source(src, info, upscaler, cfg, footage)
    start = time.perf_counter()
    try:
        with AtomicOutput(folder, folder=True) as tmp:
            writer = FrameSequenceWriter(tmp, image_format)
            # Images carry no display rotation: the frames are turned upright, as a player shows them.
            upright = [Upright(info.rotation_degrees)] if info.rotation_degrees else []
            model = model_stage(upscaler, cfg.reuse)
            stages = frame_stages(model, after=[*footage.after(), *upright])
            times = drive(decoder, stages, writer, name=src, queue_size=cfg.queue_size, on_progress=on_progress)
    finally:
        decoder.close()
    if writer.frames_dropped:
        warn(f"{writer.frames_dropped} frame(s) dropped: their timestamps repeat or go back in the source")
    if (colours := info.color.beyond_srgb()) is not None:
        warn(f"the frames hold the source's {colours} colours, which {image_format} files here carry no tag for; "
             "tell the encoder so when the sequence is encoded again")
    if (sar := footage.output(upscaler.scale).sample_aspect_ratio) != 1:
        warn(f"the frames have non-square pixels (sample aspect ratio {sar}), which image files cannot say; "
             "--square-pixels resamples them to the display aspect")
    return _result(decoder, src, folder, writer.frames_written, time.perf_counter() - start, times, warn, image_format,
                   footage, model.count)


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

    The source is read once (`io.stream.StreamSource`): the decoder and the stream copy share that
    read, nothing seeks, and no duration is needed. A file output is still written under a hidden
    name and renamed when complete, and a playlist's files are removed if the run fails; stdout and
    URLs cannot be, so a failure there ends the stream where it stopped (the exit code says so).

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
    playlist = not to_stream and is_playlist(dst, output_format)
    if not to_stream:
        check_output(Path(src), Path(dst), overwrite=cfg.overwrite)
    elif output_format is None and dst == "-":
        raise OutputError("-: writing to stdout needs a container format; pass -f (e.g. -f matroska, -f mpegts)")
    source = StreamSource(src, fmt=input_format, options=input_options)
    info = source.info
    try:
        footage = plan_picture(None, info, cfg, warn, first_frames=source.first_frames)
        if upscaler is None:
            upscaler = make_upscaler(replace(cfg, scale=footage.scale_for(cfg, SCALES)), on_warning=warn)
        check_scale(upscaler, cfg.scale)
    except BaseException:
        source.close()
        raise
    footage = footage.shaped(upscaler.scale)
    out = footage.output(upscaler.scale)
    options = playlist_options(dst, output_format, output_options) if playlist else output_options
    # A playlist names its media files after itself: it is written in place, not under a hidden name;
    # stdout and URLs are written directly, with nothing to rename or remove.
    output = nullcontext(dst) if to_stream else PlaylistOutput(Path(dst)) if playlist else AtomicOutput(Path(dst))
    try:
        codec = output_codec(cfg, out, 1, ".webm" if output_format == "webm" else Path(dst.split("?")[0]).suffix)
        picture = footage.picture
        decoder = PyAVDecoder(None, batch=upscaler.batch_for(picture.height, picture.width), source=source,
                              filters=footage.filters())
        start = time.perf_counter()
        with output as target:
            try:
                encoder = PyAVEncoder(target, source, out, scale=1, config=cfg.encode, warn=warn,
                                      fmt=output_format, options=options)
            except EncodeError as e:
                raise OutputError(f"{dst}: cannot write there: {e}") from None
            try:
                model = model_stage(upscaler, cfg.reuse)
                times = drive(decoder, frame_stages(model, after=footage.after()), encoder, name=src,
                              queue_size=cfg.queue_size, on_progress=on_progress, on_drop=count_dropped if drop else None)
            except (av.FFmpegError, OSError) as e:
                # The muxer's own errors: a sink that refused the connection (opened at the first
                # packet), closed it, or a full disk.
                raise OutputError(f"{dst}: cannot write there: {e.strerror or e}") from e
    finally:
        source.close()
    seconds = time.perf_counter() - start
    if dropped:
        warn(f"{dropped} frame(s) dropped to keep up with the source in real time (--live-policy drop)")
    elif is_live(src, input_format) and decoder.stream_seconds() < seconds - 1:
        warn(f"the output fell {seconds - decoder.stream_seconds():.1f} s behind the live source "
             f"(--live-policy drop keeps real time by skipping frames)")
    if not is_live(src, input_format) and not decoder.declares_length():
        warn(f"{src} does not say how long it is ({info.container}): whether it ended or broke off "
             f"cannot be checked; {encoder.frames_written} frames were written")
    return _result(decoder, src, Path(dst), encoder.frames_written, seconds, times, warn, codec, footage,
                   model.count)


def is_stream_run(src: str | Path, dst: str | Path | None, *, input_format: str | None = None,
                  input_options: dict[str, str] | None = None, output_format: str | None = None,
                  output_options: dict[str, str] | None = None, live_policy: str = "auto") -> bool:
    """True when a run reads a pipe or URL, writes one or a playlist, or names FFmpeg's formats or
    options: it then reads its source once, in order (`upscale_stream`)."""
    to_stream = dst is not None and (is_stream_location(str(dst)) or is_playlist(str(dst), output_format))
    return (is_stream_location(str(src)) or to_stream
            or any((input_format, input_options, output_format, output_options, live_policy != "auto")))


def upscale(
    source: str | Path,
    destination: str | Path | None = None,
    config: UpscaleConfig | None = None,
    *,
    frames_format: str | None = None,
    input_format: str | None = None,
    input_options: dict[str, str] | None = None,
    output_format: str | None = None,
    output_options: dict[str, str] | None = None,
    live_policy: str = "auto",
    segment_seconds: float | None = None,
    resume: bool = False,
    run_segments: Callable[..., None] | None = None,
    upscaler: Upscaler | None = None,
    info: VideoInfo | None = None,
    on_progress: Progress | None = None,
    on_warning: Warn | None = None,
) -> UpscaleResult:
    """Upscale a video or an image: the one entry point of the CLI, `batch`, Ray tasks and the API.

    What runs follows from the arguments:

    - an image file (`images.IMAGE_SUFFIXES`) gives the same kind of image (`images.upscale_image`);
    - a pipe (``-``) or URL source, a stdout, URL or playlist destination, or any of the FFmpeg
      format and option arguments read the source once (`upscale_stream`);
    - `segment_seconds`, `resume` or `run_segments` (an engine that runs segments, e.g. Ray's)
      cut the video at keyframes and join the upscaled segments (`segments.upscale_segmented`);
    - `frames_format` (png, tiff, jpg, webp) makes `destination` a folder of numbered images
      (`upscale_to_frames`);
    - anything else is one video file into another (`upscale_file`).

    Raises:
        ValueError: arguments that ask for two kinds of run at once.
        StreamSRError: as the run chosen raises it (see each).
    """
    from .images import is_image, upscale_image

    streaming = is_stream_run(source, destination, input_format=input_format, input_options=input_options,
                              output_format=output_format, output_options=output_options, live_policy=live_policy)
    segmented = segment_seconds is not None or resume or run_segments is not None
    if streaming and (segmented or frames_format is not None):
        raise ValueError("pipes, URLs and FFmpeg formats write one video; segments and frame folders take a video file")
    if segmented and frames_format is not None:
        raise ValueError("segments join into a video file, not a folder of frames")
    if streaming:
        if destination is None:
            raise ValueError("a pipe or URL source needs a destination (a file, - for stdout, or a URL)")
        return upscale_stream(source, destination, config, input_format=input_format, input_options=input_options,
                              output_format=output_format, output_options=output_options, live_policy=live_policy,
                              upscaler=upscaler, on_progress=on_progress, on_warning=on_warning)
    if is_image(Path(source)):
        if segmented or frames_format is not None:
            raise ValueError("an image upscales to one image: no segments, no frame folder")
        image = upscale_image(source, destination, config, upscaler=upscaler)
        if on_progress is not None:
            on_progress(1)
        return UpscaleResult(image.output, 1, image.seconds, 0.0, image.seconds, 0.0, codec=image.output.suffix[1:],
                             width=image.width, height=image.height, bits=image.bits)
    if segmented:
        from .segments import DEFAULT_SEGMENT_SECONDS, upscale_segmented

        return upscale_segmented(source, destination, config, segment_seconds=segment_seconds or DEFAULT_SEGMENT_SECONDS,
                                 resume=resume, upscaler=upscaler, run_segments=run_segments, info=info,
                                 on_progress=on_progress, on_warning=on_warning)
    if frames_format is not None:
        if destination is None:
            raise ValueError("frames need a destination folder")
        return upscale_to_frames(source, destination, config, image_format=frames_format, upscaler=upscaler, info=info,
                                 on_progress=on_progress, on_warning=on_warning)
    return upscale_file(source, destination, config, upscaler=upscaler, info=info, on_progress=on_progress,
                        on_warning=on_warning)
