"""One training step (forward, L1+FFT loss, backward, Adam) on the CPU, per memory layout and batch
shape, in LR pixels per second: what decides the batch and patch of the CPU recipes.

    taskset -c 1 python benchmarks/train_step.py --model safdn-x4 --threads 1

Pause any training first (`pkill -STOP -f "streamsr train"`); on 2 cores it collapses otherwise.
"""

from __future__ import annotations

import argparse
import time

import torch

from streamsr.models import build_model
from streamsr.train.losses import PixelFFTLoss

SHAPES = ((16, 48), (8, 48), (4, 48), (32, 24))  # (batch, LR patch)


def step_seconds(model_name: str, batch: int, patch: int, channels_last: bool, *, device: str = "cpu",
                 autocast: torch.dtype | None = None, repeats: int = 0) -> float:
    """Seconds per training step on random data, after warm-up (`repeats` 0: about 48 samples' worth)."""
    torch.manual_seed(0)
    model = build_model(model_name)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=layout)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = PixelFFTLoss(0.05)
    s = model.scale
    lr = torch.rand(batch, 3, patch, patch, device=device).contiguous(memory_format=layout)
    hr = torch.rand(batch, 3, patch * s, patch * s, device=device)

    def step() -> None:
        with torch.autocast(torch.device(device).type, dtype=autocast or torch.float32, enabled=autocast is not None):
            out = model(lr)
        loss = loss_fn(out.float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3 if repeats else 1):  # allocator and kernels warm (cuDNN picks its algorithms)
        step()
    n = repeats or max(2, 48 // batch)
    sync()
    start = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="safdn-x4")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.model}, {args.threads} thread(s): ms per step, thousand LR pixels per second")
    for channels_last in (True, False):
        for batch, patch in SHAPES:
            dt = step_seconds(args.model, batch, patch, channels_last)
            layout = "channels_last" if channels_last else "contiguous"
            print(f"  {layout:<13} batch {batch:>2} patch {patch}: {dt * 1000:6.0f} ms  {batch * patch * patch / dt / 1e3:5.1f} K px/s")


if __name__ == "__main__":
    main()
