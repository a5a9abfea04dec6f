"""The cost of segmenting and of the Ray engine on one machine, side by side in one run: the same
generated clip upscaled whole, in segments in this process, and in segments as Ray tasks.

    python benchmarks/segments.py [--size 320x180] [--frames 240] [--segment-seconds 2] [--model safdn-tiny-x2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import make_clip  # noqa: E402

from streamsr.config import UpscaleConfig  # noqa: E402
from streamsr.distributed import connect, ray_segment_runner  # noqa: E402
from streamsr.run import upscale_file  # noqa: E402
from streamsr.segments import upscale_segmented  # noqa: E402
from streamsr.stages import make_upscaler  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--segment-seconds", type=float, default=2.0)
    parser.add_argument("--model", default="safdn-tiny-x2")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = make_clip(work / "clip.mp4", width=width, height=height, frames=args.frames, fps=24, codec="libx264",
                        options={"g": "24", "keyint_min": "24", "sc_threshold": "0"})
        cfg = UpscaleConfig(model=args.model, device="cpu", overwrite=True)
        upscaler = make_upscaler(cfg)
        rows = []

        def timed(name: str, run: object) -> None:
            start = time.perf_counter()
            run()  # type: ignore[operator]
            rows.append((name, time.perf_counter() - start))

        timed("whole (one process)", lambda: upscale_file(src, work / "whole.mp4", cfg, upscaler=upscaler))
        timed(f"segments of {args.segment_seconds:g} s (one process)",
              lambda: upscale_segmented(src, work / "seg.mp4", cfg, segment_seconds=args.segment_seconds, upscaler=upscaler))
        import ray

        start = time.perf_counter()
        connect(None) if ray.is_initialized() else ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        rows.append((f"Ray start ({args.cpus} CPUs)", time.perf_counter() - start))
        runner = ray_segment_runner(cfg)
        timed(f"segments as Ray tasks ({args.cpus} at once)",
              lambda: upscale_segmented(src, work / "ray.mp4", cfg, segment_seconds=args.segment_seconds, run_segments=runner))
        timed("again, workers warm", lambda: upscale_segmented(src, work / "ray2.mp4", cfg,
                                                               segment_seconds=args.segment_seconds, run_segments=runner))
        ray.shutdown()
    base = rows[0][1]
    print(f"{args.frames} frames {args.size} -> x{upscaler.scale}, model {args.model}")
    print("| run | seconds | vs whole |\n| --- | --- | --- |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
