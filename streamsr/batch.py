"""upscale_many(): a folder of videos and images, mirrored into an output folder, resumable and isolated.

The unit of work is `jobs.upscale_one(job, upscaler)`: one file, its settings and its output path,
a plain function call that a distributed engine (e.g. Ray) can run as a task as it is.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .config import UpscaleConfig, UpscaleResult, settings_fingerprint
from .errors import DecodeError, InputError, OutputError, StreamSRError, is_disk_full
from .images import is_image
from .io.probe import probe, source_identity
from .jobs import Job, upscale_one
from .outputs import fit_container
from .partials import remove_stale_partials
from .stages import make_upscaler
from .upscaler import Upscaler

VIDEO_SUFFIXES = frozenset(
    [".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv", ".mxf", ".y4m"]
)
MANIFEST_NAME = ".streamsr-batch.json"
Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Outcome:
    src: Path
    dst: Path | None
    status: Status
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0


@dataclass
class BatchReport:
    outcomes: list[Outcome] = field(default_factory=list)
    ignored: int = 0
    """Files skipped without a try because their suffix is not a video's."""
    stopped: str = ""
    """Why the batch stopped early (disk full), or empty."""

    def by_status(self, status: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.by_status("failed") and not self.stopped

    def as_dict(self) -> dict[str, Any]:
        return {
            "done": len(self.by_status("done")),
            "skipped": len(self.by_status("skipped")),
            "failed": len(self.by_status("failed")),
            "ignored": self.ignored,
            "stopped": self.stopped,
            "files": [
                {**dataclasses.asdict(o), "src": str(o.src), "dst": str(o.dst) if o.dst else None}
                for o in self.outcomes
            ],
        }


@dataclass
class BatchEvents:
    """Callbacks the CLI uses for progress; all optional, called from worker threads too."""

    on_plan: Callable[[int, int], None] = lambda files, frames: None
    on_file_start: Callable[[Job, int], None] = lambda job, frames: None
    on_progress: Callable[[int], None] = lambda frames: None
    on_file_end: Callable[[Outcome], None] = lambda outcome: None
    on_warning: Callable[[str], None] = lambda message: None


def is_media(path: Path) -> bool:
    """A file `batch` (and the web app) takes by its suffix: a video or an image."""
    return path.suffix.lower() in VIDEO_SUFFIXES or is_image(path)


def find_inputs(in_dir: Path, out_dir: Path, *, pattern: str | None = None,
                recursive: bool = True) -> tuple[list[Path], int, list[Outcome]]:
    """Candidate inputs under `in_dir` (sorted), the count of other files ignored, and the links
    that lead nowhere readable, each as a skipped `Outcome` with the reason.

    With `pattern`, every file matching it is a candidate (and is reported if it is no video or
    image); without, files with a video or image suffix are. Anything under `out_dir` is never an
    input. Links to folders are not followed (one may loop back above itself), and are reported.
    """
    out_dir = out_dir.resolve()
    walker = in_dir.rglob if recursive else in_dir.glob
    found, ignored, links = [], 0, []
    for path in sorted(walker(pattern or "*")):
        if path.is_symlink() and (why := _unfollowed_link(path)) is not None:
            links.append(Outcome(path, None, "skipped", why))
            continue
        if not path.is_file() or path.resolve().is_relative_to(out_dir):
            continue
        if pattern or is_media(path):
            found.append(path)
        else:
            ignored += 1
    return found, ignored, links


def _unfollowed_link(path: Path) -> str | None:
    """Why a symbolic link is not upscaled (a loop, a link to nothing, a folder); None for a link to a file."""
    try:
        target = path.resolve(strict=True)
    except RuntimeError:  # Python's name for ELOOP while resolving
        return "a symbolic link that loops"
    except OSError as e:
        return "a symbolic link that loops" if e.errno == errno.ELOOP else "a symbolic link to nothing"
    if target.is_dir():
        return "a symbolic link to a folder: not followed (it may loop back above itself)"
    return None


class Manifest:
    """What earlier runs finished: input size/mtime and settings per relative path."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / MANIFEST_NAME
        try:
            self.entries: dict[str, dict[str, Any]] = json.loads(self.path.read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            self.entries = {}

    @staticmethod
    def stamp(src: Path, fingerprint: str, dst: Path) -> dict[str, Any]:
        return {**source_identity(src), "settings": fingerprint, "output": dst.name}

    def is_done(self, key: str, src: Path, fingerprint: str, dst: Path) -> bool:
        return dst.is_file() and self.entries.get(key) == self.stamp(src, fingerprint, dst)

    def record(self, key: str, src: Path, fingerprint: str, dst: Path) -> None:
        self.entries[key] = self.stamp(src, fingerprint, dst)
        self._save()

    def forget(self, key: str, dst: Path | None = None) -> bool:
        """Drop `key`; with `dst`, also delete the output an earlier run made there. True if one was deleted."""
        entry = self.entries.pop(key, None)
        if entry is None:
            return False
        self._save()
        if dst is not None and entry.get("output") == dst.name and dst.is_file():
            dst.unlink()
            return True
        return False

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"format": "streamsr-batch/1", "files": self.entries}, indent=1, sort_keys=True))
        tmp.replace(self.path)


def upscale_many(
    in_dir: str | Path,
    out_dir: str | Path,
    config: UpscaleConfig | None = None,
    *,
    pattern: str | None = None,
    recursive: bool = True,
    jobs: int = 1,
    upscaler: Upscaler | None = None,
    events: BatchEvents | None = None,
    engine: str = "local",
    address: str | None = None,
    segment_seconds: float | None = None,
) -> BatchReport:
    """Upscale every video and image under `in_dir` into the same tree under `out_dir`.

    Finished outputs whose input and settings are unchanged are skipped (see `Manifest`);
    ``config.overwrite`` redoes everything. A failing file is recorded and the batch goes on,
    except when the disk is full. The model is loaded once for the whole batch.

    ``engine="ray"`` runs each file as a Ray task (see `distributed`) on the cluster at `address`
    (None: a local instance), as many at once as `jobs` or, if `jobs` is 1, as the cluster has GPUs
    (else CPUs); progress then advances as files finish.

    With `segment_seconds`, each video is upscaled in keyframe-aligned segments kept in a work
    folder beside its output, so a stopped batch resumes inside the file it was on.
    """
    cfg = config or UpscaleConfig()
    ev = events or BatchEvents()
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if engine == "ray":  # tasks may run on other nodes that see the same storage
        in_dir, out_dir = in_dir.resolve(), out_dir.resolve()
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: not a directory")
    if out_dir.resolve() == in_dir.resolve():
        raise OutputError(f"{out_dir}: the output folder must differ from the input folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out_dir, recursive=True)
    sources, ignored, links = find_inputs(in_dir, out_dir, pattern=pattern, recursive=recursive)
    report = BatchReport(ignored=ignored)
    for outcome in links:
        report.outcomes.append(outcome)
        ev.on_file_end(outcome)
    if upscaler is None:
        upscaler = make_upscaler(cfg, on_warning=ev.on_warning)
    fingerprint = settings_fingerprint(cfg, upscaler)
    manifest = Manifest(out_dir)

    todo: list[tuple[str, Job, int]] = []
    def failed(key: str, src: Path, dst: Path, error: Exception, seconds: float = 0.0) -> Outcome:
        """The outcome of a failed file, with the output folder made to agree with it: what a
        source damaged part-way decoded is kept and named; an earlier run's output of an input
        that now fails is removed (the manifest says it was ours)."""
        reason = str(error).removeprefix(f"{src}: ") or type(error).__name__
        if isinstance(error, DecodeError) and error.frames_done and dst.is_file():
            manifest.forget(key)  # not finished: the next run tries it again
            return Outcome(src, dst, "failed", f"{reason}; the {error.frames_done} frames that decoded were written",
                           frames=error.frames_done, seconds=seconds)
        if manifest.forget(key, dst):
            reason += f"; the earlier output {dst.name} was removed"
        return Outcome(src, None, "failed", reason, seconds=seconds)

    for src in sources:
        rel = src.relative_to(in_dir)
        image = is_image(src)
        dst = out_dir / rel if image else fit_container(out_dir / rel, cfg.encode.codec)
        try:
            frames = 1 if image else probe(src).num_frames_estimate
        except StreamSRError as e:
            report.outcomes.append(failed(str(rel), src, dst, e))
            ev.on_file_end(report.outcomes[-1])
            continue
        if not cfg.overwrite and manifest.is_done(str(rel), src, fingerprint, dst):
            report.outcomes.append(Outcome(src, dst, "skipped", "already done with these settings"))
            ev.on_file_end(report.outcomes[-1])
            continue
        todo.append((str(rel), Job(src, dst, dataclasses.replace(cfg, overwrite=True), segment_seconds), frames))
    ev.on_plan(len(todo), sum(frames for _, _, frames in todo))

    stopping = threading.Event()

    def progress(frames: int) -> None:
        if stopping.is_set():  # the batch was interrupted: this file stops too, its partial removed
            raise KeyboardInterrupt
        ev.on_progress(frames)

    file_events = dataclasses.replace(ev, on_progress=progress)
    ray_runner = None
    if engine == "ray":
        from .distributed import RayFileRunner

        ray_runner = RayFileRunner(cfg, address=address)
        jobs = jobs if jobs > 1 else ray_runner.slots

    def execute(job: Job) -> UpscaleResult:
        if ray_runner is None:
            return upscale_one(job, upscaler, on_progress=file_events.on_progress, on_warning=file_events.on_warning)
        result = ray_runner(job)
        progress(result.frames)
        return result

    def run(key: str, job: Job, frames: int) -> Outcome:
        if report.stopped:
            return Outcome(job.src, job.dst, "failed", f"not started: {report.stopped}")
        ev.on_file_start(job, frames)
        start = time.perf_counter()
        try:
            result = execute(job)
        except Exception as e:  # one broken file never stops the batch...
            if is_disk_full(e):  # ...unless every later one would fail the same way
                report.stopped = f"disk full while writing {job.dst}"
            return failed(key, job.src, job.dst, e, time.perf_counter() - start)
        manifest.record(key, job.src, fingerprint, job.dst)
        return Outcome(job.src, job.dst, "done", frames=result.frames, seconds=result.seconds)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        try:
            for outcome in pool.map(lambda t: run(*t), todo):
                report.outcomes.append(outcome)
                ev.on_file_end(outcome)
        except BaseException:  # Ctrl-C or SIGTERM: files not started are dropped, running ones stop
            stopping.set()
            if ray_runner is not None:
                ray_runner.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return report
