"""Decode speed and agreement: PyAV against DALI (NVDEC where CUDA is present, else DALI's CPU
decoder) on the same files, side by side in one run.

    python benchmarks/decode.py VIDEO [VIDEO ...] [--batch 8] [--frames 240]

Prints, per file, frames per second for each decoder and the mean and 99th-percentile absolute
difference of DALI's RGB frames from PyAV's (code values), over the first --frames frames.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from streamsr.errors import BackendUnavailableError
from streamsr.io import Decoder, probe
from streamsr.io.pyav import PyAVDecoder


def first_frames(decoder: Decoder, limit: int) -> tuple[torch.Tensor, float]:
    """The first `limit` frames (on the CPU) and the seconds it took to decode them."""
    start, kept, n = time.perf_counter(), [], 0
    for batch in decoder:
        kept.append(batch.data)
        n += len(batch)
        if n >= limit:
            break
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return torch.cat([t.cpu() for t in kept])[:limit], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=240)
    args = parser.parse_args()
    from streamsr.io.dali import DALIDecoder, default_dali_device

    device = default_dali_device()
    print(f"| file | codec, size | PyAV fps | DALI ({device}) fps | DALI/PyAV | mean abs diff | p99 abs diff |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for path in args.videos:
        info = probe(path)
        with PyAVDecoder(path, batch=args.batch, info=info) as d:
            reference, pyav_s = first_frames(d, args.frames)
        n = len(reference)
        try:
            with DALIDecoder(path, batch=args.batch, info=info) as d:
                frames, dali_s = first_frames(d, args.frames)
        except BackendUnavailableError as e:
            print(f"| {path.name} | {info.codec}, {info.width}x{info.height} | {n / pyav_s:.1f} | n/a: {e} | | | |")
            continue
        diff = (frames[:n].float() - reference.float()).abs()
        p99 = torch.quantile(diff.flatten()[:: max(1, diff.numel() // 5_000_000)], 0.99)
        print(f"| {path.name} | {info.codec}, {info.width}x{info.height} | {n / pyav_s:.1f} | {len(frames) / dali_s:.1f} "
              f"| {pyav_s / dali_s * len(frames) / n:.2f}x | {diff.mean():.2f} | {p99:.0f} |")


if __name__ == "__main__":
    main()
