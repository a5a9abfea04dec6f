"""Command line: a thin layer over the library. Each command builds a config, makes one library
call, and maps `StreamSRError` to a one-line message and an exit code."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from tqdm import tqdm

from . import __version__
from .config import PIXEL_LOSSES, SAMPLINGS, UpscaleConfig
from .distributed import ENGINES
from .errors import Interrupted, StreamSRError
from .io import DECODERS
from .io.sequence import SEQUENCE_FORMATS
from .io.stream import LIVE_POLICIES, parse_options
from .models import SCALE_RANGE
from .models.runtimes import RUNTIMES
from .stages.deinterlace import DEINTERLACE_MODES
from .stages.resize import FITS
from .stages.reuse import REUSE_MODES
from .upscaler import DEVICES, PRECISIONS


class PlainProgress:
    """Progress where stderr is no terminal (a log file, a pipe): a plain line now and then, no
    carriage returns. It takes the `tqdm` arguments the commands pass and uses what it needs."""

    def __init__(self, total: int | None = None, *, desc: str = "", unit: str = "frame", every_seconds: float = 30.0,
                 **_bar: Any) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n, self._every, self._start = 0, every_seconds, time.monotonic()
        self._last = self._start

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            rate = self.n / (now - self._start)
            left = f", about {(self.total - self.n) / rate / 60:.0f} min left" if self.total and rate else ""
            of = f"/{self.total}" if self.total else ""
            click.echo(f"{self.desc + ': ' if self.desc else ''}{self.n}{of} {self.unit}s, {rate:.2f}/s{left}", err=True)

    def close(self) -> None:
        return None

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def progress_bar(**kwargs: Any) -> Any:
    """A `tqdm` bar on a terminal, `PlainProgress` lines elsewhere (logs get no carriage returns)."""
    if kwargs.get("disable") or sys.stderr.isatty():
        return tqdm(**kwargs)
    return PlainProgress(**kwargs)


SCALE = click.IntRange(*SCALE_RANGE)
"""Any model's upscaling factor, as options take it."""


class _StreamSRGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StreamSRError as e:
            click.echo(f"Error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt as e:
            signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
            click.echo(f"Error: stopped by {signal.Signals(signum).name}; unfinished outputs were removed", err=True)
            ctx.exit(128 + signum)


@click.group(cls=_StreamSRGroup)
@click.version_option(__version__, prog_name="streamsr")
def cli() -> None:
    """streamsr: video super-resolution with the SAFDN model, on CPU or GPU."""


def _echo_warning(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _key_values(ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]) -> dict[str, str]:
    """A repeatable KEY=VALUE option, as a dict."""
    try:
        return parse_options(pairs, "each value")
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def input_options(f: Any) -> Any:
    """How FFmpeg opens the source: `upscale` and `probe` share them."""
    for option in reversed([
        click.option("--input-format", help="Input container (FFmpeg demuxer), where the source does not tell it."),
        click.option("--input-option", "input_options", multiple=True, metavar="KEY=VALUE", callback=_key_values,
                     help="FFmpeg demuxer/protocol option (repeatable), e.g. rtsp_transport=tcp, listen=1."),
    ]):
        f = option(f)
    return f


def engine_options(f: Any) -> Any:
    """Where the work runs: this process, or a Ray cluster."""
    for option in reversed([
        click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                     help="ray: run files (batch) or segments (upscale) as Ray tasks (pip install \"streamsr[ray]\")."),
        click.option("--address", help="Ray cluster to join: auto (started with `ray start`) or ray://HOST:PORT "
                                       "(default: a local Ray instance)."),
    ]):
        f = option(f)
    return f


def upscale_options(f: Any) -> Any:
    """The options `upscale` and `batch` share; each overrides the --pipeline preset's value."""
    options = [
        click.option("-p", "--pipeline", default="default", show_default=True, help="Preset name (see `streamsr pipelines`) or .toml path."),
        click.option("-s", "--scale", type=SCALE, default=None,
                     help="Upscaling factor: picks safdn-x<scale> (default 4); with --model, the model's scale, checked against this."),
        click.option("-m", "--model", default="",
                     help="Model name (`streamsr models`) or file: ours, a community .pth/.safetensors (spandrel), or .onnx."),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True),
        click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
                     help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32."),
        click.option("--batch", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Frames per model call; 0: from free GPU memory on CUDA, 1 on the CPU."),
        click.option("--tile", type=click.IntRange(min=0), default=None,
                     help="Tile side in input pixels; 0: whole frames. Default: 240 px tiles on the CPU for frames large "
                          "enough to outgrow the caches (faster there), whole frames on CUDA."),
        click.option("--decoder", type=click.Choice(DECODERS), default="auto", show_default=True,
                     help="auto: DALI (NVDEC) on CUDA when it can decode the source, else PyAV. "
                          "dali without CUDA: DALI's CPU decoder (VP8/VP9/MJPEG), for diagnosis."),
        click.option("--runtime", "--backend", "backend", type=click.Choice(RUNTIMES), default="auto", show_default=True,
                     help="What runs the model: torch, or its exported graph on onnxruntime or openvino; "
                          "auto: openvino on the CPU where installed (fastest there), else torch."),
        click.option("--cuda-graphs", is_flag=True, default=False, help="Replay the model as a CUDA graph (CUDA only)."),
        click.option("--self-ensemble", is_flag=True, default=False,
                     help="Average the model over 8 flips/rotations of each frame: +0.1-0.15 dB, 8x slower."),
        click.option("--codec", default="auto", show_default=True,
                     help="Video encoder. auto: NVENC where the GPU has it; else libx264 for 8-bit sources, "
                          "libx265 (HEVC Main10, hvc1 in MP4) for 10-bit and HDR ones, VP9 for .webm. "
                          "Or name one: libx264, libx265, libsvtav1, ..."),
        click.option("--crf", type=int, default=18, show_default=True),
        click.option("--preset", default="medium", show_default=True, help="Encoder speed preset."),
        click.option("--pix-fmt", default="", help="Output pixel format (default: follow the source, 10-bit kept)."),
        click.option("--audio", type=click.Choice(["copy", "aac", "none"]), default="copy", show_default=True,
                     help="copy: stream-copy (AAC only where the container cannot hold the source codec)."),
        click.option("--deinterlace", type=click.Choice(DEINTERLACE_MODES), default="auto", show_default=True,
                     help="auto: deinterlace (bwdif) what FFmpeg's idet finds interlaced in the first frames; "
                          "bwdif/yadif: always; off: never."),
        click.option("--field-rate", is_flag=True, default=False,
                     help="Deinterlace to one frame per field (50i to 50p, 60i to 60p), each at its field's time."),
        click.option("--ivtc", is_flag=True, default=False,
                     help="Undo 3:2 pulldown (fieldmatch + decimate): telecined 29.97 fps film back to its 23.976 frames."),
        click.option("--crop", default="", metavar="auto|W:H:X:Y",
                     help="Cut black borders before the model: auto finds them across the file; or give the picture's box."),
        click.option("--size", callback=_size, metavar="WxH",
                     help="Output size, e.g. 1920x1080: the smallest model scale that reaches it, then a bicubic resample; see --fit."),
        click.option("--width", type=click.IntRange(min=2), default=None, help="Output width; the height follows the display aspect."),
        click.option("--height", type=click.IntRange(min=2), default=None, help="Output height; the width follows the display aspect."),
        click.option("--fit", type=click.Choice(FITS), default="pad", show_default=True,
                     help="With --size of another aspect: pad (black bars), crop (cut the overflow) or stretch."),
        click.option("--square-pixels", is_flag=True, default=False,
                     help="Resample an anamorphic source to square pixels (default: keep its pixel aspect, as players show it)."),
        click.option("--reuse", type=click.Choice(REUSE_MODES), default="auto", show_default=True,
                     help="What repeats the last upscaled picture reuses its result: exact (bit-identical frames), "
                          "auto (also under codec noise, and only the changed box of a frame that changed in part is "
                          "upscaled; never across fades or motion), off."),
        click.option("--overwrite", is_flag=True, help="Replace existing outputs."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


_ENCODE_FIELDS = ("codec", "crf", "preset", "pix_fmt", "audio")
_UPSCALE_FIELDS = ("scale", "model", "device", "precision", "batch", "tile", "decoder", "backend", "cuda_graphs", "self_ensemble",
                   "overwrite", "deinterlace", "field_rate", "ivtc", "crop", "width", "height", "fit", "square_pixels", "reuse")


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)[xX:](\d+)", value.strip())
    if not match:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT (e.g. 1920x1080)")
    return int(match[1]), int(match[2])


def build_config(ctx: click.Context, pipeline: str, options: dict[str, Any]) -> UpscaleConfig:
    """The preset's config with every option the user typed laid over it."""
    from .presets import layered_config, load_preset

    preset = load_preset(pipeline)
    given = {name: value for name, value in options.items() if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    data: dict[str, Any] = {k: v for k, v in given.items() if k in _UPSCALE_FIELDS}
    if given.get("size") is not None:
        if "width" in data or "height" in data:
            raise click.UsageError("give --size, or --width and/or --height, not both")
        data["width"], data["height"] = given["size"]
    encode = {k: v for k, v in given.items() if k in _ENCODE_FIELDS}
    if encode:
        data["encode"] = encode
    return layered_config(preset, data, where="options")


@cli.command()
@click.argument("src")
@click.option("-o", "--output", help="Output file, - for stdout, or a URL (default: INPUT_x<scale>.<ext> beside the input).")
@click.option("-f", "--format", "output_format", help="Output container (FFmpeg muxer: matroska, mp4, mpegts, flv...); "
              "needed where the output has no suffix to tell it (stdout, most URLs).")
@click.option("--output-option", "output_options", multiple=True, metavar="KEY=VALUE", callback=_key_values,
              help="FFmpeg muxer/protocol option (repeatable).")
@input_options
@click.option("--live-policy", type=click.Choice(LIVE_POLICIES), default="auto", show_default=True,
              help="drop: skip frames the model has no time for, keeping real time; wait: never drop. "
                   "auto: drop for live network streams and capture devices, wait otherwise.")
@click.option("--reconnect", is_flag=True, help="Reconnect an http(s) source that drops (FFmpeg's reconnect options).")
@click.option("--segment-seconds", type=click.FloatRange(min=0.5), metavar="N",
              help="Cut the video at keyframes into segments of about N s, upscale them one by one and join them "
                   "(default with --resume: 30).")
@click.option("--resume", is_flag=True, help="Keep finished segments in a work folder beside the output; "
                                             "a rerun after a crash or kill upscales only the missing ones.")
@click.option("--frames-out", type=click.Path(file_okay=False, path_type=Path),
              help="Write the frames as numbered images into this folder (with timestamps.txt) instead of a video.")
@click.option("--estimate", "estimate_only", is_flag=True,
              help="Measure how long the run would take here, with this model and the faster ones; upscale nothing.")
@click.option("--frames-format", type=click.Choice(list(SEQUENCE_FORMATS)), default="png", show_default=True,
              help="Image format of --frames-out (png and tiff keep 16 bits for 10-bit sources).")
@engine_options
@upscale_options
@click.pass_context
def upscale(ctx: click.Context, src: str, output: str | None, output_format: str | None, output_options: dict[str, str],
            input_format: str | None, input_options: dict[str, str], live_policy: str, reconnect: bool,
            segment_seconds: float | None, resume: bool, engine: str, address: str | None, frames_out: Path | None,
            estimate_only: bool, frames_format: str, pipeline: str, quiet: bool, **options: Any) -> None:
    """Upscale one video or image. A video keeps its audio, subtitles, chapters, metadata and
    timestamps; an image (PNG, JPEG, WebP, TIFF, BMP) keeps its format, depth, alpha, ICC profile
    and EXIF data, turned upright.

    Example:

    \b
        streamsr upscale video.mp4 --scale 4        # writes video_x4.mp4
        streamsr upscale video.mkv -p archive       # 10-bit HEVC preset
        streamsr upscale photo.jpg --scale 2        # writes photo_x2.jpg
        streamsr upscale clip.mp4 --frames-out frames/   # frames/000001.png ... and timestamps.txt
        streamsr upscale - -o - -f matroska < in.mkv > out.mkv   # stdin to stdout
        streamsr upscale rtsp://camera/stream -o out.mkv --input-option rtsp_transport=tcp
        streamsr upscale film.mkv --scale 4 --resume      # in 30 s segments; a rerun resumes
    """
    from .images import is_image
    from .io.probe import probe
    from .io.stream import reconnect_options
    from .run import is_stream_run, upscale

    if frames_out is not None and output is not None:
        raise click.UsageError("give either -o (a video) or --frames-out (a folder of images), not both")
    if reconnect:
        try:
            input_options = {**reconnect_options(src), **input_options}
        except ValueError as e:
            raise click.UsageError(str(e)) from None
    streaming = is_stream_run(src, output, input_format=input_format, input_options=input_options,
                              output_format=output_format, output_options=output_options, live_policy=live_policy)
    if streaming and frames_out is not None:
        raise click.UsageError("--frames-out reads a video file; pipes, URLs and -f/--input-format write videos only")
    segmented = segment_seconds is not None or resume or engine == "ray"  # Ray runs segments
    if segmented and (streaming or frames_out is not None):
        raise click.UsageError("--segment-seconds/--resume take a video file and write a video file")
    if streaming and output is None:
        raise click.UsageError("a pipe or URL source needs -o (a file, - for stdout, or a URL)")
    image = not streaming and is_image(Path(src))
    if image and frames_out is not None:
        raise click.UsageError("--frames-out takes a video; an image upscales to one image (use -o)")
    cfg = build_config(ctx, pipeline, options)
    if estimate_only:
        from .estimate import duration, estimate

        if streaming or image:
            raise click.UsageError("--estimate measures a video file")
        click.echo(f"{'model':<16} {'s/frame':>8} {'whole video':>12}   (measured here on {src}'s first frame)")
        for e in estimate(src, cfg):
            click.echo(f"{e.model:<16} {e.seconds_per_frame:>8.3g} {duration(e.seconds):>12}")
        return
    runner = None
    if engine == "ray" and not image:
        from .distributed import ray_segment_runner

        runner = ray_segment_runner(cfg, address=address)
    # A live or piped source has no known length: the bar counts frames and fps, with no ETA.
    info = None if streaming or image else probe(src)
    total = info.num_frames_estimate or None if info is not None else None
    # `delay`: an output that fails its checks ends before the bar is drawn, so the error stands alone.
    from .estimate import LongRunHint

    hint = LongRunHint(total if not streaming and cfg.device != "cuda" else None)
    with progress_bar(total=total, unit="frame", disable=quiet or image, dynamic_ncols=True, delay=0.5) as bar:

        def progress(frames: int) -> None:
            bar.update(frames)
            if (line := hint.update(frames)) is not None and not quiet:
                click.echo(f"note: {line}", err=True)

        result = upscale(src, frames_out if frames_out is not None else output, cfg,
                         frames_format=frames_format if frames_out is not None else None,
                         input_format=input_format, input_options=input_options, output_format=output_format,
                         output_options=output_options, live_policy=live_policy, segment_seconds=segment_seconds,
                         resume=resume, run_segments=runner, info=info, on_progress=progress, on_warning=_echo_warning)
        # The total was estimated from the duration (in Matroska, the longest stream's): close() draws the
        # bar once more, on the real count. No refresh() here: it would draw a bar that `delay` held back.
        bar.total = bar.n
    if quiet:
        return
    if image:
        click.echo(f"wrote {result.output} ({result.width}x{result.height}, {result.bits}-bit) in {result.seconds:.1f} s")
        return
    where = "stdout" if output == "-" else output if streaming else result.output
    for line in result.picture:
        click.echo(f"picture: {line}", err=output == "-")
    spared = ([f"{result.resumed} from the earlier run"] * bool(result.resumed) + [f"{result.reused} reused"] * bool(result.reused)
              + [f"{result.partial} upscaled in part"] * bool(result.partial))
    reused = f" ({', '.join(spared)})" if spared else ""
    click.echo(  # on stderr when the video itself goes to stdout
        f"wrote {where} ({result.codec}): {result.frames} frames{reused} in {result.seconds:.1f} s "
        f"({result.fps:.2f} fps end to end, SR stage {result.upscale_fps:.2f} fps)", err=output == "-"
    )


@cli.command()
@click.argument("in_dir", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--glob", "pattern", help="Only files matching this pattern (default: files with a video suffix).")
@click.option("--recursive/--no-recursive", default=True, show_default=True)
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Files upscaled at once.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the summary as JSON.")
@click.option("--segment-seconds", type=click.FloatRange(min=0.5), metavar="N",
              help="Upscale each video in keyframe-aligned segments of about N s, kept beside its output until "
                   "it is complete: a stopped batch resumes inside the file it was on.")
@engine_options
@upscale_options
@click.pass_context
def batch(ctx: click.Context, in_dir: Path, out_dir: Path, pattern: str | None, recursive: bool, jobs: int,
          report_path: Path | None, segment_seconds: float | None, engine: str, address: str | None, pipeline: str,
          quiet: bool, **options: Any) -> None:
    """Upscale every video and image in IN_DIR into the same tree under OUT_DIR.

    Finished files are skipped on the next run (unless the input or the settings changed), a
    broken file is reported without stopping the batch, and the exit code is 1 if any failed.

    Example:

    \b
        streamsr batch season1/ season1-x4/ --scale 4
        streamsr batch in/ out/ --glob "*.mkv" -j 2 --report report.json
        streamsr batch /shared/in /shared/out -s 4 --engine ray --address auto
    """
    from .batch import BatchEvents, upscale_many

    cfg = build_config(ctx, pipeline, options)
    bars: dict[str, Any] = {}

    def plan(files: int, frames: int) -> None:
        bars["all"] = progress_bar(total=frames or None, unit="frame", desc=f"{files} files", disable=quiet, position=0,
                                   dynamic_ncols=True)

    def start(job: Any, frames: int) -> None:
        if "file" in bars:
            bars["file"].close()
        # One line of progress for the whole batch in a log; a second bar for the file on a terminal.
        bars["file"] = progress_bar(total=frames or None, unit="frame", desc=job.src.name[:30],
                                    disable=quiet or not sys.stderr.isatty(), position=1, leave=False, dynamic_ncols=True)

    def progress(frames: int) -> None:
        for bar in bars.values():
            bar.update(frames)

    def end(outcome: Any) -> None:
        if outcome.status == "failed" and not quiet:
            tqdm.write(f"failed: {outcome.src}: {outcome.reason}", file=sys.stderr)
        elif outcome.status == "skipped" and outcome.dst is None and not quiet:  # not tried: a link that leads nowhere
            tqdm.write(f"skipped: {outcome.src}: {outcome.reason}", file=sys.stderr)

    events = BatchEvents(on_plan=plan, on_file_start=start, on_progress=progress, on_file_end=end,
                         on_warning=lambda m: tqdm.write(f"warning: {m}", file=sys.stderr))
    try:
        report = upscale_many(in_dir, out_dir, cfg, pattern=pattern, recursive=recursive, jobs=jobs, events=events,
                              engine=engine, address=address, segment_seconds=segment_seconds)
    finally:
        for bar in bars.values():
            bar.close()
    if report_path is not None:
        report_path.write_text(json.dumps(report.as_dict(), indent=2))
    summary = report.as_dict()
    if not quiet or not report.ok:
        click.echo(f"done {summary['done']}, skipped {summary['skipped']}, failed {summary['failed']}"
                   + (f", ignored {report.ignored} non-video files" if report.ignored else ""))
        for o in report.by_status("failed"):
            click.echo(f"  failed  {o.src}: {o.reason}")
    if report.stopped:
        click.echo(f"Error: batch stopped: {report.stopped}", err=True)
    if not report.ok:
        ctx.exit(1)


@cli.command()
@click.argument("src", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-s", "--scale", type=SCALE, help="Picks safdn-x<scale> (default 4); with --model, checked against it.")
@click.option("--size", default="320x180", show_default=True, help="WxH of the generated clip (ignored with SRC).")
@click.option("--frames", type=click.IntRange(min=1), default=24, show_default=True, help="Frames in the generated clip.")
@click.option("-m", "--model", default="", help="Model name or file (default: safdn-x<scale>).")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True)
@click.option("--batch", type=click.IntRange(min=0), default=0, show_default=True, help="0: from free GPU memory (1 on the CPU).")
@click.option("--runtime", "--backend", "backend", type=click.Choice(RUNTIMES), default="auto", show_default=True, help="What runs the model.")
@click.option("--runs", type=click.IntRange(min=1), default=3, show_default=True, help="Timed runs per stage (median).")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True, help="torch intra-op threads (0: torch's default).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the figures as JSON.")
def bench(src: Path | None, scale: int | None, size: str, frames: int, model: str, device: str, precision: str, batch: int,
          backend: str, runs: int, threads: int, json_path: Path | None) -> None:
    """Speed of each stage (decode, SR, encode, end to end) on a generated clip or SRC.

    Example:

    \b
        streamsr bench -s 4 --size 320x180 --backend openvino
    """
    import torch

    from .bench import run_bench

    if threads:
        torch.set_num_threads(threads)
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter("expected WxH, e.g. 320x180", param_hint="--size") from None
    r = run_bench(src, scale=scale, size=(w, h), frames=frames, model=model, device=device,
                  precision=precision, runs=runs, batch=batch, backend=backend)
    rows = [
        ("model", f"{r.model} ({r.params / 1e3:.0f}K params, {r.multi_adds_per_frame / 1e9:.2f} G Multi-Adds/frame)"),
        ("run", f"{r.input_size} -> {r.output_size}, {r.frames} frames, {r.device} {r.precision}, batch {r.batch}, "
                f"{r.threads} threads"),
        ("decode", f"{r.decode_fps:8.1f} fps"),
        ("SR stage", f"{r.sr_fps:8.2f} fps  ({r.sr_ms_per_frame:.1f} ms/frame, {r.achieved_gflops:.1f} GFLOP/s)"),
        ("with reuse", f"{r.reuse_fps:8.2f} fps  ({r.reused_frames} of {r.frames} frames reused, {r.partial_frames} "
                       f"upscaled in part: x{r.reuse_fps / r.sr_fps:.2f} the SR stage)"),
        ("bicubic", f"{r.bicubic_fps:8.1f} fps  (floor)"),
        ("encode", f"{r.encode_fps:8.1f} fps  ({r.codec})"),
        ("end to end", f"{r.end_to_end_fps:8.2f} fps  ({100 * r.end_to_end_fps / r.sr_fps:.0f}% of the SR stage)"),
        ("peak RSS", f"{r.peak_rss_mb:8.0f} MB"),
        ("machine", r.machine),
        ("versions", r.versions),
    ]
    for name, value in rows:
        click.echo(f"{name:<11} {value}")
    if json_path:
        json_path.write_text(json.dumps(r.as_dict(), indent=2))


@cli.command()
@click.option("--source", help="A file or URL to use instead of the camera.")
@click.option("--camera", help="Camera device (/dev/video0, avfoundation index, dshow name).")
@click.option("--size", help="Camera mode to request, WxH (e.g. 320x240).")
@click.option("--fps", type=float, help="Camera frame rate to request.")
@click.option("-s", "--scale", type=click.Choice(["2", "4"]), default="2", show_default=True)
@click.option("-m", "--model", default="", help="Model (default: the real-time safdn-tiny-x<scale> on CPU, safdn-x<scale> on CUDA).")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True)
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), help="Also write the upscaled stream to this file.")
@click.option("--no-window", is_flag=True, help="Run without a window and print the figures at the end.")
@click.option("--frames", type=click.IntRange(min=1), help="Stop after this many shown frames.")
def live(source: str | None, camera: str | None, size: str | None, fps: float | None, scale: str, model: str, device: str,
         precision: str, record: Path | None, no_window: bool, frames: int | None) -> None:
    """Live preview of the camera (or --source) upscaled: bicubic | SAFDN split view.

    Example:

    \b
        streamsr live                                  # camera, window, x2
        streamsr live --source clip.mp4 --no-window --frames 100
    """

    from .live import HeadlessSink, live_model, run_live
    from .upscaler import Upscaler

    def make(s: int) -> Upscaler:
        return Upscaler(model if model and s == int(scale) else live_model(s, device), device=device, precision=precision)

    up = make(int(scale))
    click.echo(f"model {up.model.name} on {up.device} in {up.precision_name}" + ("" if model else " (chosen to keep up in real time)"))
    if no_window:
        sink: Any = HeadlessSink()
    else:
        from .preview import PygameSink

        sink = PygameSink()
    stats = run_live(source, upscaler=up, sink=sink, camera=camera, size=size, fps=fps, max_frames=frames,
                     record=record, make_upscaler=make)
    click.echo(stats.line())


@cli.command("pipelines")
def pipelines_command() -> None:
    """List the shipped presets (use one with --pipeline NAME).

    Example:

    \b
        streamsr pipelines
        streamsr upscale video.mp4 --pipeline fast
    """
    from .presets import list_presets

    for preset in list_presets():
        click.echo(f"{preset.name:<10} {preset.description}")


def _seconds(text: str) -> float:
    """"12.5", "12.5s", "1:05" or "1:02:03.5" as seconds."""
    try:
        parts = [float(p) for p in text.strip().removesuffix("s").split(":")]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a time (12.5, 12.5s, 1:05 or 1:02:03.5)") from None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    if seconds < 0 or len(parts) > 3:
        raise click.BadParameter(f"{text!r} is not a time (12.5, 12.5s, 1:05 or 1:02:03.5)")
    return seconds


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("upscaled", required=False, type=click.Path(path_type=Path))
@click.option("--at", "at", default="0", show_default=True, help="Time of the frame: 12.5, 12.5s, 1:05 or 1:02:03.5.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Picture to write, PNG/JPEG/WebP (default: SOURCE_compare.png beside the source).")
@click.option("-s", "--scale", type=SCALE, default=None, help="Without UPSCALED: picks safdn-x<scale> (default 4).")
@click.option("-m", "--model", default="", help="Without UPSCALED: the model to run (name or file).")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--runtime", "--backend", "backend", type=click.Choice(RUNTIMES), default="auto", show_default=True)
def compare(source: Path, upscaled: Path | None, at: str, output: Path | None, scale: int | None, model: str,
            device: str, backend: str) -> None:
    """A before/after picture: the source frame by bicubic beside the model's (or beside UPSCALED,
    a file upscaled earlier), with an enlarged crop of the most detailed region of both.

    Works on videos and images.

    Example:

    \b
        streamsr compare video.mp4 --at 12.5s -o cmp.png
        streamsr compare video.mp4 video_x4.mp4 --at 1:05
        streamsr compare photo.jpg -s 2
    """
    from .compare import compare_picture, save_picture
    from .config import UpscaleConfig
    from .stages import check_scale, make_upscaler

    upscaler = None
    if upscaled is None:
        cfg = UpscaleConfig(scale=scale, model=model, device=device, backend=backend)
        upscaler = make_upscaler(cfg, on_warning=_echo_warning)
        check_scale(upscaler, scale)
    result = compare_picture(source, upscaled, at=_seconds(at), upscaler=upscaler)
    output = output or source.with_name(f"{source.stem}_compare.png")
    save_picture(result, output)
    x, y, side = result.crop
    click.echo(f"wrote {output} (frame at {result.seconds:.3f} s; detail: {side} px at ({x}, {y}))")


@cli.command("probe")
@click.argument("src")
@input_options
def probe_command(src: str, input_format: str | None, input_options: dict[str, str]) -> None:
    """Show a video's streams, codecs, sizes, frame rate and duration as streamsr sees them: a
    file, - (stdin) or a URL.

    Example:

    \b
        streamsr probe video.mkv
        streamsr probe rtsp://camera/stream --input-option rtsp_transport=tcp
    """
    from .io.probe import probe
    from .io.stream import StreamSource, is_stream_location
    from .stages.deinterlace import detect_interlacing, idet

    if is_stream_location(src) or input_format or input_options:
        source = StreamSource(src, fmt=input_format, options=input_options)
        info = source.info
        found = idet(iter(source.first_frames), info)
        source.close()
    else:
        info = probe(src)
        found = detect_interlacing(src, info)
    duration = f"{info.duration_seconds:.3f} s" if info.duration_seconds is not None else "unknown"
    click.echo(f"{src}: {info.container}, {duration}")
    c = info.color
    click.echo(
        f"  video: {info.codec} {info.width}x{info.height} {info.pix_fmt} ({info.bit_depth}-bit), "
        f"{float(info.fps):.3f} fps{' (variable)' if info.variable_frame_rate else ''}, "
        f"~{info.num_frames_estimate} frames, time base {info.time_base}"
    )
    names = c.names()
    click.echo(f"  colour: primaries {names['primaries']}, transfer {names['transfer']}, matrix {names['matrix']}, "
               f"range {names['range']}" + (f"; rotation {info.rotation_degrees} deg" if info.rotation_degrees else ""))
    if (md := c.mastering_display) is not None:
        click.echo(f"  HDR10 mastering display: R{md.red} G{md.green} B{md.blue} white {md.white_point}, "
                   f"{md.min_luminance:g}-{md.max_luminance:g} cd/m2")
    if (cl := c.content_light) is not None:
        click.echo(f"  HDR10 light level: MaxCLL {cl.max_cll}, MaxFALL {cl.max_fall} cd/m2")
    dar = info.display_aspect_ratio
    click.echo(f"  shape: sample aspect ratio {info.sample_aspect_ratio.numerator}:{info.sample_aspect_ratio.denominator}, "
               f"display aspect ratio {dar.numerator}:{dar.denominator} ({float(dar):.3f})")
    verdict = f"interlaced, {found.order}" if found.interlaced else "progressive"
    click.echo(f"  fields: declared {info.field_order}; pictures {verdict} ({found.describe()})")
    for s in info.streams:
        lang = f" [{s.language}]" if s.language else ""
        click.echo(f"  #{s.index} {s.kind}: {s.codec}{lang}{' ' + s.detail if s.detail else ''}")


@cli.command("serve")
@click.option("--root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("."),
              show_default=True, help="The folder the app lists, takes uploads into and writes results into; "
                                      "nothing outside it is read or served.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Any other than loopback needs a token (one is made if --token is not given).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: a free port.")
@click.option("--token", help="Secret every request must present (the printed address carries it).")
@click.option("--max-upload", type=click.IntRange(min=1), default=8192, show_default=True, metavar="MB",
              help="Largest upload taken, in MiB.")
@click.option("--segment-seconds", type=click.FloatRange(min=0.5), default=30.0, show_default=True, metavar="N",
              help="Videos run in keyframe segments of about N s: a job the server was stopped in resumes from them.")
@engine_options
def serve_command(root: Path, host: str, port: int, token: str | None, max_upload: int, segment_seconds: float,
                  engine: str, address: str | None) -> None:
    """Upscale from a web browser: a local page to drop files in, pick a scale, size, model and preset,
    follow progress, compare before and after, play and download the result.

    Example:

    \b
        streamsr serve --root ~/videos               # then open http://127.0.0.1:8765/
        streamsr serve --root /srv/in --host 0.0.0.0 # other machines too: prints the address with its token
    """
    from .serve import serve

    def ready(url: str) -> None:
        click.echo(f"streamsr serve: {url}  (root {root.resolve()}; Ctrl-C stops, jobs resume at the next start)")

    try:
        serve(root, host=host, port=port, token=token, on_ready=ready, engine=engine, address=address,
              segment_seconds=segment_seconds, max_upload=max_upload << 20)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM is how a server ends: the running job was stopped and kept
        click.echo("streamsr serve: stopped; unfinished jobs resume at the next start")
        sys.stdout.flush()
        # As for a stopped run (launch.py): threads of the stopped job may still be inside FFmpeg or
        # torch, and meeting the interpreter's teardown there can abort the process.
        os._exit(0)


@cli.command("models")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--archs", is_flag=True, help="List the architectures model files may use.")
def models_command(path: Path | None, archs: bool) -> None:
    """List the models streamsr ships, or describe a model file.

    Example:

    \b
        streamsr models
        streamsr models 4x-community-model.pth
        streamsr models --archs
    """
    from .models import (
        CATALOG,
        build_model,
        count_params,
        find_weights,
        load_model,
        read_metadata,
        supported_architectures,
    )

    if archs:
        others = supported_architectures()
        click.echo("streamsr: SAFDN (.safetensors with streamsr metadata)")
        click.echo("ONNX: any single-input NCHW super-resolution graph (.onnx, needs onnxruntime)")
        click.echo("spandrel: " + (", ".join(others) if others else 'not installed (pip install "streamsr[models]")'))
        return
    if path is not None:
        model = load_model(path)
        size = model.size
        rules = [f"multiple of {size.multiple_of}" if size.multiple_of > 1 else "", f"at least {size.minimum} px" if size.minimum else ""]
        click.echo(f"{model.name}")
        click.echo(f"  architecture  {model.metadata.get('architecture', model.arch)}")
        click.echo(f"  scale         x{model.scale}")
        click.echo(f"  channels      {model.in_ch} in, {model.out_ch} out")
        click.echo(f"  parameters    {model.parameters / 1e3:.0f}K" if model.runtime == "torch" else f"  runtime       {model.runtime}")
        click.echo(f"  precisions    {', '.join(model.precisions())}")
        click.echo(f"  input size    {', '.join(r for r in rules if r) or 'any'}")
        tiling = {"supported": f"yes, {model.tile_overlap} px overlap", "discouraged": "only with --tile (it shows)",
                  "internal": "no (needs whole frames)"}[model.tiling.value]
        click.echo(f"  tiling        {tiling}")
        for name, score in model.quality().items():
            click.echo(f"  {name:<13} {score['psnr']:.3f} dB / {score['ssim']:.4f}")
        return
    click.echo(f"{'name':<16} {'scale':>5} {'params':>7} {'trained':>8}  {'weights':<10} quality (Y-PSNR dB)")
    for name, entry in CATALOG.items():
        found = find_weights(name)
        params = count_params(build_model(name))
        quality, trained = "-", "-"
        if found is not None:
            meta = read_metadata(found)
            if meta.get("quality"):
                quality = ", ".join(f"{k} {v['psnr']:.2f}" for k, v in json.loads(meta["quality"]).items())
            record = json.loads(meta.get("training") or "{}")
            if iterations := record.get("total_iterations") or record.get("iterations"):
                trained = f"{round(iterations / 1e3, 1):g}K it"
        status = "installed" if found else "missing"
        click.echo(f"{name:<16} {'x' + str(entry.scale):>5} {params / 1e3:>6.0f}K {trained:>8}  {status:<10} {quality}")
    # A smaller file can score higher: the table says how long each trained, besides its size.
    click.echo("trained: training iterations behind each file; quality follows them as much as the size")


@cli.command()
@click.option("-c", "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Training recipe (TOML), e.g. pipelines/train-safdn-x4.toml.")
@click.option("--model", help="Catalog model to train (its scale is the training scale).")
@click.option("--init", help="Weights to start from (shapes that differ are skipped).")
@click.option("--blocks", type=int,
              help="SAFD blocks (default: the model's); more than --init has grows it, keeping its output at the start.")
@click.option("--out", help="Run folder for checkpoints and the best and final weights.")
@click.option("--data", multiple=True, help="Folder of HR training images (repeatable; relative paths may lie below $STREAMSR_DATA).")
@click.option("--val", multiple=True, help="Folder of HR validation images (repeatable: the mean PSNR picks the best).")
@click.option("--degradation", help="Compress training LR, e.g. x264+x265:crf=18-35,noise=2 (default: clean bicubic).")
@click.option("--val-degradation", help="Compress validation LR, e.g. x264:crf=28.")
@click.option("--device", type=click.Choice(DEVICES), help="auto: CUDA if present.")
@click.option("--iterations", type=int)
@click.option("--minutes", type=float,
              help="Training-time budget: the schedule ends when it is spent (or at --iterations, if sooner).")
@click.option("--batch", type=int)
@click.option("--patch", type=int, help="LR patch side in pixels.")
@click.option("--crop-draws", type=int, help="Crop positions drawn per sample, keeping the most detailed (1: uniform).")
@click.option("--sampling", type=click.Choice(SAMPLINGS),
              help="area: images drawn by area (default); folder: each folder of images an equal share.")
@click.option("--lr", type=float)
@click.option("--fft-weight", type=float)
@click.option("--luma-weight", type=float, help="Adds this times the pixel loss on BT.601 luma to the RGB loss.")
@click.option("--pixel-loss", type=click.Choice(PIXEL_LOSSES), help="l1 (default) or l2 (mean squared error).")
@click.option("--teacher", type=click.Path(exists=True, dir_okay=False),
              help="Weights whose self-ensemble (8 flips/rotations) is blended into the target (computed once, cached).")
@click.option("--teacher-weight", type=float, help="Share of the teacher in the target, in (0, 1]; default 0.5.")
@click.option("--val-every", type=int)
@click.option("--threads", type=int, help="torch threads (0: all cores).")
@click.option("--seed", type=int,
              help="Seeds crop sampling (and a fresh model's init); a continuation cycle with its own seed draws new crops.")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt if it exists.")
def train(config_path: Path | None, resume: bool, **overrides: Any) -> None:
    """Train a SAFDN model; recipe from --config, flags override it.

    Example:

    \b
        nohup streamsr train -c pipelines/train-safdn-x2.toml --resume > train.log &
    """
    from .config import TrainConfig, from_mapping, read_toml
    from .train.trainer import Trainer

    data = read_toml(config_path) if config_path else {}
    data.update({k: v for k, v in overrides.items() if v is not None and v != ()})
    cfg = from_mapping(TrainConfig, data, where=str(config_path or "options"))
    trainer = Trainer(cfg, log=lambda line: click.echo(line, file=sys.stdout))
    best = trainer.fit(resume=resume)
    click.echo(f"best weights: {best} ({trainer.best_psnr:.3f} dB on {cfg.val_name}); "
               f"final weights: {trainer.final_path}")


@cli.command("eval")
@click.option("-m", "--model", "model_name", help="Model name or file (default: safdn-xSCALE).")
@click.option("-s", "--scale", type=SCALE, help="Default 4, or the model's; checked against the model's.")
@click.argument("data_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the scores as JSON.")
@click.option("--export", "export_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a copy of the weights with these scores recorded in its metadata.")
@click.option("--self-ensemble", is_flag=True,
              help="Score the mean over 8 flips/rotations (the \"+\" rows of SR papers), not the model alone.")
@click.option("--runtime", "--backend", "backend", type=click.Choice(RUNTIMES), help="What runs the model (default: torch; an .onnx model: onnxruntime).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="Compute precision (auto: as upscale picks it on this CPU).")
@click.option("--degradation", help="Compress the LR before upscaling, e.g. x264:crf=28 or x265:crf=30 "
              "(a clip's frames as one video); scores are against the clean HR.")
def evaluate(model_name: str | None, scale: int | None, data_dirs: tuple[Path, ...], json_path: Path | None, export_path: Path | None,
             self_ensemble: bool, backend: str | None, precision: str, degradation: str | None) -> None:
    """PSNR/SSIM (Y channel, border = scale) on benchmark sets, next to bicubic.

    Defaults to Set5, Set14, B100 and Vid4 in $STREAMSR_DATA/bench.

    Example:

    \b
        STREAMSR_DATA=/data streamsr eval -s 4 --degradation x264:crf=28
    """
    from .errors import ScaleMismatchError
    from .models import DEFAULT_SCALE, default_model_name, load_model
    from .train.degrade import Compression
    from .train.evaluate import SetScore, evaluate_upscaler, evaluation_upscaler, export_refusal

    try:
        compression = Compression.parse(degradation) if degradation else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--degradation") from e
    model = load_model(model_name or default_model_name(scale or DEFAULT_SCALE))
    if scale is not None and model.scale != scale:
        raise ScaleMismatchError(f"model {model.name} upscales x{model.scale}, but --scale {scale} was asked for")
    upscaler = evaluation_upscaler(model, backend=backend, precision=precision, self_ensemble=self_ensemble)
    if export_path and (why := export_refusal(upscaler)) is not None:
        raise click.UsageError(f"--export: {why}")
    click.echo(f"{model.name}{'+ (self-ensemble of 8)' if self_ensemble else ''} (x{model.scale}, {upscaler.runtime} {upscaler.precision_name})"
               + (f", LR through {compression}" if compression else ""))
    click.echo(f"{'set':<8} {'images':>6} {'PSNR':>7} {'SSIM':>7} {'bicubic':>8} {'bic SSIM':>8} {'img/s':>6} {'tPSNR':>7} {'bic tPSNR':>9}")

    def show(sc: SetScore) -> None:
        # tPSNR (frame-to-frame change against the original's) for clip sets only (Vid4).
        temporal = f" {sc.tpsnr:>7.3f} {sc.bicubic_tpsnr:>9.3f}" if sc.tpsnr is not None and sc.bicubic_tpsnr is not None else ""
        click.echo(f"{sc.name:<8} {sc.images:>6} {sc.psnr:>7.3f} {sc.ssim:>7.4f} {sc.bicubic_psnr:>8.3f} {sc.bicubic_ssim:>8.4f} "
                   f"{sc.images_per_second:>6.2f}{temporal}")

    scores = evaluate_upscaler(upscaler, list(data_dirs) or None, compression=compression, export=export_path, on_set=show)
    if json_path:
        json_path.write_text(json.dumps({"model": model.name, "scale": model.scale, "self_ensemble": self_ensemble,
                                         "degradation": str(compression) if compression else None,
                                         "sets": [sc.as_dict() for sc in scores]}, indent=2))
    if export_path:
        click.echo(f"wrote {export_path}")


@cli.command("export")
@click.argument("model")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The .onnx file to write.")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX operator set version.")
def export_command(model: str, output: Path, opset: int) -> None:
    """Export a model as an ONNX graph (dynamic batch, height and width), for ONNX Runtime,
    OpenVINO, TensorRT and anything else that reads ONNX.

    Example:

    \b
        streamsr export safdn-x4 -o safdn-x4.onnx
        streamsr upscale video.mp4 -m safdn-x4.onnx
    """
    from .models import load_model
    from .models.runtimes import export_onnx

    descriptor = load_model(model)
    export_onnx(descriptor, output, opset=opset)
    click.echo(f"wrote {output} (x{descriptor.scale}, input lr: N x {descriptor.in_ch} x H x W in [0, 1])")

