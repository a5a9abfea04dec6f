"""The price of --self-ensemble: SR-stage fps of one model, plain and self-ensembled, side by side.

    python benchmarks/self_ensemble_speed.py examples/media/sample.mp4 --scale 4 --rounds 3

Decodes the clip's first frames once, then alternates the two engines round by round (these
machines are noisy, so only a ratio measured in one run means anything) and prints each round's
fps, the medians and their ratio. Frames go one at a time, as `streamsr upscale` runs them on the CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from streamsr.io.probe import probe
from streamsr.io.pyav import PyAVDecoder
from streamsr.upscaler import Upscaler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    # The project's decoder, so frames arrive as `streamsr upscale` sees them (10-bit, rotation).
    with PyAVDecoder(args.clip, batch=args.frames, info=probe(args.clip)) as decoder:
        frames = next(iter(decoder)).data[: args.frames]
    model = f"safdn-x{args.scale}"
    engines = {
        "plain": Upscaler(model, device=args.device),
        "self-ensemble": Upscaler(model, device=args.device, self_ensemble=True),
    }
    for engine in engines.values():
        engine.upscale_frames(frames[:1])  # warm-up: first-call allocations stay out of round 1
    fps: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, engine in engines.items():
            start = time.perf_counter()
            for i in range(len(frames)):
                engine.upscale_frames(frames[i : i + 1])
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            fps[name].append(len(frames) / (time.perf_counter() - start))
    for name, values in fps.items():
        print(f"{name:<14} median {statistics.median(values):7.3f} fps   rounds: {', '.join(f'{v:.3f}' for v in values)}")
    ratio = statistics.median(fps["plain"]) / statistics.median(fps["self-ensemble"])
    h, w = frames.shape[-2:]
    print(f"self-ensemble is {ratio:.2f}x slower ({model}, {w}x{h}, {len(frames)} frames, "
          f"{engines['plain'].device.type}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
