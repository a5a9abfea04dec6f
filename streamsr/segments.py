"""Long files in segments: cut at the source's keyframes, upscaled one by one (or in parallel, by
an engine such as Ray), kept in a work folder so a stopped run resumes where it stopped, and
joined by stream copy into one output.

Cuts fall on keyframes only (the demuxer's flags), so no source frame is re-encoded to cut, and
each segment owns the frames with ``start <= pts < end``: none is lost or doubled at a seam. Each
frame keeps its source pts; audio, subtitles and the rest are copied from the source once, when
the segments are joined.

The work folder ``.NAME.segments`` beside the output holds the finished segments and a plan
(``plan.json``: source size and mtime, settings, codec, cuts). A rerun with the same source and
settings upscales only the segments that are missing; anything else starts the folder afresh.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .config import UpscaleConfig, UpscaleResult, settings_fingerprint
from .errors import ConfigError, DecodeError
from .frames import VideoInfo
from .io.atomic import AtomicOutput
from .io.encode import PyAVEncoder
from .io.join import SegmentJoiner
from .io.probe import file_digest, open_input, source_identity
from .io.pyav import PyAVDecoder
from .outputs import check_output, default_output, output_codec
from .partials import remove_stale_partials
from .stages import Progress, Warn, WarningLog, drive, frame_stages, model_stage, prepare_run
from .stages.deinterlace import Deinterlace
from .stages.footage import Footage
from .stages.reuse import ReuseCount
from .upscaler import Upscaler

DEFAULT_SEGMENT_SECONDS = 30.0
PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class Segment:
    index: int
    start_pts: int
    end_pts: int | None
    """The next segment's start; None for the last segment."""
    frames: int

    @property
    def file_name(self) -> str:
        return f"segment-{self.index:05d}.mp4"  # MP4 keeps every pts exact in any time base


def plan_segments(src: Path, seconds: float) -> list[Segment]:
    """Cut the video at keyframes into segments of at least `seconds` (the last may be shorter)."""
    with open_input(src) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size and p.pts is not None]
        tb = stream.time_base
    frames = sorted(pts for pts, _ in packets)
    if not frames:
        raise DecodeError(f"{src}: the video stream has no packets")
    cuts = [frames[0]]
    for pts in sorted(pts for pts, key in packets if key):
        if (pts - cuts[-1]) * tb >= seconds:
            cuts.append(pts)
    bounds = [*cuts, None]
    return [Segment(i, start, end, (bisect.bisect_left(frames, end) if end is not None else len(frames))
                    - bisect.bisect_left(frames, start))
            for i, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False))]


@dataclass(frozen=True)
class SegmentJob:
    """Everything a worker needs to upscale one segment: plain data, so an engine can ship it."""

    src: Path
    info: VideoInfo
    """The source's description, probed once for all segments."""
    segment: Segment
    work_dir: Path
    config: UpscaleConfig
    """With the codec resolved, so every segment is encoded alike wherever it runs."""
    footage: Footage
    """The picture steps around the model, decided once for the whole source."""

    @property
    def output(self) -> Path:
        return self.work_dir / self.segment.file_name

    @property
    def frames(self) -> int:
        """Frames the finished segment holds: one per field when deinterlacing to field rate."""
        doubled = any(isinstance(s, Deinterlace) and s.field_rate for s in self.footage.steps)
        return self.segment.frames * (2 if doubled else 1)


def upscale_segment(job: SegmentJob, upscaler: Upscaler, on_progress: Progress | None = None) -> int:
    """Upscale one segment into the work folder (under a hidden name, renamed when complete);
    the number of frames written. Raises `DecodeError` if the segment lost frames."""
    info, seg, footage = job.info, job.segment, job.footage
    picture = footage.picture
    decoder = PyAVDecoder(job.src, batch=upscaler.batch_for(picture.height, picture.width), info=info,
                          start_pts=seg.start_pts, end_pts=seg.end_pts, filters=footage.filters())
    try:
        with AtomicOutput(job.output) as tmp:
            # A segment carries video only: the other streams are copied once, at the join.
            encoder = PyAVEncoder(tmp, None, footage.output(upscaler.scale), scale=1, config=job.config.encode)
            model = model_stage(upscaler, job.config.reuse)
            drive(decoder, frame_stages(model, after=footage.after()), encoder, name=job.src,
                  queue_size=job.config.queue_size, on_progress=on_progress)
            if encoder.frames_written != job.frames or decoder.error is not None:
                raise DecodeError(f"{job.src}: segment {seg.index} gave {encoder.frames_written} of its {job.frames} frames"
                                  + (f" ({decoder.error})" if decoder.error else ""),
                                  frames_done=encoder.frames_written, frames_lost=job.frames - encoder.frames_written)
    finally:
        decoder.close()
    _seal(job, encoder.frames_written, model.count)
    return encoder.frames_written


def _record(job: SegmentJob) -> Path:
    return job.output.with_suffix(".json")


def _seal(job: SegmentJob, frames: int, count: ReuseCount) -> None:
    """Record what a finished segment holds (its frames and its bytes' hash) beside it, so a later
    run can tell it from a damaged, cut or swapped file under its name; and how many of its frames
    reused an upscaled picture, for the whole run's count."""
    with AtomicOutput(_record(job)) as tmp:
        tmp.write_text(json.dumps({"frames": frames, "sha256": file_digest(job.output), "reused": count.reused,
                                   "partial": count.partial}))


def reuse_count(jobs: list[SegmentJob]) -> ReuseCount:
    """The reused and partly upscaled frames of finished segments, from their records."""
    total = ReuseCount()
    for job in jobs:
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(_record(job).read_text())
            total.reused += int(record.get("reused", 0))
            total.partial += int(record.get("partial", 0))
    return total


def check_finished(job: SegmentJob) -> str | None:
    """None if the segment in the work folder is the one this job finished earlier; else why not
    (never finished, or its file no longer matches the record made when it was)."""
    if not job.output.is_file():
        return "not finished"
    try:
        record = json.loads(_record(job).read_text())
        frames, digest = int(record["frames"]), str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return "its record is missing or unreadable"
    if frames != job.frames:
        return f"it holds {frames} of its {job.frames} frames"
    if file_digest(job.output) != digest:
        return "its file changed since it was finished"
    return None


def work_folder(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.segments")


def _prepare_work_folder(work: Path, plan: dict) -> None:
    """Keep `work` if it holds segments of this very plan; else start it afresh."""
    try:
        same = json.loads((work / PLAN_FILE).read_text()) == plan
    except (OSError, ValueError):
        same = False
    if not same:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        (work / PLAN_FILE).write_text(json.dumps(plan))
    remove_stale_partials(work)


RunSegments = Callable[[list[SegmentJob], Progress], None]
"""Upscales the given segment jobs into their work folder (an engine: local or Ray)."""


def upscale_segmented(
    src: str | Path,
    dst: str | Path | None = None,
    config: UpscaleConfig | None = None,
    *,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    resume: bool = False,
    upscaler: Upscaler | None = None,
    run_segments: RunSegments | None = None,
    info: VideoInfo | None = None,
    on_progress: Progress | None = None,
    on_warning: Warn | None = None,
) -> UpscaleResult:
    """Upscale a video in keyframe-aligned segments and join them (see the module's description).

    With `resume`, the work folder is kept when the run fails or is stopped, and a rerun reuses
    its finished segments; without, it is removed either way. `run_segments` upscales the missing
    segments (default: one after another in this process, with `upscaler`).
    """
    warn = WarningLog(on_warning)
    # The model is loaded here also for another engine: it says the scale and names the settings.
    if config is not None and config.ivtc:
        raise ConfigError("--ivtc drops one frame in five across the whole film: it runs on the file in one piece, "
                          "not in segments")
    src, info, upscaler, cfg, footage = prepare_run(src, config or UpscaleConfig(), upscaler, info, warn)
    scale = upscaler.scale
    out = footage.output(scale)
    codec = output_codec(cfg, out, 1, Path(dst).suffix if dst is not None else src.suffix)
    dst = Path(dst) if dst is not None else default_output(src, scale, codec)
    check_output(src, dst, overwrite=cfg.overwrite)
    cfg = replace(cfg, encode=replace(cfg.encode, codec=codec))
    segments = plan_segments(src, segment_seconds)
    plan = {"source": source_identity(src), "settings": settings_fingerprint(cfg, upscaler),
            "segments": [asdict(s) for s in segments]}
    work = work_folder(dst)
    _prepare_work_folder(work, plan)
    # Absolute paths: a job may run in another process or on another node that sees the same storage.
    jobs = [SegmentJob(src.resolve(), info, s, work.resolve(), cfg, footage) for s in segments]
    missing = []
    for job in jobs:
        if (why := check_finished(job)) is not None:
            if job.output.exists():
                warn(f"segment {job.segment.index} is upscaled again: {why}")
                job.output.unlink()
            missing.append(job)
    progress = on_progress or (lambda _n: None)
    resumed = sum(j.frames for j in jobs if j not in missing)
    progress(resumed)
    start = time.perf_counter()
    try:
        if run_segments is None:
            for job in missing:
                upscale_segment(job, upscaler, progress)
        else:
            run_segments(missing, progress)
        upscale_seconds = time.perf_counter() - start
        with AtomicOutput(dst) as tmp:
            joiner = SegmentJoiner(tmp, src, out, [j.output for j in jobs], scale=1, config=cfg.encode, warn=warn)
            try:
                joiner.copy_segments()
                joiner.close()
            except BaseException:
                joiner.abort()
                raise
    except BaseException:
        if not resume:
            shutil.rmtree(work, ignore_errors=True)
        raise
    count = reuse_count(jobs)
    shutil.rmtree(work, ignore_errors=True)
    frames = sum(j.frames for j in jobs)
    return UpscaleResult(dst, frames, time.perf_counter() - start, 0.0, upscale_seconds, 0.0,
                         warnings=tuple(warn.messages), codec=codec, picture=footage.notes, resumed=resumed,
                         reused=count.reused, partial=count.partial)
