"""Per-stage speed of the real pipeline: decode, SR, encode, end to end, against a bicubic floor."""

from __future__ import annotations

import copy
import dataclasses
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from .config import UpscaleConfig
from .frames import FrameBatch
from .io.encode import PyAVEncoder
from .io.probe import probe
from .io.pyav import PyAVDecoder
from .models import load_model, measure_complexity
from .run import upscale_file
from .stages import make_upscaler, model_stage
from .upscaler import bicubic_upscale


@dataclass(frozen=True)
class BenchResult:
    model: str
    device: str
    codec: str
    batch: int
    precision: str
    threads: int
    input_size: str
    output_size: str
    frames: int
    decode_fps: float
    sr_fps: float
    sr_ms_per_frame: float
    bicubic_fps: float
    encode_fps: float
    end_to_end_fps: float
    reused_frames: int
    """Frames `--reuse auto` gives the result of the last one upscaled (repeats in the source)."""
    partial_frames: int
    """Frames of which `--reuse auto` upscales only the box that changed."""
    reuse_fps: float
    """The SR stage with `--reuse auto`: frames per second, reused ones included."""
    peak_rss_mb: float
    params: int
    multi_adds_per_frame: int
    achieved_gflops: float
    machine: str
    versions: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_test_clip(path: Path, *, width: int, height: int, frames: int, fps: int = 24, seed: int = 0) -> Path:
    """A clip with texture, edges and motion (x264, with AAC audio) for speed runs."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 4 + 2, width // 4 + 2, 3), dtype=np.uint8)
    big = np.kron(base, np.ones((4, 4, 1), dtype=np.uint8))
    noise = rng.integers(0, 24, big.shape, dtype=np.uint8)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"crf": "20", "preset": "veryfast"}
        a = out.add_stream("aac", rate=48000)
        for i in range(frames):
            img = np.roll(big + noise, shift=(i * 2, i * 3), axis=(0, 1))[:height, :width]
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        out.mux(v.encode(None))
        samples = np.zeros((1, 1024), dtype=np.float32)
        for k in range(int(48000 * frames / fps) // 1024):
            f = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            f.sample_rate, f.pts = 48000, k * 1024
            out.mux(a.encode(f))
        out.mux(a.encode(None))
    return path


def _median_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up: allocator, kernels, caches
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_bench(
    source: Path | None = None,
    *,
    scale: int | None = None,
    size: tuple[int, int] = (320, 180),
    frames: int = 24,
    model: str = "",
    device: str = "auto",
    precision: str = "auto",
    runs: int = 3,
    batch: int = 0,
    backend: str = "auto",
) -> BenchResult:
    """Measure each stage on `source` (or a generated clip of `size`), warm-up excluded."""
    cfg = UpscaleConfig(scale=scale, model=model, device=device, precision=precision, batch=batch, backend=backend)
    up = make_upscaler(cfg)
    scale = up.scale
    with tempfile.TemporaryDirectory(prefix="streamsr-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        src = source or make_test_clip(tmp / "bench.mp4", width=size[0], height=size[1], frames=frames)
        info = probe(src)
        batch = up.batch_for(info.height, info.width)

        def decode_all() -> list[FrameBatch]:
            with PyAVDecoder(src, batch=batch, info=info) as dec:
                return list(dec)

        decoded = decode_all()
        n = sum(len(b) for b in decoded)
        decode_s = _median_seconds(decode_all, runs)
        sr_s = _median_seconds(lambda: [up.upscale_batch(b) for b in decoded], runs)
        upscaled = [up.upscale_batch(b) for b in decoded]
        stages = []  # each timed run starts afresh; the last one's count is reported

        def reuse_all() -> None:
            stages.append(model_stage(up, "auto"))
            list(stages[-1](iter(decoded)))

        reuse_s = _median_seconds(reuse_all, runs)
        reuse = stages[-1]

        def bicubic_all() -> None:
            for b in decoded:
                bicubic_upscale(b.data.float().div(255), scale)

        bic_s = _median_seconds(bicubic_all, runs)

        codec = ""

        def encode_all() -> None:
            nonlocal codec
            with_enc = PyAVEncoder(tmp / "enc.mp4", src, info, scale=scale, config=cfg.encode)
            for b in upscaled:
                with_enc.write(b)
            with_enc.close()
            codec = with_enc.codec

        enc_s = _median_seconds(encode_all, max(1, runs - 1))
        e2e_s = _median_seconds(
            lambda: upscale_file(src, tmp / "e2e.mp4", dataclasses.replace(cfg, overwrite=True), upscaler=up),
            max(1, runs - 1),
        )
    # Count on a CPU fp32 copy of the torch network: the Upscaler's may be fp16 on CUDA, or a graph.
    module = copy.deepcopy(up.model.module).float().cpu() if up.runtime == "torch" else load_model(cfg.model_name).module
    cx = measure_complexity(module, scale=scale, out_width=info.width * scale, out_height=info.height * scale)
    sr_fps = n / sr_s
    return BenchResult(
        model=up.model.name, device=str(up.device), codec=codec, batch=batch, precision=f"{up.runtime} {up.precision_name}", threads=torch.get_num_threads(),
        input_size=f"{info.width}x{info.height}", output_size=f"{info.width * scale}x{info.height * scale}", frames=n,
        decode_fps=n / decode_s, sr_fps=sr_fps, sr_ms_per_frame=1000 / sr_fps, bicubic_fps=n / bic_s,
        encode_fps=n / enc_s, end_to_end_fps=n / e2e_s, reused_frames=reuse.count.reused,
        partial_frames=reuse.count.partial, reuse_fps=n / reuse_s,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        params=cx.params, multi_adds_per_frame=cx.multi_adds, achieved_gflops=2 * cx.multi_adds * sr_fps / 1e9,
        machine=f"{platform.machine()} {platform.processor() or ''} {torch.backends.cpu.get_cpu_capability()} x{torch.get_num_threads()}".strip(),
        versions=f"torch {torch.__version__}, av {av.__version__}, python {platform.python_version()}",
    )


