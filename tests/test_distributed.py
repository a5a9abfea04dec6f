"""The Ray engine on a real local Ray cluster: a batch of files, a long file in segments, and a
task whose worker process dies once and is retried."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from click.testing import CliRunner
from conftest import make_clip

ray = pytest.importorskip("ray")

from streamsr.batch import upscale_many  # noqa: E402
from streamsr.cli import cli  # noqa: E402
from streamsr.config import UpscaleConfig  # noqa: E402
from streamsr.distributed import ray_segment_runner  # noqa: E402
from streamsr.segments import upscale_segmented  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "safdn-tiny-x2.safetensors"


def die_once_when_armed() -> None:
    """Runs in every Ray worker at start: while the test's arm file exists, the first file task
    to run anywhere ends its worker process (as a crash or a lost node would)."""
    import streamsr.jobs

    arm = Path(os.environ["STREAMSR_TEST_ARM"])
    original = streamsr.jobs.upscale_one

    def upscale_one(*args: object, **kwargs: object) -> object:
        if arm.exists():
            try:
                os.close(os.open(arm.with_suffix(".died"), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os._exit(1)
        return original(*args, **kwargs)

    streamsr.jobs.upscale_one = upscale_one


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray cluster of 2 CPUs; yields the path that arms the worker crash."""
    from ray import cloudpickle

    arm = tmp_path_factory.mktemp("ray") / "arm"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"STREAMSR_TEST_ARM": str(arm)}, "worker_process_setup_hook": die_once_when_armed})
    yield arm
    ray.shutdown()


def config() -> UpscaleConfig:
    return UpscaleConfig(scale=2, model=str(WEIGHTS), device="cpu", backend="torch")


def times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]


def test_batch_on_ray_retries_a_dead_worker_and_finishes(cluster: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i, frames in enumerate((6, 9, 12)):
        make_clip(src / f"clip{i}.mkv", frames=frames)
    cluster.touch()  # the first task's worker dies
    try:
        report = upscale_many(src, tmp_path / "out", config(), engine="ray")
    finally:
        cluster.unlink()
    assert cluster.with_suffix(".died").exists()  # a worker did die...
    assert [o.status for o in report.outcomes] == ["done"] * 3  # ...and its task was retried
    for i, frames in enumerate((6, 9, 12)):
        out = tmp_path / "out" / f"clip{i}.mkv"
        assert times(out) == times(src / f"clip{i}.mkv") and len(times(out)) == frames


def test_a_damaged_file_fails_alone_on_ray(cluster: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "good.mkv", frames=6)
    (src / "bad.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(2000))
    result = CliRunner().invoke(cli, ["batch", str(src), str(tmp_path / "out"), "-s", "2", "-m", str(WEIGHTS),
                                      "--device", "cpu", "--backend", "torch", "--engine", "ray", "-q"])
    assert result.exit_code == 1  # the batch finished; one file failed
    assert "bad.mkv" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == ["good.mkv"]
    assert times(tmp_path / "out" / "good.mkv") == times(src / "good.mkv")  # the good file is whole


def test_long_file_segments_on_ray_equal_the_local_run(cluster: Path, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "long.mp4", frames=72, fps=24, codec="libx264",
                    options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})
    local, distributed = tmp_path / "local.mp4", tmp_path / "ray.mp4"
    upscale_segmented(src, local, config(), segment_seconds=0.5)
    result = upscale_segmented(src, distributed, config(), segment_seconds=0.5, run_segments=ray_segment_runner(config()))
    assert result.frames == 72
    assert times(distributed) == times(local) == times(src)
    with av.open(str(local)) as a, av.open(str(distributed)) as b:
        assert [bytes(p) for p in a.demux(video=0)] == [bytes(p) for p in b.demux(video=0)]  # the same segments


def test_upscale_engine_ray_from_the_cli(cluster: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`streamsr upscale --engine ray`: the segments run as Ray tasks and the output is the local run's."""
    import streamsr.segments

    src = make_clip(tmp_path / "film.mkv", frames=48, fps=24, codec="libx264", subtitle=True,
                    options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})
    local, distributed = tmp_path / "local.mkv", tmp_path / "ray.mkv"
    common = ["-s", "2", "-m", str(WEIGHTS), "--device", "cpu", "--backend", "torch", "--segment-seconds", "0.5", "-q"]
    assert CliRunner().invoke(cli, ["upscale", str(src), "-o", str(local), *common]).exit_code == 0

    def not_here(*_args: object, **_kwargs: object) -> int:
        raise AssertionError("a segment was upscaled in this process, not in a Ray worker")

    monkeypatch.setattr(streamsr.segments, "upscale_segment", not_here)
    result = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(distributed), "--engine", "ray", *common])
    assert result.exit_code == 0, result.output
    assert times(distributed) == times(local) == times(src)
    with av.open(str(local)) as a, av.open(str(distributed)) as b:
        assert [bytes(p) for p in a.demux(video=0)] == [bytes(p) for p in b.demux(video=0)]
        assert len(b.streams.audio) == len(b.streams.subtitles) == 1
    assert not list(tmp_path.glob(".*segments*"))  # the work folders are gone
