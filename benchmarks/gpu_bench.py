"""GPU benchmark for the device check: decode (DALI vs PyAV), SR stage (fp32 vs fp16, overlap on
vs off, CUDA graphs on vs off, batch chosen from free memory), encode (`--codec auto`: NVENC
where the card has it), end to end and GPU memory peak, on generated clips. Prints one table last.

    python benchmarks/gpu_bench.py --json out.json          # on a CUDA machine
    python benchmarks/gpu_bench.py --smoke                  # tiny, CPU: checks the script itself
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from streamsr.bench import make_test_clip
from streamsr.config import UpscaleConfig
from streamsr.io.codecs import EncodeConfig
from streamsr.io.encode import PyAVEncoder
from streamsr.io.probe import probe
from streamsr.io.pyav import PyAVDecoder
from streamsr.run import upscale_file
from streamsr.upscaler import Upscaler


def timed(fn: Callable[[], int], runs: int = 2) -> float:
    """Frames per second of `fn` (which returns its frame count), median of `runs` after a warm-up."""
    fn()
    rates = []
    for _ in range(runs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        n = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


class Row(dict):
    """A case's results; each one is printed (stderr) as it is measured, so a run stopped by a
    timeout still shows which stage it reached and what the stages before it gave."""

    def __setitem__(self, key: str, value: object) -> None:
        super().__setitem__(key, value)
        shown = f"{value:.1f}" if isinstance(value, float) else value
        print(f"  {self['case']} {key}: {shown}", file=sys.stderr, flush=True)


def case(name: str, scale: int, size: tuple[int, int], frames: int, tmp: Path, device: str, batch: int, codec: str) -> dict[str, object]:
    clip = make_test_clip(tmp / f"{name}.mp4", width=size[0], height=size[1], frames=frames)
    info = probe(clip)
    row = Row(case=name, **{"in": f"{size[0]}x{size[1]}", "out": f"{size[0] * scale}x{size[1] * scale}"})

    def decode_pyav() -> int:
        with PyAVDecoder(clip, batch=batch, info=info) as d:
            return sum(len(b) for b in d)

    row["decode_pyav_fps"] = timed(decode_pyav)
    if device == "cuda":
        try:
            from streamsr.io.dali import DALIDecoder

            def decode_dali() -> int:
                with DALIDecoder(clip, batch=batch, info=info) as d:
                    return sum(len(b) for b in d)

            row["decode_dali_fps"] = timed(decode_dali)
        except Exception as e:  # report, do not abort the table
            row["decode_dali_fps"] = f"n/a: {e}"
    with PyAVDecoder(clip, batch=batch, info=info) as d:
        decoded = list(d)
    n = sum(len(b) for b in decoded)
    precisions = ["fp32", "fp16"] if device == "cuda" else ["fp32"]
    for precision in precisions:
        for overlap in (False, True):
            up = Upscaler(f"safdn-x{scale}", device=device, precision=precision, batch=batch, stream_overlap=overlap)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            row[f"sr_{precision}_{'overlap' if overlap else 'serial'}_fps"] = timed(lambda up=up: sum(len(b) for b in up.stream(iter(decoded))))
            if device == "cuda":
                row[f"gpu_peak_mb_{precision}"] = torch.cuda.max_memory_allocated() / 2**20
    if device == "cuda":
        graphed = Upscaler(f"safdn-x{scale}", device=device, precision="fp16", batch=batch, cuda_graphs=True)
        row["sr_fp16_overlap_graphs_fps"] = timed(lambda: sum(len(b) for b in graphed.stream(iter(decoded))))
        auto = Upscaler(f"safdn-x{scale}", device=device, precision="fp16", batch=0)
        row["auto_batch"] = auto.batch_for(size[1], size[0])
    # The price of --self-ensemble (eight model runs a frame), beside the plain rows of that precision.
    ensemble = Upscaler(f"safdn-x{scale}", device=device, precision=precisions[-1], batch=batch, self_ensemble=True)
    row[f"sr_{precisions[-1]}_self_ensemble_fps"] = timed(lambda: sum(len(b) for b in ensemble.stream(iter(decoded))))
    up = Upscaler(f"safdn-x{scale}", device=device, precision=precisions[-1], batch=batch)
    upscaled = list(up.stream(iter(decoded)))
    # x264 names map onto NVENC's p-presets when auto picks NVENC (veryfast -> p2).
    enc_cfg = EncodeConfig(codec=codec, preset="veryfast", crf=20)

    def encode() -> int:
        e = PyAVEncoder(tmp / f"{name}-enc.mp4", clip, info, scale=scale, config=enc_cfg)
        for b in upscaled:
            e.write(b)
        e.close()
        if "encoder" not in row:  # encode() runs twice (warm-up, then timed)
            row["encoder"] = e.codec
        return n

    row["encode_fps"] = timed(encode, runs=1)
    cfg = UpscaleConfig(scale=scale, device=device, precision=precisions[-1], batch=batch, encode=enc_cfg, overwrite=True)
    row["end_to_end_fps"] = timed(lambda: upscale_file(clip, tmp / f"{name}-e2e.mp4", cfg, upscaler=up).frames, runs=1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (checks the script)")
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--codec", default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    cases = [("x4-540p", 4, (960, 540)), ("x2-1080p", 2, (1920, 1080))]  # the smaller first: a timeout keeps it
    frames = args.frames
    if args.smoke:
        cases, frames = [("x2-smoke", 2, (64, 36)), ("x4-smoke", 4, (48, 32))], 4
    with tempfile.TemporaryDirectory() as tmp:
        rows = [case(name, s, size, frames, Path(tmp), device, args.batch, args.codec) for name, s, size in cases]
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "rows": rows}, indent=2))
    keys = sorted({k for r in rows for k in r if k not in ("case", "in", "out")})
    print(f"\n{'metric':<28}" + "".join(f"{r['case'] + ' ' + r['in'] + '->' + r['out']:>34}" for r in rows))
    for k in keys:
        cells = "".join(f"{(f'{r[k]:.1f}' if isinstance(r.get(k), float) else str(r.get(k, '-'))):>34}" for r in rows)
        print(f"{k:<28}{cells}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
