"""The scripts a device lease runs (benchmarks/gpu_*), run here the way they run without CUDA.

A lease is a few minutes of a GPU, a few times a year: a script that broke since the last one (an
argument renamed in the package, a helper's signature changed) wastes it. Each script runs on the
CPU at its smallest sizes, and the lines a lease is read by must be there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from streamsr.io.images import read_image, write_png

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def noise_png(path: Path, width: int, height: int, seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    write_png(torch.from_numpy(rgb).permute(2, 0, 1), path)


def test_gpu_bench_smoke_writes_every_stage(tmp_path: Path) -> None:
    run(sys.executable, "benchmarks/gpu_bench.py", "--smoke", "--json", str(tmp_path / "bench.json"))
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [r["case"] for r in rows] == ["x2-smoke", "x4-smoke"]
    for row in rows:
        for stage in ("decode_pyav_fps", "sr_fp32_serial_fps", "sr_fp32_overlap_fps", "encode_fps", "end_to_end_fps"):
            assert row[stage] > 0, stage


def test_gpu_forward_times_layouts_and_the_sliced_gram() -> None:
    out = run(sys.executable, "benchmarks/gpu_forward.py", "--frames", "1", "--size", "40x24")
    for line in ("forward float32   contiguous_format", "forward float32   channels_last", "gram 24x24 over 960 pixels"):
        assert line in out


def test_fuse_memory_measures_both_ways() -> None:
    out = run(sys.executable, "benchmarks/fuse_memory.py", "--size", "40x24", "--runs", "1")
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("fuse ")}
    assert set(rows) == {"whole", "part-by-part"}
    assert "part-by-part / whole: peak" in out


def test_attention_window_times_both_ways() -> None:
    out = run(sys.executable, "benchmarks/attention_window.py", "--size", "120x72", "--rounds", "1")
    rows = {line.split()[0] for line in out.splitlines() if " median " in line}
    assert rows == {"global", "windowed"}
    assert "windowed / global: " in out and "window 48, 120x72" in out


def test_gpu_train_step_times_the_trainer_step(tmp_path: Path) -> None:
    for i in range(2):
        noise_png(tmp_path / f"{i}.png", 64, 48, i)
    out = run(sys.executable, "benchmarks/gpu_train_step.py", "--data", str(tmp_path), "--model", "safdn-x2",
              "--batch", "2", "--patch", "16", "--repeats", "1")
    for line in ("sample (CPU)", "step fp32, channels-last", "step fp32, contiguous", "step bf16 autocast, channels-last"):
        assert line in out


def test_gpu_train_data_keeps_every_image_within_the_budget(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "packed"
    for folder in ("bench/Set5", "bench/Set14", "train/big", "train/small"):
        (src / folder).mkdir(parents=True)
    noise_png(src / "bench/Set5/a.png", 24, 24, 0)
    noise_png(src / "bench/Set14/b.png", 24, 24, 1)
    for i in range(3):
        noise_png(src / f"train/big/{i}.png", 320, 256, 2 + i)  # noise: PNG and WebP barely shrink it
    noise_png(src / "train/small/tiny.png", 96, 80, 9)  # too small to cut for x4 crops: goes whole
    whole = sum(p.stat().st_size for p in (src / "train").rglob("*.png"))
    budget_mb = 0.6 * whole / 2**20
    run("bash", "benchmarks/gpu_train_data.sh", env={"SRC": str(src), "DEST": str(dest), "BUDGET_MB": f"{budget_mb:.4f}"})
    packed = sorted(p.relative_to(dest / "train").as_posix() for p in (dest / "train").rglob("*.*"))
    assert packed == ["big/0.webp", "big/1.webp", "big/2.webp", "small/tiny.png"]
    assert sum(p.stat().st_size for p in (dest / "train").rglob("*.*")) <= budget_mb * 2**20
    assert (dest / "Set5/a.png").is_file() and (dest / "Set14/b.png").is_file()
    # A cut image is a window of its source, pixel for pixel (lossless), smaller than the whole.
    cut, source = read_image(dest / "train/big/0.webp"), read_image(src / "train/big/0.png")
    h, w = cut.shape[1:]
    assert (h, w) < tuple(source.shape[1:]) and min(h, w) >= 192
    rows, cols = source.shape[1] - h + 1, source.shape[2] - w + 1
    starts = [(y, x) for y in range(rows) for x in range(cols) if source[:, y, x : x + 8].equal(cut[:, 0, :8])]
    assert any(source[:, y : y + h, x : x + w].equal(cut) for y, x in starts)
    assert read_image(dest / "train/small/tiny.png").equal(read_image(src / "train/small/tiny.png"))


def test_gpu_check_runs_its_cpu_branch(tmp_path: Path) -> None:
    out = run("bash", "benchmarks/gpu_check.sh", env={"PARTS": "forward", "OUT": str(tmp_path)})
    assert "no CUDA here" in out
    assert "Self CPU time total" in out  # the profile table, gpu_forward's last lines
    assert "part-by-part / whole: peak" in out  # fuse_memory's last line
    assert "windowed / global: " in out  # attention_window's last line


def test_gpu_train_sh_parses() -> None:
    # It trains from .data/ in the repository, which a test does not pack; its Python side is
    # `streamsr train`, tested in test_train_smoke.py.
    run("bash", "-n", "benchmarks/gpu_train.sh")
