"""The model's forward on a GPU, alone: milliseconds per batch of frames in each memory layout and
precision, the attention's Gram product sliced (as the model runs it on CUDA) against one plain
product, and the CUDA kernels that take the most time. What the video benchmark's SR rows are
made of, in seconds rather than minutes.

    python benchmarks/gpu_forward.py --model safdn-x3 --frames 4 --size 480x270
    python benchmarks/gpu_forward.py --frames 1 --size 64x36          # no CUDA: checks the script
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from streamsr.models import load_model
from streamsr.models.archs.safdn import gram


def median_ms(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median milliseconds of `fn`, after three warm-up calls (the GPU synchronised around each)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="safdn-x3")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", default="480x270", help="LR frame, WIDTHxHEIGHT")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    width, height = (int(n) for n in args.size.split("x"))
    module = load_model(args.model).module.eval().to(device)
    module.use_sliced_sums(device == "cuda")  # as the engine runs it
    print(f"{args.model}, {args.frames} frames of {width}x{height}, {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}")
    half = torch.float16 if device == "cuda" else torch.bfloat16
    with torch.no_grad():
        for layout in (torch.contiguous_format, torch.channels_last):
            for dtype in (torch.float32, half):
                model = module.to(dtype=dtype, memory_format=layout)
                x = torch.rand(args.frames, 3, height, width, device=device, dtype=dtype).contiguous(memory_format=layout)
                ms = median_ms(lambda model=model, x=x: model(x))
                print(f"forward {str(dtype).removeprefix('torch.'):<9} {str(layout).removeprefix('torch.'):<18}{ms:>9.1f} ms", flush=True)
        hp = module.hparams
        d = int(hp["feat"]) // int(hp["compress"]) // int(hp["heads"])
        q = torch.rand(args.frames, int(hp["heads"]), d, height * width, device=device)
        print(f"gram {d}x{d} over {height * width} pixels: sliced {median_ms(lambda: gram(q, q)):.3f} ms, "
              f"plain {median_ms(lambda: q @ q.transpose(-2, -1)):.3f} ms")
        model = module.to(dtype=half, memory_format=torch.contiguous_format)
        x = torch.rand(args.frames, 3, height, width, device=device, dtype=half)
        with profile(activities=[ProfilerActivity.CUDA if device == "cuda" else ProfilerActivity.CPU]) as prof:
            model(x)
            if device == "cuda":
                torch.cuda.synchronize()
    sort = "cuda_time_total" if device == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=12, max_name_column_width=60))


if __name__ == "__main__":
    main()
