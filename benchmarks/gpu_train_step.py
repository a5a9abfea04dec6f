"""Where a training iteration's time goes on a GPU: drawing the batch from the training images
(CPU), then the step (`train_step.step_seconds`: forward, L1 + FFT loss, backward, Adam) in fp32
channels-last (what `streamsr train` runs), in fp32 contiguous, and under bf16 autocast, in
milliseconds. The trainer's EMA update (one foreach lerp) is left out. On the H200 the three steps
took 58.6, 59.0 and 79.1 ms at batch 64 (docs/benchmarks.md), and `torch.compile` 59.6 ms.

    python benchmarks/gpu_train_step.py --data .data/train --model safdn-x3 --batch 64
"""

from __future__ import annotations

import argparse
import time

import torch
from train_step import step_seconds

from streamsr.models import CATALOG
from streamsr.train.data import PairBank, find_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/train")
    parser.add_argument("--model", default="safdn-x3")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"{args.model}, batch {args.batch}, LR patch {args.patch}, {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}",
          flush=True)
    bank = PairBank(find_images([args.data]), scale=CATALOG[args.model].scale, patch=args.patch)
    bank.sample(args.batch)
    start = time.perf_counter()
    for _ in range(args.repeats):
        bank.sample(args.batch)
    print(f"{'sample (CPU)':<32}{(time.perf_counter() - start) / args.repeats * 1000:>9.1f} ms", flush=True)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # as the trainer sets it
    for channels_last, dtype in ((True, None), (False, None), (True, torch.bfloat16)):
        start = time.perf_counter()
        seconds = step_seconds(args.model, args.batch, args.patch, channels_last, device=device, autocast=dtype, repeats=args.repeats)
        label = f"{'bf16 autocast' if dtype else 'fp32'}, {'channels-last' if channels_last else 'contiguous'}"
        print(f"step {label:<27}{seconds * 1000:>9.1f} ms   ({time.perf_counter() - start:.0f} s with warm-up)", flush=True)


if __name__ == "__main__":
    main()
