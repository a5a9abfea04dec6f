"""The live preview's speed: `streamsr live` on a 320x240 30 fps source at x2 and x4 with the
default CPU model, in the real preview window (under Xvfb when there is no display), headless
too, and a screenshot of the window saved for the record.

    python benchmarks/live_bench.py [OUT_DIR] [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from streamsr.bench import make_test_clip
from streamsr.live import HeadlessSink, LiveStats, run_live
from streamsr.upscaler import Upscaler


def _start_xvfb() -> subprocess.Popen[bytes] | None:
    if os.environ.get("DISPLAY") or shutil.which("Xvfb") is None:
        return None
    display = ":93"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1200x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    os.environ["DISPLAY"], os.environ["SDL_VIDEODRIVER"] = display, "x11"
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("live-bench"))
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--source", type=Path, help="a real clip instead of the generated one (e.g. from make_sample_clip.py)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.size.split("x"))
    xvfb = _start_xvfb()
    try:
        from streamsr.preview import PygameSink

        class ShotSink(PygameSink):
            """The real window, saving one screenshot half-way."""

            def __init__(self, shot: Path, at: int) -> None:
                super().__init__()
                self.shot, self.at = shot, at

            def show(self, lr: np.ndarray, sr: np.ndarray, stats: LiveStats):  # noqa: ANN201
                command = super().show(lr, sr, stats)
                if stats.shown == self.at:
                    self.screenshot(str(self.shot))
                return command

        with tempfile.TemporaryDirectory() as tmp:
            clip = args.source or make_test_clip(Path(tmp) / "cam.mp4", width=w, height=h, frames=30 * args.seconds, fps=30)
            for scale in (2, 4):
                up = Upscaler(f"safdn-tiny-x{scale}", device="cpu")
                for mode in ("window", "headless"):
                    sink = ShotSink(args.out / f"live-x{scale}.png", 60) if mode == "window" else HeadlessSink()
                    stats = run_live(str(clip), upscaler=up, sink=sink)
                    print(f"x{scale} {mode:<8} {stats.line()}")
    finally:
        if xvfb is not None:
            xvfb.terminate()


if __name__ == "__main__":
    main()
