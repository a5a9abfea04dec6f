"""upscale_file(): decode -> Upscaler -> encode, in three threads joined by bounded queues.

Memory stays flat however long the video is: at most `queue_size` batches wait between stages.
The output is written to a temporary name beside the destination and renamed only on success,
so an error or Ctrl-C never leaves a partial file where a finished one is expected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .engine import Upscaler
from .errors import DecodeError, DiskFullError, EncodeError, OutputError, ScaleMismatchError, is_disk_full
from .frames import FrameBatch, VideoInfo
from .io import open_decoder
from .io.base import Decoder
from .io.codecs import EncodeConfig, output_format_supports, resolve_codec
from .io.encode import PyAVEncoder
from .io.probe import check_source, probe
from .io.sequence import TIMESTAMPS_FILE, FrameSequenceWriter
from .models import DEFAULT_SCALE, default_model_name
from .partials import remove_partial, remove_partials_of, replace_folder, temporary_path

Progress = Callable[[int], None]
Warn = Callable[[str], None]


@dataclass(frozen=True)
class UpscaleConfig:
    """Everything `upscale_file` needs besides the paths."""

    scale: int | None = None
    """Upscaling factor. With a model it is only checked against the model's (None: the model's);
    without one it picks ``safdn-x{scale}`` (None: x4)."""
    model: str = ""
    """Registered name or model file; empty picks ``safdn-x{scale}``."""
    device: str = "auto"
    precision: str = "auto"
    batch: int = 0
    """Frames per model call; 0: chosen from the frame size and free GPU memory (1 on the CPU)."""
    tile: int | None = None
    """Tile side in input pixels; 0: whole frames; None: automatic (tiles for large frames on the CPU)."""
    decoder: str = "auto"
    backend: str = "auto"
    """What executes the model: torch, onnxruntime, openvino; auto: the fastest installed for the device."""
    cuda_graphs: bool = False
    """Replay the model as a CUDA graph (CUDA only; ignored on the CPU)."""
    self_ensemble: bool = False
    """Average the model over the eight flips and rotations of each frame: ~0.1 dB more, 8x the compute."""
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    overwrite: bool = False
    queue_size: int = 4

    def __post_init__(self) -> None:
        from .engine import DEVICES, PRECISIONS
        from .io import DECODERS
        from .models import SCALE_RANGE
        from .models.runtimes import RUNTIMES

        low, high = SCALE_RANGE
        if self.scale is not None and not low <= self.scale <= high:
            raise ValueError(f"scale must be from {low} to {high}, got {self.scale}")
        for name, value, allowed in (("device", self.device, DEVICES), ("precision", self.precision, PRECISIONS),
                                     ("decoder", self.decoder, DECODERS), ("backend", self.backend, RUNTIMES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.batch < 0 or (self.tile is not None and self.tile < 0) or self.queue_size < 1:
            raise ValueError("queue_size must be >= 1, batch and tile >= 0")

    @property
    def model_name(self) -> str:
        return self.model or default_model_name(self.scale or DEFAULT_SCALE)


@dataclass(frozen=True)
class UpscaleResult:
    """What one run did, with per-stage busy times (seconds spent working, not waiting)."""

    output: Path
    frames: int
    seconds: float
    decode_seconds: float
    upscale_seconds: float
    encode_seconds: float
    warnings: tuple[str, ...] = ()
    codec: str = ""
    """The video encoder used (what "auto" chose)."""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def upscale_fps(self) -> float:
        return self.frames / self.upscale_seconds if self.upscale_seconds else 0.0


def settings_fingerprint(cfg: UpscaleConfig, upscaler: Upscaler | None = None) -> str:
    """What makes two outputs of one input differ: model, scale, encoder, tiling, precision."""
    fields = dataclasses.asdict(cfg)
    for volatile in ("overwrite", "queue_size", "batch", "device", "decoder", "cuda_graphs"):
        fields.pop(volatile)
    if upscaler is not None:
        fields["model_identity"] = upscaler.model.name
        fields["model_weights"] = upscaler.model.metadata.get("training", "")
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def check_scale(upscaler: Upscaler, scale: int | None) -> None:
    """Refuse a scale asked for that is not the model's (None asks for nothing)."""
    if scale is not None and scale != upscaler.scale:
        raise ScaleMismatchError(
            f"model {upscaler.model.name} upscales x{upscaler.scale}, but --scale {scale} was asked for; "
            f"leave --scale out to use the model's")


def make_upscaler(cfg: UpscaleConfig, on_warning: Warn | None = None) -> Upscaler:
    """The engine `cfg` asks for (model loaded once; share it across files)."""
    return Upscaler(cfg.model_name, device=cfg.device, precision=cfg.precision, batch=cfg.batch, tile=cfg.tile,
                    cuda_graphs=cfg.cuda_graphs, self_ensemble=cfg.self_ensemble, backend=cfg.backend, on_warning=on_warning)


def fit_container(dst: Path, codec: str) -> Path:
    """`dst`, or `dst` with a ``.mkv`` suffix when its container cannot hold `codec` video."""
    return dst if output_format_supports(dst, codec) else dst.with_suffix(".mkv")


def default_output(src: Path, scale: int, codec: str) -> Path:
    """``video.mp4`` -> ``video_x4.mp4`` beside the source (``.mkv`` if .mp4 cannot hold `codec`)."""
    return fit_container(src.with_name(f"{src.stem}_x{scale}{src.suffix}"), codec)


def check_output(src: Path, dst: Path, *, overwrite: bool) -> None:
    """Raise `OutputError` for an output that must not or cannot be written."""
    if dst.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"{dst}: the output would overwrite the input; choose another -o path")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a directory; give a file name for the output")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: already exists; pass --overwrite to replace it")
    check_parent(dst)


def check_parent(dst: Path) -> None:
    """Raise `OutputError` unless the folder `dst` goes into exists and is writable."""
    parent = dst.parent
    if not parent.is_dir():
        raise OutputError(f"{parent}: the output directory does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{parent}: the output directory is not writable")


_DONE = object()


class _Stage(threading.Thread):
    """A worker thread: its exception is kept (and re-raised by the pipeline), and stops all."""

    def __init__(self, name: str, target: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn, self._stop_all = target, stop
        self.error: BaseException | None = None
        self.busy_seconds = 0.0

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:
            self.error = e
            self._stop_all.set()


def _put(q: queue.Queue[Any], item: object, stop: threading.Event) -> bool:
    """Put unless the pipeline is stopping; False means stop."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    """Next item, or `_DONE` once the pipeline is stopping."""
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return _DONE


def run_stages(
    batches: Iterator[FrameBatch],
    upscale: Callable[[Iterator[FrameBatch]], Iterator[FrameBatch]],
    write: Callable[[FrameBatch], None],
    *,
    queue_size: int = 4,
    on_progress: Progress | None = None,
    on_drop: Progress | None = None,
) -> tuple[float, float, float]:
    """Drive decode (thread) -> upscale (this thread) -> write (thread) through bounded queues.

    `upscale` maps a stream of batches to a stream of upscaled batches (so a GPU engine can keep
    several in flight). Returns the busy seconds of (decode, upscale, write). The first error in any stage stops
    all three and is re-raised here; so is Ctrl-C.

    With `on_drop`, a decoded batch that finds the upscaler's queue full is dropped (its frame
    count passed to `on_drop`) instead of waiting: a live source is then read in real time and
    the output holds the frames the model kept up with, each at its own pts.
    """
    decoded: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
    upscaled: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
    stop = threading.Event()

    def decode_loop() -> None:
        it = iter(batches)
        while not stop.is_set():
            t = time.perf_counter()
            batch = next(it, _DONE)
            decoder.busy_seconds += time.perf_counter() - t
            if on_drop is not None and batch is not _DONE:
                try:
                    decoded.put_nowait(batch)
                except queue.Full:
                    on_drop(len(batch))
                continue
            if not _put(decoded, batch, stop) or batch is _DONE:
                return

    def write_loop() -> None:
        while (batch := _get(upscaled, stop)) is not _DONE:
            t = time.perf_counter()
            write(batch)
            writer.busy_seconds += time.perf_counter() - t
            if on_progress is not None:
                on_progress(len(batch))

    decoder = _Stage("streamsr-decode", decode_loop, stop)
    writer = _Stage("streamsr-encode", write_loop, stop)
    decoder.start()
    writer.start()
    upscale_seconds = 0.0
    waited = [0.0]  # time the upscale stream spent waiting on the decoder: not SR work

    def from_decoder() -> Iterator[FrameBatch]:
        while True:
            t = time.perf_counter()
            batch = _get(decoded, stop)
            waited[0] += time.perf_counter() - t
            if batch is _DONE:
                return
            yield batch

    try:
        results = upscale(from_decoder())
        while True:
            t = time.perf_counter()
            out = next(results, _DONE)
            upscale_seconds += time.perf_counter() - t
            if out is _DONE or not _put(upscaled, out, stop):
                break
        _put(upscaled, _DONE, stop)
        writer.join()
    finally:
        stop.set()  # unblocks whichever stage still waits on a queue
        decoder.join()
        writer.join()
    for stage in (decoder, writer):
        if stage.error is not None:
            raise stage.error
    return decoder.busy_seconds, upscale_seconds - waited[0], writer.busy_seconds


class WarningLog:
    """Warnings of one run, each also passed on to the caller's callback as it happens."""

    def __init__(self, on_warning: Warn | None) -> None:
        self.messages: list[str] = []
        self._on_warning = on_warning

    def __call__(self, message: str) -> None:
        self.messages.append(message)
        if self._on_warning is not None:
            self._on_warning(message)


def prepare_run(src: str | Path, cfg: UpscaleConfig, upscaler: Upscaler | None, info: VideoInfo | None,
                warn: Warn) -> tuple[Path, VideoInfo, Upscaler, UpscaleConfig]:
    """The checked source file, its description, the engine and the config with the model's scale."""
    src = check_source(src)
    if info is None:
        info = probe(src)
    if upscaler is None:
        upscaler = make_upscaler(cfg, on_warning=warn)
    check_scale(upscaler, cfg.scale)
    return src, info, upscaler, replace(cfg, scale=upscaler.scale)


def output_codec(cfg: UpscaleConfig, info: VideoInfo, scale: int, container: str) -> str:
    """The video encoder `cfg` asks for, for this source upscaled by `scale` into a container
    with suffix `container` ("auto" resolved: see `io.codecs.resolve_codec`)."""
    return resolve_codec(cfg.encode.codec, width=info.width * scale, height=info.height * scale,
                         source_pix_fmt=info.pix_fmt, bit_depth=info.bit_depth, pix_fmt=cfg.encode.pix_fmt,
                         container=container)


def _open_source(src: Path, info: VideoInfo, upscaler: Upscaler, cfg: UpscaleConfig) -> Decoder:
    return open_decoder(src, backend=cfg.decoder, batch=upscaler.batch_for(info.height, info.width), info=info)


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
    """Upscale one video file.

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
    src, info, upscaler, cfg = prepare_run(src, config or UpscaleConfig(), upscaler, info, warn)
    codec = output_codec(cfg, info, upscaler.scale, Path(dst).suffix if dst is not None else src.suffix)
    cfg = replace(cfg, encode=replace(cfg.encode, codec=codec))
    dst = Path(dst) if dst is not None else default_output(src, upscaler.scale, codec)
    check_output(src, dst, overwrite=cfg.overwrite)
    remove_partials_of(dst)  # a killed earlier run of this output
    decoder = _open_source(src, info, upscaler, cfg)
    tmp = temporary_path(dst)
    start = time.perf_counter()
    encoder: PyAVEncoder | None = None
    try:
        try:
            encoder = PyAVEncoder(tmp, src, info, scale=upscaler.scale, config=cfg.encode, warn=warn)
        except EncodeError as e:
            if "output format" not in str(e):
                raise
            raise OutputError(f"{dst}: no container format has the suffix {dst.suffix or '(none)'!r}; "
                              f"use .mp4, .mkv, .mov or .webm") from None
        times = run_stages(iter(decoder), upscaler.stream, encoder.write, queue_size=cfg.queue_size, on_progress=on_progress)
        if encoder.frames_written == 0:
            raise DecodeError(f"{src}: no frame could be decoded; the file may be corrupt")
        encoder.close()
        os.replace(tmp, dst)
    except BaseException as e:
        if encoder is not None:
            encoder.abort()
        tmp.unlink(missing_ok=True)
        if is_disk_full(e) and not isinstance(e, DiskFullError):
            raise DiskFullError(f"{dst}: the disk is full; nothing was written (free space, or write elsewhere with -o)") from e
        raise
    finally:
        decoder.close()
    result = UpscaleResult(dst, encoder.frames_written, time.perf_counter() - start, *times, warnings=tuple(warn.messages), codec=codec)
    check_complete(decoder, src, result)
    return result


def check_frames_folder(src: Path, folder: Path, *, overwrite: bool) -> None:
    """Raise `OutputError` for a frame folder that must not or cannot be written. An existing folder
    is replaced only with `overwrite`, and only if it holds an earlier sequence (its timestamps file):
    a folder of other files is never deleted."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder; give a folder for the frames")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise OutputError(f"{folder}: already holds files; pass --overwrite to replace an earlier frame sequence")
        if not (folder / TIMESTAMPS_FILE).is_file():
            raise OutputError(f"{folder}: holds files that are not a frame sequence; choose a new or empty folder")
    if folder.resolve() == src.resolve().parent:
        raise OutputError(f"{folder}: is the source's folder; choose a new or empty folder for the frames")
    check_parent(folder)


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
    src, info, upscaler, cfg = prepare_run(src, config or UpscaleConfig(), upscaler, info, warn)
    folder = Path(folder)
    check_frames_folder(src, folder, overwrite=cfg.overwrite)
    remove_partials_of(folder)
    decoder = _open_source(src, info, upscaler, cfg)
    tmp = temporary_path(folder)
    start = time.perf_counter()
    writer = FrameSequenceWriter(tmp, image_format)
    try:
        tmp.mkdir()
        times = run_stages(iter(decoder), upscaler.stream, writer.write, queue_size=cfg.queue_size, on_progress=on_progress)
        if writer.frames_written == 0:
            raise DecodeError(f"{src}: no frame could be decoded; the file may be corrupt")
        writer.close()
        replace_folder(tmp, folder)
    except BaseException as e:
        remove_partial(tmp)
        if is_disk_full(e) and not isinstance(e, DiskFullError):
            raise DiskFullError(f"{folder}: the disk is full; nothing was written (free space, or write elsewhere)") from e
        raise
    finally:
        decoder.close()
    if writer.frames_dropped:
        warn(f"{writer.frames_dropped} frame(s) dropped: their timestamps repeat or go back in the source")
    result = UpscaleResult(folder, writer.frames_written, time.perf_counter() - start, *times, warnings=tuple(warn.messages),
                           codec=image_format)
    check_complete(decoder, src, result)
    return result


def check_complete(decoder: Decoder, src: Path, result: UpscaleResult) -> None:
    """Raise `DecodeError` (with the counts) if the source lost frames: what decoded was written."""
    missing = decoder.frames_missing()
    if decoder.error is not None or missing:
        lost = f"{missing} frames lost" if missing else "the rest did not decode"
        raise DecodeError(
            f"{src}: the source is damaged; {result.frames} frames were upscaled into {result.output}, {lost}",
            frames_done=result.frames, frames_lost=missing or None,
        )
