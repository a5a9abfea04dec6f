"""`streamsr batch`: mirrored tree, isolation of bad files, resume, settings changes, kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from click.testing import CliRunner
from conftest import make_clip

from streamsr.batch import upscale_many
from streamsr.cli import cli
from streamsr.config import UpscaleConfig
from streamsr.errors import DiskFullError
from streamsr.io.probe import probe


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    (d / "season" / "extras").mkdir(parents=True)
    make_clip(d / "one.mp4", frames=6)
    make_clip(d / "season" / "two.mkv", frames=6, subtitle=True)
    make_clip(d / "season" / "extras" / "three.mp4", frames=6, audio=False)
    (d / "notes.txt").write_text("not a video")
    (d / "season" / "empty.mkv").touch()
    good = (d / "one.mp4").read_bytes()
    (d / "season" / "corrupt.mp4").write_bytes(good[: len(good) // 4])
    return d


def _batch(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["batch", *args])
    return result.exit_code, result.output


def test_batch_mirrors_tree_reports_bad_files_and_resumes(folder: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    args = [str(folder), str(out), "-s", "2", "-m", str(tiny_weights), "--preset", "ultrafast", "-q", "--report", str(report)]
    code, text = _batch(*args)
    assert code == 1, text
    data = json.loads(report.read_text())
    assert (data["done"], data["skipped"], data["failed"], data["ignored"]) == (3, 0, 2, 1)
    failed = {Path(f["src"]).name: f["reason"] for f in data["files"] if f["status"] == "failed"}
    assert set(failed) == {"empty.mkv", "corrupt.mp4"} and "empty" in failed["empty.mkv"]
    for rel in ("one.mp4", "season/two.mkv", "season/extras/three.mp4"):
        src, dst = probe(folder / rel), probe(out / rel)
        assert (dst.width, dst.height) == (2 * src.width, 2 * src.height)
    assert any(s.kind == "subtitle" for s in probe(out / "season/two.mkv").streams)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}

    code, text = _batch(*args)
    data = json.loads(report.read_text())
    assert code == 1 and (data["done"], data["skipped"], data["failed"]) == (0, 3, 2)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == mtimes  # nothing rewritten

    # Changed settings redo the files; a changed input redoes just that one.
    code, _ = _batch(*[a if a != "ultrafast" else "veryfast" for a in args])
    assert json.loads(report.read_text())["done"] == 3
    make_clip(folder / "one.mp4", frames=8)
    code, _ = _batch(*[a if a != "ultrafast" else "veryfast" for a in args])
    data = json.loads(report.read_text())
    assert (data["done"], data["skipped"]) == (1, 2)
    assert sum(1 for _ in __import__("av").open(str(out / "one.mp4")).decode(video=0)) == 8


def test_output_inside_input_is_not_picked_up(folder: Path, tiny_weights: Path) -> None:
    out = folder / "upscaled"
    cfg = UpscaleConfig(scale=2, model=str(tiny_weights), device="cpu", precision="fp32")
    first = upscale_many(folder, out, cfg)
    second = upscale_many(folder, out, cfg)
    assert len(first.by_status("done")) == 3
    assert len(second.by_status("skipped")) == 3 and len(second.outcomes) == len(first.outcomes)


def test_overwrite_redoes_everything(folder: Path, tmp_path: Path, tiny_weights: Path) -> None:
    cfg = UpscaleConfig(scale=2, model=str(tiny_weights), device="cpu", precision="fp32")
    upscale_many(folder, tmp_path / "o", cfg)
    again = upscale_many(folder, tmp_path / "o", UpscaleConfig(**{**cfg.__dict__, "overwrite": True}))
    assert len(again.by_status("done")) == 3


def test_disk_full_stops_the_batch(folder: Path, tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamsr.jobs as jobs_mod

    def full(*_a: object, **_k: object) -> None:
        raise DiskFullError("no space") from OSError(28, "No space left on device")

    monkeypatch.setattr(jobs_mod, "upscale", full)
    cfg = UpscaleConfig(scale=2, model=str(tiny_weights), device="cpu", precision="fp32")
    report = upscale_many(folder, tmp_path / "o", cfg)
    assert report.stopped.startswith("disk full") and not report.ok
    reasons = [o.reason for o in report.by_status("failed")]
    assert sum(r.startswith("not started") for r in reasons) == 2  # the files after the first


def test_killed_run_leaves_no_partial_and_next_run_completes(tmp_path: Path, tiny_weights: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "long.mkv", frames=150, width=96, height=64, audio=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "streamsr", "batch", str(src), str(out), "-s", "2", "-m", str(tiny_weights),
           "--device", "cpu", "--precision", "fp32", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob(".*partial*")):
        time.sleep(0.05)
    assert list(out.glob(".*partial*")), "the run never started writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "long.mkv").exists()  # no half-written file under the finished name
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "long.mkv").is_file() and not list(out.glob(".*partial*"))
    assert sum(1 for _ in __import__("av").open(str(out / "long.mkv")).decode(video=0)) == 150


def test_report_and_output_folder_agree_when_files_fail(tmp_path: Path, tiny_weights: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "a.mkv", frames=6)
    full = make_clip(tmp_path / "long.mkv", frames=48, audio=False)
    cfg = UpscaleConfig(scale=2, model=str(tiny_weights), device="cpu", precision="fp32")
    assert upscale_many(src, out, cfg).ok and (out / "a.mkv").is_file()

    (src / "a.mkv").write_bytes(b"no longer a video")  # the input changed and now fails
    (src / "b.mkv").write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])  # damaged part-way
    report = upscale_many(src, out, cfg)
    failed = {o.src.name: o for o in report.by_status("failed")}
    assert set(failed) == {"a.mkv", "b.mkv"}
    assert "earlier output a.mkv was removed" in failed["a.mkv"].reason and not (out / "a.mkv").exists()
    b = failed["b.mkv"]
    assert b.dst == out / "b.mkv" and b.dst.is_file() and 0 < b.frames < 48
    assert f"{b.frames} frames that decoded were written" in b.reason
    assert len(probe(b.dst).streams) >= 1 and probe(b.dst).width == 128
    entries = json.loads((out / ".streamsr-batch.json").read_text())["files"]
    assert entries == {}  # neither counts as done: a later run tries both again
    again = upscale_many(src, out, cfg)
    assert {o.src.name for o in again.by_status("failed")} == {"a.mkv", "b.mkv"}


def test_image_folders_are_mirrored_and_resumed(tmp_path: Path, tiny_weights: Path) -> None:
    from conftest import pattern
    from PIL import Image

    src, out = tmp_path / "in", tmp_path / "out"
    (src / "stills").mkdir(parents=True)
    Image.fromarray(pattern(20, 16, 0)).save(src / "stills" / "a.png")
    Image.fromarray(pattern(20, 16, 1)).save(src / "b.jpg", quality=95)
    make_clip(src / "c.mkv", frames=4)
    cfg = UpscaleConfig(scale=2, model=str(tiny_weights), device="cpu", precision="fp32")
    report = upscale_many(src, out, cfg)
    assert report.ok and len(report.by_status("done")) == 3
    with Image.open(out / "stills" / "a.png") as a, Image.open(out / "b.jpg") as b:
        assert (a.format, a.size, b.format, b.size) == ("PNG", (40, 32), "JPEG", (40, 32))
    assert probe(out / "c.mkv").width == 128
    again = upscale_many(src, out, cfg)
    assert len(again.by_status("skipped")) == 3


def test_sigterm_stops_a_batch_at_once_and_leaves_no_partial(tmp_path: Path, tiny_weights: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b", "c", "d"):
        make_clip(src / f"{name}.mkv", frames=240, width=128, height=96, audio=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "streamsr", "batch", str(src), str(out), "-s", "2", "-m", str(tiny_weights),
           "--device", "cpu", "--precision", "fp32", "--backend", "torch", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob(".*partial*")):
        time.sleep(0.05)
    assert proc.poll() is None and list(out.glob(".*partial*")), "the batch never started writing"
    started = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in err
    assert time.time() - started < 60
    # The file being upscaled stops too (its partial removed) and none after it starts. A file that
    # finished before the signal arrived stays, and it is whole.
    finished = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert len(finished) < 4, "the batch ran to the end instead of stopping"
    for path in finished:
        with av.open(str(path)) as done:
            assert sum(1 for _ in done.decode(video=0)) == 240
    assert not list(out.glob(".*partial*"))


def test_stale_partials_are_removed_and_nothing_else(tmp_path: Path) -> None:
    """A killed run's temporary files and frame folders go; the user's own dot-files stay."""
    from streamsr.partials import remove_stale_partials, temporary_path

    sub = tmp_path / "sub"
    sub.mkdir()
    stale_file = temporary_path(tmp_path / "a.mp4")
    stale_file.write_bytes(b"x")
    stale_frames = temporary_path(sub / "frames")
    stale_frames.mkdir()
    (stale_frames / "000001.png").write_bytes(b"x")
    kept = [tmp_path / ".notes.partial-draft.txt", tmp_path / "a.mp4", sub / ".b.partial-zz.mkv"]
    for path in kept:
        path.write_bytes(b"mine")
    assert remove_stale_partials(tmp_path) == 1 and stale_frames.exists()
    assert remove_stale_partials(tmp_path, recursive=True) == 1
    assert not stale_file.exists() and not stale_frames.exists() and all(p.read_bytes() == b"mine" for p in kept)


def test_links_that_lead_nowhere_are_reported_as_skipped(tmp_path: Path, tiny_weights: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    make_clip(src / "real.mp4", frames=4)
    (src / "self.mp4").symlink_to("self.mp4")  # a loop
    (src / "gone.mkv").symlink_to("deleted.mkv")
    (src / "sub" / "up").symlink_to("..")  # a folder loop
    (src / "sub" / "alias.mp4").symlink_to(src / "real.mp4")  # a link to a file is an input like any other
    report = tmp_path / "report.json"
    result = CliRunner().invoke(cli, ["batch", str(src), str(tmp_path / "out"), "-m", str(tiny_weights), "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    skipped = {Path(f["src"]).name: f["reason"] for f in data["files"] if f["status"] == "skipped"}
    assert skipped == {"self.mp4": "a symbolic link that loops", "gone.mkv": "a symbolic link to nothing",
                       "up": "a symbolic link to a folder: not followed (it may loop back above itself)"}
    assert data["done"] == 2 and (tmp_path / "out" / "sub" / "alias.mp4").is_file()
    assert "skipped: " in result.output and "self.mp4: a symbolic link that loops" in result.output
