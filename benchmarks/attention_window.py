"""The price of the windowed attention: the engine's speed with global and windowed statistics.

    python benchmarks/attention_window.py --model safdn-x2 --size 480x270 --rounds 3

SAFDN gathers its channel attention's statistics over windows of the training patch (48 px) on
inputs larger than that; before, it pooled them over the whole input. Both ways run the same
weights through the same engine as `streamsr upscale` runs them (automatic precision, tiles on
the CPU), alternating round by round, since only a ratio measured in one run means anything on
these machines. Their quality is in weights/README.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from streamsr.models import load_model
from streamsr.models.archs.safdn import TRAINING_PATCH
from streamsr.upscaler import Upscaler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="safdn-x2")
    parser.add_argument("--size", default="480x270", help="LR frame, WxH")
    parser.add_argument("--frames", type=int, default=1, help="frames per call (the batch)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    # Set, not read from the file: the rt and tiny files run global, and would time global twice.
    parser.add_argument("--window", type=int, default=TRAINING_PATCH, help="the windowed way's window")
    args = parser.parse_args()

    width, height = (int(v) for v in args.size.split("x"))
    engines: dict[str, Upscaler] = {}
    for name, window in (("global", 0), ("windowed", args.window)):
        model = load_model(args.model)
        model.module.set_attention_window(window)
        engines[name] = Upscaler(model, device=args.device, batch=args.frames)
    frames = torch.randint(0, 256, (args.frames, 3, height, width), dtype=torch.uint8, device=engines["global"].device)
    for engine in engines.values():
        engine.upscale_frames(frames)  # warm-up: first-call allocations stay out of round 1
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, engine in engines.items():
            start = time.perf_counter()
            engine.upscale_frames(frames)
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            seconds[name].append(time.perf_counter() - start)
    for name, values in seconds.items():
        print(f"{name:<9} median {statistics.median(values):8.3f} s   rounds: {', '.join(f'{v:.3f}' for v in values)}")
    ratio = statistics.median(seconds["windowed"]) / statistics.median(seconds["global"])
    engine = engines["windowed"]
    print(f"windowed / global: {ratio:.3f} ({args.model}, window {args.window}, {width}x{height} x {args.frames}, "
          f"{engine.device.type}, {engine.precision_name}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
