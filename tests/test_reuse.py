"""Frame reuse: repeats of the last upscaled frame get its result again, at their own pts; fades,
pans and motion never do."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_clip, pattern

from streamsr import upscale
from streamsr.cli import cli
from streamsr.config import UpscaleConfig
from streamsr.frames import FrameBatch
from streamsr.stages.reuse import Reuse, is_repeat


class Doubler:
    """A stand-in model stage: nearest x2 plus one code value, and a record of what it was given."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
        for batch in batches:
            self.seen.extend(batch.data)
            up = batch.data.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3) + 1
            yield replace(batch, data=up)


def frames_batches(frames: list[torch.Tensor], sizes: list[int]) -> list[FrameBatch]:
    out, start = [], 0
    for n in sizes:
        data = torch.stack(frames[start:start + n])
        out.append(FrameBatch(data=data, pts=torch.arange(start, start + n) * 10 + 7, time_base=Fraction(1, 100),
                              index_start=start))
        start += n
    return out


def test_the_model_sees_only_fresh_frames_and_every_frame_comes_out_at_its_pts() -> None:
    a, b, c = (torch.from_numpy(pattern(16, 8, i)).permute(2, 0, 1).contiguous() for i in (0, 5, 9))
    # Repeats inside batches, across batch boundaries, and a batch of nothing but repeats.
    frames = [a, a, a, b, b, b, b, c, a, a]
    anchors = [0, 0, 0, 3, 3, 3, 3, 7, 8, 8]
    model = Doubler()
    stage = Reuse(model, "exact")
    out = list(stage(iter(frames_batches(frames, [2, 2, 3, 1, 2]))))
    assert [len(o) for o in out] == [2, 2, 3, 1, 2]  # batches keep their shape
    assert torch.cat([o.pts for o in out]).tolist() == [i * 10 + 7 for i in range(10)]
    assert [o.index_start for o in out] == [0, 2, 4, 7, 8]
    data = torch.cat([o.data for o in out])
    for i, anchor in enumerate(anchors):
        want = frames[anchor].repeat_interleave(2, dim=1).repeat_interleave(2, dim=2) + 1
        assert torch.equal(data[i], want)
    assert len(model.seen) == 4 and (stage.count.upscaled, stage.count.reused) == (4, 6)


def test_a_frame_that_changed_in_part_gets_only_its_changed_box_upscaled() -> None:
    def doubled(crop: torch.Tensor) -> torch.Tensor:  # what Doubler does, on a crop
        return crop.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2) + 1

    background = torch.from_numpy(pattern(192, 128, 0)).permute(2, 0, 1).contiguous()
    frames = []
    for i in range(6):  # a 12 px square moving over a still background
        f = background.clone()
        f[:, 20:32, 10 + 6 * i: 22 + 6 * i] = 250
        frames.append(f)
    model = Doubler()
    stage = Reuse(model, "auto", region=doubled)
    out = torch.cat([o.data for o in stage(iter(frames_batches(frames, [1, 2, 3])))])
    for got, frame in zip(out, frames, strict=True):  # nearest x2 is local: the composite is exact
        assert torch.equal(got, doubled(frame))
    assert len(model.seen) == 1 and (stage.count.upscaled, stage.count.partial, stage.count.reused) == (1, 5, 0)


def test_off_runs_every_frame() -> None:
    a = torch.zeros(3, 8, 8, dtype=torch.uint8)
    model = Doubler()
    stage = Reuse(model, "off")
    out = list(stage(iter(frames_batches([a] * 4, [1, 1, 1, 1]))))
    assert len(model.seen) == 4 and len(out) == 4 and stage.count.reused == 0


def still(width: int, height: int, index: int) -> np.ndarray:
    return pattern(width, height, 3)


def on_twos(width: int, height: int, index: int) -> np.ndarray:
    """Drawn on twos: frames 0-1 alike, 2-3 alike..."""
    return pattern(width, height, index // 2 * 4)


def fading(width: int, height: int, index: int) -> np.ndarray:
    return (pattern(width, height, 3).astype(np.float32) * (1 - index / 60)).round().astype(np.uint8)


def panning(width: int, height: int, index: int) -> np.ndarray:
    """The pattern moved a third of a pixel each frame (resampled, as a slow camera pan is)."""
    big = pattern(width * 3 + 30, height, 0).repeat(3, axis=0)
    window = big[:, index: index + width * 3]
    return window.reshape(height, 3, width, 3, 3).mean(axis=(1, 3)).round().astype(np.uint8)


def frames_in(folder: Path) -> list[np.ndarray]:
    return [np.asarray(av.open(str(p)).decode(video=0).__next__().to_ndarray(format="rgb24"))
            for p in sorted(folder.glob("*.png"))]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


@pytest.fixture
def cfg(net_weights: Path) -> UpscaleConfig:
    return UpscaleConfig(model=str(net_weights), device="cpu", precision="fp32", backend="torch")


def test_exact_reuses_bit_identical_repeats_and_changes_no_pixel(cfg: UpscaleConfig, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "twos.mkv", width=48, height=32, frames=12, codec="ffv1", pix_fmt="bgr0",
                    painter=on_twos, audio=False)
    fresh = upscale(src, tmp_path / "off", replace(cfg, reuse="off"), frames_format="png")
    reused = upscale(src, tmp_path / "exact", replace(cfg, reuse="exact"), frames_format="png")
    assert (fresh.reused, reused.reused, reused.frames) == (0, 6, 12)
    for a, b in zip(frames_in(tmp_path / "off"), frames_in(tmp_path / "exact"), strict=True):
        assert np.array_equal(a, b)
    assert (tmp_path / "off" / "timestamps.txt").read_text() == (tmp_path / "exact" / "timestamps.txt").read_text()


def noisy_twos(width: int, height: int, index: int) -> np.ndarray:
    """On twos, with a camera's noise: no two frames are bit-identical, every other one is a repeat."""
    noise = np.random.default_rng(index).normal(0, 1.0, (height, width, 3))
    return np.clip(on_twos(width, height, index) + noise, 0, 255).round().astype(np.uint8)


def test_auto_reuses_repeats_under_noise_invisibly(cfg: UpscaleConfig, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "twos.mp4", width=96, height=64, frames=16, codec="libx264", painter=noisy_twos,
                    options={"crf": "18", "preset": "medium"}, audio=False)
    fresh = upscale(src, tmp_path / "off", replace(cfg, reuse="off"), frames_format="png")
    exact = upscale(src, tmp_path / "exact", replace(cfg, reuse="exact"), frames_format="png")
    auto = upscale(src, tmp_path / "auto", replace(cfg, reuse="auto"), frames_format="png")
    assert fresh.reused == 0
    assert auto.reused + auto.partial > exact.reused  # x264 keeps part of the noise: few repeats are bit-exact
    assert auto.reused + auto.partial >= 6
    for a, b in zip(frames_in(tmp_path / "off"), frames_in(tmp_path / "auto"), strict=True):
        assert psnr(a, b) >= 45


@pytest.mark.parametrize("painter", [fading, panning], ids=["fade", "pan"])
def test_auto_never_reuses_across_a_fade_or_a_slow_pan(painter, cfg: UpscaleConfig, tmp_path: Path) -> None:  # noqa: ANN001
    src = make_clip(tmp_path / "moving.mp4", width=96, height=64, frames=16, codec="libx264", painter=painter,
                    options={"crf": "23", "preset": "medium"}, audio=False)
    assert upscale(src, tmp_path / "auto.mp4", cfg).reused == 0


def test_a_still_clip_is_upscaled_once_and_the_summary_says_so(tiny_weights: Path, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "still.mp4", width=64, height=48, frames=10, codec="libx264", painter=still,
                    options={"crf": "18"})
    out = tmp_path / "o.mp4"
    run = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(out), "-m", str(tiny_weights), "--device", "cpu"])
    assert run.exit_code == 0, run.output
    assert "10 frames (9 reused)" in run.output
    with av.open(str(out)) as c:
        assert len(list(c.decode(video=0))) == 10 and c.streams.audio


def presenting(width: int, height: int, index: int) -> np.ndarray:
    """A small picture moving over a still background: most of each frame holds still."""
    a = pattern(width, height, 0)
    a[20:36, 8 + 4 * index: 24 + 4 * index] = pattern(16, 16, 7)
    return a


def test_still_regions_are_reused_and_the_seams_do_not_show(cfg: UpscaleConfig, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "presenter.mp4", width=256, height=160, frames=8, codec="libx264", painter=presenting,
                    options={"crf": "23"}, audio=False)
    fresh = upscale(src, tmp_path / "off", replace(cfg, reuse="off"), frames_format="png")
    auto = upscale(src, tmp_path / "auto", cfg, frames_format="png")
    assert fresh.partial == 0 and auto.partial >= 5
    for a, b in zip(frames_in(tmp_path / "off"), frames_in(tmp_path / "auto"), strict=True):
        assert psnr(a, b) >= 45


def test_is_repeat_reads_ten_bit_frames_in_eight_bit_steps() -> None:
    def frame(value: int) -> torch.Tensor:
        return torch.full((3, 32, 32), value, dtype=torch.int32).to(torch.uint16)

    assert is_repeat(frame(40000), frame(40000), "exact")
    assert not is_repeat(frame(40001), frame(40000), "exact")
    assert is_repeat(frame(40000 + 257 // 4), frame(40000), "auto")  # a quarter of an 8-bit step
    assert not is_repeat(frame(40000 + 257 * 4), frame(40000), "auto")  # four steps: a fade
