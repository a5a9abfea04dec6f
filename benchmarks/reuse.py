"""The `--reuse auto` threshold: how much a frame may differ from the last upscaled one and reuse its result.

    python benchmarks/reuse.py VIDEO --start 0 --seconds 4      # choose on one stretch (validation)
    python benchmarks/reuse.py VIDEO --start 16 --seconds 4     # report on another (test)

From `seconds` of VIDEO (320x180) it makes clips with known truth and codes each with x264 at
CRF 18, 23, 28 and 33:

- *twos*: each frame held for 2, then 3 frames (animation on twos and threes): the held copies
  are repeats, differing from their first frame by codec noise only;
- *motion*: the frames as they are (no repeats);
- *pan*: one frame shifted 0.25 px more each frame; *fade*: one frame darkened 1/90 more each frame.

For each candidate block limit it counts the repeats reused, the lowest PSNR of a reused frame's
output (the model's output of its anchor) against a fresh upscale of that frame, and the frames that
are not repeats but would be reused: on the pans and fades any such frame is a false reuse; in the
motion clip the source itself may hold still for a while, so those frames are scored like repeats.
The model is safdn-x2.
"""

from __future__ import annotations

import argparse
import math

import av
import numpy as np
import torch
import torch.nn.functional as F

from streamsr.models import load_model
from streamsr.stages.reuse import SHIFT_LIMIT, _stats
from streamsr.train.evaluate import evaluation_upscaler

CRFS = (18, 23, 28, 33)
LIMITS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
SCORED = {"twos", "motion"}
"""Clips whose reused frames are scored against a fresh upscale (pans and fades must not reuse at all)."""


def read(path: str, start: float, seconds: float, size: tuple[int, int] = (320, 180)) -> list[np.ndarray]:
    frames = []
    with av.open(path) as c:
        c.seek(int(start * 1_000_000))
        for f in c.decode(video=0):
            if f.time < start:
                continue
            if f.time >= start + seconds:
                break
            frames.append(f.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray())
    return frames


def code(frames: list[np.ndarray], crf: int) -> list[torch.Tensor]:
    """`frames` through x264 at `crf` and back: (3, H, W) uint8 tensors."""
    import io

    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        v = out.add_stream("libx264", rate=24)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        v.options = {"crf": str(crf), "preset": "medium"}
        for i, a in enumerate(frames):
            f = av.VideoFrame.from_ndarray(a, format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    buf.seek(0)
    with av.open(buf) as c:
        return [torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1) for f in c.decode(video=0)]


def clips(frames: list[np.ndarray]) -> dict[str, tuple[list[np.ndarray], list[int]]]:
    """name -> (frames, anchor index of each frame: itself when it is no repeat)."""
    twos, anchors = [], []
    for i, a in enumerate(frames):
        first = len(twos)
        for _ in range(2 if i % 2 == 0 else 3):
            twos.append(a)
            anchors.append(first)
    still = torch.from_numpy(frames[len(frames) // 2]).permute(2, 0, 1).float()[None]
    pan, fade = [], []
    for i in range(60):
        theta = torch.tensor([[[1.0, 0.0, 0.25 * i * 2 / still.shape[-1]], [0.0, 1.0, 0.0]]])
        grid = F.affine_grid(theta, list(still.shape), align_corners=False)
        moved = F.grid_sample(still, grid, mode="bicubic", padding_mode="border", align_corners=False)
        pan.append(moved[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy())
        fade.append((still[0] * (1 - i / 90)).round().byte().permute(1, 2, 0).numpy())
    own = list(range(60))
    return {"twos": (twos, anchors), "motion": (frames, list(range(len(frames)))), "pan": (pan, own), "fade": (fade, own)}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video")
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--crf", type=int, nargs="*", default=list(CRFS))
    args = parser.parse_args()
    crfs = tuple(args.crf)
    torch.set_num_threads(2)
    up = evaluation_upscaler(load_model("safdn-x2"))
    source = read(args.video, args.start, args.seconds)
    rows = []
    for crf in crfs:
        for name, (frames, anchors) in clips(source).items():
            decoded = code(frames, crf)
            outputs: dict[int, torch.Tensor] = {}
            for i, anchor in enumerate(anchors):
                if i == 0:
                    continue
                repeat = anchor != i
                base = anchor if repeat else i - 1  # a moving frame's anchor is the frame before it
                block, shift = _stats(decoded[i], decoded[base], 255.0)
                quality = None
                if name in SCORED and (repeat or block <= max(LIMITS) and abs(shift) <= SHIFT_LIMIT):
                    for k in (base, i):
                        if k not in outputs:
                            outputs[k] = up.upscale_frames(decoded[k][None])[0]
                    quality = psnr(outputs[base], outputs[i])
                rows.append((crf, name, repeat, block, shift, quality))
    print(f"{len(source)} frames of {args.video} from {args.start:g} s, 320x180; shift limit {SHIFT_LIMIT}")
    print("| block limit | repeats reused (CRF " + " / ".join(map(str, crfs)) + ") | lowest PSNR of a reused repeat (dB) "
          "| motion frames reused, lowest PSNR | false reuse: pan / fade |")
    print("| --- | --- | --- | --- | --- |")
    for limit in LIMITS:
        def passes(r: tuple, limit: float = limit) -> bool:
            return r[3] <= limit and abs(r[4]) <= SHIFT_LIMIT

        rates = []
        for crf in crfs:
            reps = [r for r in rows if r[0] == crf and r[2]]
            rates.append(f"{100 * sum(passes(r) for r in reps) / max(1, len(reps)):.0f}%")
        reused = [r[5] for r in rows if r[2] and passes(r)]
        moving = [r[5] for r in rows if r[1] == "motion" and passes(r)]
        false = [sum(passes(r) for r in rows if r[1] == n) for n in ("pan", "fade")]
        low = f"{min(reused):.1f}" if reused else "-"
        still = f"{len(moving)}, {min(moving):.1f}" if moving else "0"
        print(f"| {limit:g} | {' / '.join(rates)} | {low} | {still} | {' / '.join(map(str, false))} |")


if __name__ == "__main__":
    main()
