"""Where a training iteration's time goes on a GPU: drawing the batch from the training images
(CPU), and the step (`train_step.step_seconds`: forward, L1 + FFT loss, backward, Adam) in fp32 and
under bf16 autocast, in milliseconds. It says whether a lease's training is held back by the data
sampling or by the GPU. The trainer's EMA update (one foreach lerp) is left out.

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
    bank = PairBank(find_images([args.data]), scale=CATALOG[args.model].scale, patch=args.patch)
    bank.sample(args.batch)
    start = time.perf_counter()
    for _ in range(args.repeats):
        bank.sample(args.batch)
    rows = {"sample (CPU)": (time.perf_counter() - start) / args.repeats}
    for name, dtype in (("step fp32", None), ("step bf16 autocast", torch.bfloat16)):
        rows[name] = step_seconds(args.model, args.batch, args.patch, True, device=device, autocast=dtype, repeats=args.repeats)
    print(f"{args.model}, batch {args.batch}, LR patch {args.patch}, {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}")
    for what, seconds in rows.items():
        print(f"{what:<20}{seconds * 1000:>9.1f} ms")


if __name__ == "__main__":
    main()
