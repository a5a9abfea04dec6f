"""The Ray engine: files of a batch and segments of a long file as Ray tasks, on one machine or a
cluster. The only module importing Ray (``pip install "streamsr[ray]"``).

Each task asks for one GPU where the cluster has GPUs and the device allows (else for CPUs); the
model is loaded once per worker process and kept for the tasks it runs next. A task whose worker
dies (a crash, a lost node) is retried `max_retries` times; an error of the input itself (a
damaged file) is not retried and is reported for that file only. Inputs and outputs are paths:
on a cluster they must be on storage every node sees (an NFS or similar share).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .config import UpscaleConfig, UpscaleResult, settings_fingerprint
from .errors import BackendUnavailableError
from .stages import Progress, make_upscaler
from .upscaler import Upscaler

ENGINES = ("local", "ray")
DEFAULT_RETRIES = 2

_UPSCALERS: dict[str, Upscaler] = {}
"""Per worker process: one loaded model per settings."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise BackendUnavailableError('Ray is not installed; pip install "streamsr[ray]"') from e
    return ray


def connect(address: str | None = None) -> Any:
    """Ray, connected: to `address` (``auto``: a cluster started with ``ray start``; ``ray://HOST:PORT``),
    or to a local instance on this machine when None. An existing connection is reused."""
    ray = _import_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise BackendUnavailableError(f"cannot reach the Ray cluster at {address or 'a new local instance'} ({e})") from e
    return ray


def worker_upscaler(config: UpscaleConfig) -> Upscaler:
    """The model for `config`, loaded once per worker process."""
    key = settings_fingerprint(config)
    if key not in _UPSCALERS:
        _UPSCALERS[key] = make_upscaler(config)
    return _UPSCALERS[key]


def task_resources(ray: Any, config: UpscaleConfig, cpus_per_task: float = 1.0) -> dict[str, float]:
    gpus = ray.cluster_resources().get("GPU", 0)
    if config.device == "cuda" or (config.device == "auto" and gpus > 0):
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": cpus_per_task}


def original_error(error: BaseException) -> BaseException:
    """The exception a task raised, without Ray's wrapper (whose text carries the remote traceback)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


def _run_file(job: Any) -> UpscaleResult:
    from .jobs import upscale_one

    return upscale_one(job, worker_upscaler(job.config))


def _run_segment(job: Any) -> int:
    from .segments import upscale_segment

    return upscale_segment(job, worker_upscaler(job.config))


class RayFileRunner:
    """Runs batch jobs as Ray tasks; `__call__(job)` blocks until that job's task ends (call it from
    as many threads as tasks should run at once) and returns its result or raises its error."""

    def __init__(self, config: UpscaleConfig, *, address: str | None = None, max_retries: int = DEFAULT_RETRIES,
                 cpus_per_task: float = 1.0) -> None:
        self._ray = connect(address)
        self._task = self._ray.remote(max_retries=max_retries, **task_resources(self._ray, config, cpus_per_task))(_run_file)
        self._refs: set[Any] = set()

    @property
    def slots(self) -> int:
        """How many tasks the cluster runs at once."""
        resources = self._ray.cluster_resources()
        return max(1, int(resources.get("GPU", 0)) or int(resources.get("CPU", 1)))

    def __call__(self, job: Any) -> UpscaleResult:
        ref = self._task.remote(job)
        self._refs.add(ref)
        try:
            return self._ray.get(ref)
        except Exception as e:
            raise original_error(e) from None
        finally:
            self._refs.discard(ref)

    def cancel(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref, force=True)


def ray_segment_runner(config: UpscaleConfig, *, address: str | None = None, max_retries: int = DEFAULT_RETRIES,
                       cpus_per_task: float = 1.0) -> Callable[[list[Any], Progress], None]:
    """A `segments.RunSegments` that upscales the segments as Ray tasks, all at once."""
    ray = connect(address)
    task = ray.remote(max_retries=max_retries, **task_resources(ray, config, cpus_per_task))(_run_segment)

    def run(jobs: list[Any], progress: Progress) -> None:
        pending = {task.remote(job): job for job in jobs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    pending.pop(ref)
                    try:
                        progress(ray.get(ref))
                    except Exception as e:
                        raise original_error(e) from None
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    return run

