"""Where a training iteration's time goes on a GPU: drawing the batch (CPU), the step in fp32, the
step under bf16 autocast, in milliseconds, for `streamsr train`'s batch and patch, with the x3
recipe's loss (L1 + 0.05 FFT + 2x luma). It says whether a lease's training is held back by the
data sampling or by the GPU. The trainer's EMA update (one foreach lerp) is left out.

    python benchmarks/gpu_train_step.py --data .data/train --model safdn-x3 --batch 64
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from streamsr.models import build_model
from streamsr.train.data import PairBank, find_images
from streamsr.train.losses import PixelFFTLoss


def milliseconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Mean wall time of `fn` over `repeats` calls after three warm-ups, the device synchronised."""
    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/train")
    parser.add_argument("--model", default="safdn-x3")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(args.model).to(device, memory_format=torch.channels_last)
    bank = PairBank(find_images([args.data]), scale=model.scale, patch=args.patch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    loss_fn = PixelFFTLoss(0.05, "l1", 2.0)
    lr, hr = bank.sample(args.batch)
    lr = lr.to(device).contiguous(memory_format=torch.channels_last)
    hr = hr.to(device)

    def step(dtype: torch.dtype | None) -> float:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(lr)
        loss = loss_fn(out.float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()  # the trainer reads the loss every step too

    rows = {
        "sample (CPU)": milliseconds(lambda: bank.sample(args.batch), args.repeats, device),
        "step fp32": milliseconds(lambda: step(None), args.repeats, device),
        "step bf16 autocast": milliseconds(lambda: step(torch.bfloat16), args.repeats, device),
    }
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"{args.model}, batch {args.batch}, LR patch {args.patch}, {name}")
    for what, ms in rows.items():
        print(f"{what:<20}{ms:>9.1f} ms")


if __name__ == "__main__":
    main()
