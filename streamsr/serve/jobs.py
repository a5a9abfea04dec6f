"""The web app's queue: jobs run one at a time through the library's `upscale()`, their state on disk.

Each job is a JSON file in ``<root>/.streamsr/jobs/``, rewritten (atomically) as it changes. Videos
run in keyframe segments with ``resume``: a job that was running when the server stopped (or
died) is queued again when it starts, and reuses the segments it had finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..batch import is_media
from ..config import UpscaleConfig, UpscaleResult
from ..errors import EXIT_MEANINGS, ConfigError, StreamSRError
from ..images import is_image
from ..models import CATALOG, SCALES
from ..presets import layered_config, list_presets, load_preset
from ..segments import DEFAULT_SEGMENT_SECONDS, work_folder
from ..stages.upscale import LastUpscaler
from .files import OUTPUTS, STATE, Root, is_model_file

FINISHED = frozenset({"done", "failed", "cancelled"})
OPTIONS = ("scale", "width", "height", "fit", "model", "preset")
"""What a job may ask for: the choices a person understands; the rest comes from the preset."""
SAVE_EVERY = 1.0
"""Seconds between writes of a running job's progress to disk."""


class StoppedError(Exception):
    """Raised from the progress callback to end a run: the job was cancelled or the server stops."""


@dataclass
class Job:
    id: str
    source: str
    """Relative to the root, as every path a job shows."""
    output: str
    options: dict[str, Any]
    state: str = "queued"
    """queued, running, done, failed or cancelled."""
    frames: int = 0
    total: int | None = None
    """Frames in the source, as its header says (None where it does not)."""
    fps: float = 0.0
    eta_seconds: float | None = None
    resumed: int = 0
    """Frames of segments finished before the server last stopped, kept as they were."""
    reused: int = 0
    """Frames that repeated the picture before and reused its result (`UpscaleResult.reused`)."""
    restarts: int = 0
    """Times the server stopped (or died) during the job, which then went on at its next start."""
    error: str = ""
    exit_code: int | None = None
    warnings: list[str] = field(default_factory=list)
    picture: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def public(self) -> dict[str, Any]:
        """What the API shows of the job: its fields, and what a failure's exit code means."""
        return {**asdict(self), "meaning": EXIT_MEANINGS.get(self.exit_code or 0, "") if self.state == "failed" else ""}


def _label(cfg: UpscaleConfig) -> str:
    if cfg.width and cfg.height:
        return f"{cfg.width}x{cfg.height}"
    if cfg.height:
        return f"{cfg.height}p"
    if cfg.width:
        return f"w{cfg.width}"
    scale = cfg.scale or (int(m[1]) if (m := re.search(r"x(\d)", Path(cfg.model).stem)) else None)
    return f"x{scale}" if scale else "upscaled"


def job_config(root: Root, options: dict[str, Any]) -> UpscaleConfig:
    """The config a job's options ask for: `ConfigError` (or `RefusedPathError`) naming a bad one.

    Presets are the shipped ones, by name; a model is a shipped name or a model file under the
    root (read as weights, never run as code: `models.load_model`).
    """
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ConfigError(f"unknown option {sorted(unknown)[0]!r} (a job takes {', '.join(OPTIONS)})")
    data = {k: v for k, v in options.items() if v not in (None, "") and k not in ("preset", "model")}
    presets = {p.name for p in list_presets()}
    preset = options.get("preset") or "default"
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r} (shipped: {', '.join(sorted(presets))})")
    if model := options.get("model"):
        if model not in CATALOG:
            path = root.resolve(str(model))
            if not (is_model_file(path) and path.is_file()):
                raise ConfigError(f"{model!r}: neither a shipped model nor a model file under the root folder")
            model = str(path)
        data["model"] = model
    cfg = layered_config(load_preset(preset), data, where="job")
    if not cfg.model and cfg.scale is not None and cfg.model_name not in CATALOG:
        raise ConfigError(f"no shipped model upscales x{cfg.scale} (scales: {', '.join(map(str, SCALES))})")
    return cfg


class JobQueue:
    """Jobs under one root, run one at a time in a worker thread.

    `engine` ``ray`` runs each video's segments as Ray tasks (`distributed.ray_segment_runner`).
    """

    def __init__(self, root: Root, *, engine: str = "local", address: str | None = None,
                 segment_seconds: float = DEFAULT_SEGMENT_SECONDS) -> None:
        self.root = root
        self.engine, self.address, self.segment_seconds = engine, address, segment_seconds
        self.folder = root.path / STATE / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Condition()
        self._cancel: set[str] = set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._model = LastUpscaler()
        self.jobs: dict[str, Job] = {}
        for path in sorted(self.folder.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError):
                data = json.loads(path.read_text())
                job = Job(**{f.name: data[f.name] for f in fields(Job) if f.name in data})
                if job.state == "running":  # the server stopped during it: its finished segments wait
                    job.state, job.restarts = "queued", job.restarts + 1
                self.jobs[job.id] = job

    # --- the API's side ------------------------------------------------------------------------

    def submit(self, source: str, options: dict[str, Any]) -> Job:
        """Queue `source` (relative to the root) with `options`; raises on a bad source or option."""
        path = self.root.resolve(source)
        if not (path.is_file() and is_media(path)):
            raise ConfigError(f"{source!r}: not a video or image under the root folder")
        cfg = job_config(self.root, options)
        suffix = path.suffix.lower() if is_image(path) else ".webm" if path.suffix.lower() == ".webm" else ".mp4"
        with self._lock:
            taken = frozenset(j.output for j in self.jobs.values() if j.state not in FINISHED)
            output = self.root.free_name(OUTPUTS, f"{path.stem}_{_label(cfg)}{suffix}", taken=taken)
            job = Job(secrets.token_hex(6), self.root.relative(path), self.root.relative(output), dict(options))
            self.jobs[job.id] = job
            self._save(job)
            self._lock.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            return list(self.jobs.values())

    def cancel(self, job_id: str) -> Job | None:
        """Stop a queued or running job (its unfinished output is removed), or forget a finished one."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            if job.state in FINISHED:
                del self.jobs[job_id]
                (self.folder / f"{job_id}.json").unlink(missing_ok=True)
            elif job.state == "queued":
                self._finish(job, "cancelled")
            else:
                self._cancel.add(job_id)
            return job

    def start(self) -> None:
        """Start the worker, if it is not running yet."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._work, name="streamsr-jobs", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the running job where it is (its finished segments are kept for the next start)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.engine == "ray":  # a local instance started for the jobs ends with the server
            import ray

            if ray.is_initialized():
                ray.shutdown()

    # --- the worker's side ---------------------------------------------------------------------

    def _save(self, job: Job) -> None:
        path = self.folder / f"{job.id}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(job)))
        os.replace(tmp, path)

    def _finish(self, job: Job, state: str, error: Exception | None = None) -> None:
        job.state, job.finished, job.eta_seconds = state, time.time(), None
        if error is not None:
            job.error = self.root.shown(error)
            job.exit_code = error.exit_code if isinstance(error, StreamSRError) else 1
        self._save(job)

    def _next(self) -> Job | None:
        with self._lock:
            while not self._stopping:
                queued = [j for j in self.jobs.values() if j.state == "queued"]
                if queued:
                    job = min(queued, key=lambda j: j.created)
                    job.state, job.started, job.frames, job.error, job.warnings = "running", time.time(), 0, "", []
                    self._save(job)
                    return job
                self._lock.wait()
            return None

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                result = self._run(job)
            except StoppedError:
                with self._lock:
                    if job.id in self._cancel:
                        self._cancel.discard(job.id)
                        shutil.rmtree(work_folder(self.root.path / job.output), ignore_errors=True)
                        self._finish(job, "cancelled")
                    else:  # the server stops: the job runs on at the next start
                        job.state, job.restarts = "queued", job.restarts + 1
                        self._save(job)
            except Exception as e:  # a failure ends that job (StreamSRError: with its exit code), not the queue
                self._finish(job, "failed", e)
            else:
                job.frames, job.warnings, job.picture = result.frames, list(result.warnings), list(result.picture)
                job.resumed, job.reused = result.resumed, result.reused
                self._finish(job, "done")

    def _progress(self, job: Job, *, segmented: bool) -> Callable[[int], None]:
        start, saved = time.perf_counter(), time.perf_counter()
        first = segmented

        def progress(frames: int) -> None:
            nonlocal saved, first
            if self._stopping or job.id in self._cancel:
                raise StoppedError(job.id)
            if first:  # a segmented run first reports the frames of the segments finished earlier
                job.resumed = frames
            first = False
            job.frames += frames
            now = time.perf_counter()
            done = job.frames - job.resumed
            job.fps = done / (now - start) if now > start else 0.0
            if job.total and job.fps > 0:
                job.eta_seconds = max(0.0, (job.total - job.frames) / job.fps)
            if now - saved >= SAVE_EVERY:
                saved = now
                self._save(job)

        return progress

    def _run(self, job: Job) -> UpscaleResult:
        from ..io.probe import probe
        from ..run import upscale

        src = self.root.resolve(job.source)
        dst = self.root.path / job.output
        cfg = job_config(self.root, job.options)
        image = is_image(src)
        info = None if image else probe(src)
        job.total = 1 if image else info.num_frames_estimate or None
        runner = None
        if self.engine == "ray" and not image:
            from ..distributed import ray_segment_runner

            runner = ray_segment_runner(cfg, address=self.address)
        # The last job's model serves this one where it asks for the same (a target size picks the
        # model's scale for each source, so it loads its own).
        sized = cfg.width is not None or cfg.height is not None
        with nullcontext(None) if sized else self._model(cfg) as upscaler:
            return upscale(src, dst, cfg, resume=not image, segment_seconds=None if image else self.segment_seconds,
                           run_segments=runner, upscaler=upscaler, info=info,
                           on_progress=self._progress(job, segmented=not image), on_warning=job.warnings.append)
