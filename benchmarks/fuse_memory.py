"""Memory and time of the model's two ways to fuse a concatenation (`safdn.fuse_concatenation`):
whole (concatenate, then one 1x1: the CPU's way) and part by part (a slice of the 1x1 per part,
summed as the parts come: the GPU's way). The upscaler runs one whole frame (untiled, in the
precision and layout it picks for the device), each way in a fresh process, the two alternating.

The peak is the process's peak RSS on the CPU (glibc is told to map every block over 64 KiB on its
own, so a freed tensor leaves the RSS at once) and the allocator's peak on CUDA.

    python benchmarks/fuse_memory.py --model safdn-x2 --size 480x270 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable

import torch

WAYS = ("whole", "part-by-part")


def measure(model: str, width: int, height: int, frames: int, way: str) -> dict[str, float]:
    """One way's seconds for a warm call and peak MiB, in this process (the child's job)."""
    from streamsr.models.archs import safdn
    from streamsr.upscaler import Upscaler

    fuse, calls = safdn.fuse_concatenation, []

    def forced(conv: torch.nn.Conv2d, parts: Iterable[torch.Tensor], **_: bool) -> torch.Tensor:
        calls.append(way)
        return fuse(conv, parts, part_by_part=way == "part-by-part")

    safdn.fuse_concatenation = forced
    cuda = torch.cuda.is_available()
    if not cuda:
        torch.set_num_threads(1)
    upscaler = Upscaler(model, tile=0, batch=frames)
    x = torch.rand(frames, 3, height, width, device=upscaler.device)
    idle = 0 if cuda else current_rss_bytes()  # on CUDA: the allocator's count, read after the warm call
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with torch.inference_mode():
        upscaler(x)  # the first call also builds the kernels (oneDNN's, cuDNN's): time the second
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            idle = torch.cuda.memory_allocated()
        sync()
        start = time.perf_counter()
        upscaler(x)
        sync()
        seconds = time.perf_counter() - start
    if not calls:  # a model that fused some other way would make the two measurements the same one
        raise RuntimeError(f"{model} never called safdn.fuse_concatenation: nothing to compare")
    if cuda:
        peak = torch.cuda.max_memory_allocated() - idle
    else:  # the upscaler's share: the process's peak over what it held before the first call
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - idle
    return {"seconds": seconds, "peak_mib": peak / 2**20}


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="safdn-x2")
    parser.add_argument("--size", default="480x270", help="LR frame, WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=1, help="frames per call")
    parser.add_argument("--runs", type=int, default=3, help="runs of each way, alternating")
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    if args.child:
        print(json.dumps(measure(args.model, width, height, args.frames, args.child)))
        return
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    rows: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    for _ in range(args.runs):
        for way in WAYS:
            command = [sys.executable, __file__, "--child", way, "--model", args.model, "--size", args.size,
                       "--frames", str(args.frames)]
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            rows[way].append(json.loads(out.splitlines()[-1]))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu, 1 thread"
    print(f"{args.model}, {args.frames} frame(s) of {args.size}, {device}: median of {args.runs} runs")
    med = {way: {k: statistics.median(r[k] for r in rows[way]) for k in ("peak_mib", "seconds")} for way in WAYS}
    for way in WAYS:
        print(f"fuse {way:<13} peak {med[way]['peak_mib']:>8.0f} MiB   call {med[way]['seconds']:>7.3f} s")
    whole, parts = med["whole"], med["part-by-part"]

    def ratio(key: str) -> str:
        return f"{parts[key] / whole[key]:.3f}" if whole[key] > 0 else "n/a"

    print(f"part-by-part / whole: peak {ratio('peak_mib')}, time {ratio('seconds')}")


if __name__ == "__main__":
    main()
