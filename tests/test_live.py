"""`streamsr live` with --source: headless loop, dropping stale frames, recording, and the window under Xvfb."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_clip

from streamsr.cli import cli
from streamsr.live import HeadlessSink, run_live
from streamsr.upscaler import Upscaler


@pytest.fixture(scope="module")
def live_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 4 s at 24 fps, paced in real time: tests that stop after 8 to 12 shown frames still reach them
    # when a loaded machine drops most frames (48 frames ran out once with two test runs at once).
    return make_clip(tmp_path_factory.mktemp("live") / "cam.mp4", width=64, height=48, frames=96, fps=24)


def test_headless_loop_shows_upscaled_frames(live_clip: Path, tiny_weights: Path) -> None:
    sink = HeadlessSink()
    up = Upscaler(str(tiny_weights), device="cpu", precision="fp32")
    stats = run_live(str(live_clip), upscaler=up, sink=sink, max_frames=10)
    assert stats.shown == 10 and sink.last is not None and sink.last.shape == (96, 128, 3)
    assert stats.size_out == "128x96" and stats.capture_fps > 0


class SlowUpscaler(Upscaler):
    """The model made artificially slow: 150 ms a frame against a 24 fps source."""

    def __call__(self, x):  # noqa: ANN001, ANN204
        time.sleep(0.15)
        return super().__call__(x)


def test_stale_frames_are_dropped_and_latency_stays_bounded(live_clip: Path, tiny_weights: Path) -> None:
    up = SlowUpscaler(str(tiny_weights), device="cpu", precision="fp32")
    stats = run_live(str(live_clip), upscaler=up, sink=HeadlessSink())
    assert stats.dropped > 0 and stats.shown < stats.captured
    assert stats.shown + stats.dropped == stats.captured
    # Never more than one frame waits: latency is about two model calls (the one in flight, then the
    # frame's own), not a growing queue, which here would reach seconds (dozens of frames behind).
    # The bound is in model calls, each at least the injected 150 ms, so no machine is too slow for it.
    assert stats.model_ms >= 150 and stats.max_latency_ms < 4 * stats.model_ms


def test_record_writes_a_valid_file(live_clip: Path, tiny_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    up = Upscaler(str(tiny_weights), device="cpu", precision="fp32")
    stats = run_live(str(live_clip), upscaler=up, max_frames=12, record=out)
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == stats.shown == 12 and frames[0].width == 128
    times = [f.time for f in frames]
    assert times == sorted(times)


def test_cli_headless_prints_figures(live_clip: Path, tiny_weights: Path) -> None:
    result = CliRunner().invoke(cli, ["live", "--source", str(live_clip), "--no-window", "--frames", "5", "-m", str(tiny_weights), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "shown" in result.output and "dropped" in result.output and "64x48->128x96" in result.output


def test_missing_camera_is_a_clear_error(tiny_weights: Path) -> None:
    result = CliRunner().invoke(cli, ["live", "--camera", "/dev/video-none", "--no-window", "-m", str(tiny_weights)])
    assert result.exit_code == 2 and "cannot open camera" in result.output


@pytest.fixture()
def xvfb(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb)")
    pytest.importorskip("pygame")
    # -displayfd: Xvfb picks a free display itself and writes its number once it accepts clients, so
    # the test neither guesses how long start-up takes nor clashes with another run's display.
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    reply, deadline = b"", time.monotonic() + 20
    try:
        # Read up to the newline: Xvfb writes the number and the newline separately, and dies
        # ("Cannot write display number") if the pipe is closed between the two writes.
        while not reply.endswith(b"\n") and select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(read_end, 16)
            if not chunk:
                break
            reply += chunk
    finally:
        os.close(read_end)
    number = reply.decode().strip()
    if not number.isdigit():
        proc.kill()
        proc.wait()
        pytest.fail(f"Xvfb did not report a display within 20 s (exit code {proc.returncode})")
    display = f":{number}"
    monkeypatch.setenv("DISPLAY", display)
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    yield display
    proc.terminate()
    proc.wait()


def test_window_under_virtual_display(xvfb: str, live_clip: Path, tiny_weights: Path, tmp_path: Path) -> None:
    import pygame

    from streamsr.preview import PygameSink

    class ShotSink(PygameSink):
        def show(self, lr, sr, stats):  # noqa: ANN001, ANN201
            command = super().show(lr, sr, stats)
            if stats.shown == 6:
                self.screenshot(str(tmp_path / "shot.png"))
            return command

    up = Upscaler(str(tiny_weights), device="cpu", precision="fp32")
    stats = run_live(str(live_clip), upscaler=up, sink=ShotSink(), max_frames=8)
    assert stats.shown == 8
    shot = pygame.surfarray.array3d(pygame.image.load(str(tmp_path / "shot.png")))
    assert shot.shape[:2] == (128, 96)  # (width, height): the x2 frame fills the window
    assert shot.std() > 10 and len(np.unique(shot.reshape(-1, 3), axis=0)) > 50  # a picture, not a blank


def test_split_view_puts_bicubic_left_of_the_divider(xvfb: str) -> None:
    from streamsr.live import bicubic_image
    from streamsr.preview import PygameSink

    sink = PygameSink()
    try:
        lr = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
        sr = np.zeros((48, 64, 3), dtype=np.uint8)
        sink.divider = 0.25
        view = sink.compose(lr, sr)
        assert np.array_equal(view[:, :15], bicubic_image(lr, 2)[:, :15]) and not view[:, 17:].any()
        sink.mode = "side"
        assert sink.compose(lr, sr).shape == (48, 128, 3)
        sink.mode = "sr"
        assert sink.compose(lr, sr) is sr
    finally:
        sink.close()


def test_live_picks_a_model_that_keeps_up_on_the_device() -> None:
    from streamsr.live import live_model

    assert live_model(2, "cpu") == "safdn-tiny-x2" and live_model(4, "cpu") == "safdn-tiny-x4"
    assert live_model(4, "cuda") == "safdn-x4"
