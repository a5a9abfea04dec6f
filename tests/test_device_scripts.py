"""The GPU check scripts (benchmarks/gpu_*), run here the way they run without CUDA.

GPU time is scarce: a script that broke since it last ran (an argument renamed in the package, a
helper's signature changed) wastes it. Each script runs on the CPU at its smallest sizes, and the
lines its report is read by must be there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from streamsr.io.images import write_png

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> str:
    # Shell scripts call `python3`: the interpreter running the tests, as in an activated venv.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PATH": path, **(env or {})})
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


def test_gpu_check_runs_its_cpu_branch(tmp_path: Path) -> None:
    out = run("bash", "benchmarks/gpu_check.sh", env={"PARTS": "forward", "OUT": str(tmp_path)})
    assert "no CUDA here" in out
    assert "Self CPU time total" in out  # the profile table, gpu_forward's last lines
    assert "part-by-part / whole: peak" in out  # fuse_memory's last line
    assert "windowed / global: " in out  # attention_window's last line
