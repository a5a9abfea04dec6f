"""Refit a SAFDN's last convolution by least squares, and predict what that does on the benchmark sets.

    python benchmarks/tail_refit.py weights/safdn-x3.safetensors --write /tmp/x3-refit.safetensors
    streamsr eval -m /tmp/x3-refit.safetensors -s 3 ../shared/data/bench/Set5 ../shared/data/bench/Set14

The upsampler's 3x3 convolution (`upsample.0`) is linear in the features the frozen network feeds it,
so the weights that minimise the mean squared error over every pixel of the training set have a
closed form: one pass over the images gathers X'X and X'T (X: the 3x3 feature neighbourhoods, T: HR
minus the bilinear base, as sub-pixels), then one solve. That asks whether the L1-trained tail is
leaving PSNR on the table (PSNR is an MSE measure), and, by fitting on each training folder or on
mixes of them, which training data moves which benchmark set: a probe of data mixes that costs minutes
where a fine-tune costs hours. Answered for x3 in docs/benchmarks.md ("Refitting the last
convolution"): every refit scored lower than the trained tail.

The benchmark sets are used to *score* each refit (pooled luma MSE over their pixels, borders of
one LR pixel left out as `streamsr eval` does), never to fit one. The prediction ignores clamping and
rounding to 8 bits, so `streamsr eval` has the last word on a written file.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from streamsr.io.images import read_image
from streamsr.models.weights import derived_metadata, load_weights, save_weights, weights_digest
from streamsr.train.data import find_images
from streamsr.train.degrade import bicubic_lr, modcrop
from streamsr.train.evaluate import DEFAULT_BENCH
from streamsr.train.metrics import BT601_Y

Stats = dict[str, Tensor | float | int]


def gather(model: torch.nn.Module, paths: list[Path], scale: int, *, border: int, limit: int,
           group: Callable[[Path], str] = lambda p: p.parent.name) -> dict[str, Stats]:
    """Per `group` (by default an image's folder): X'X, X'T, the pixel count n and the target energy
    (RGB and luma) of its images, at most `limit` of them."""
    conv = model.upsample[0]
    features: list[Tensor] = []
    hook = conv.register_forward_pre_hook(lambda _m, args: features.append(args[0]))
    luma = luma_matrix(scale)
    stats: dict[str, Stats] = {}
    try:
        for path in paths:
            key = group(path)
            if key in stats and stats[key]["images"] >= limit:
                continue
            hr = modcrop(read_image(path), scale)
            lr = bicubic_lr(hr, scale).float().div(255)[None]
            with torch.inference_mode():
                features.clear()
                model(lr)
                base = F.interpolate(lr, scale_factor=scale, mode="bilinear", align_corners=False)
                target = F.pixel_unshuffle(hr.float().div(255)[None] - base, scale)[0].flatten(1).T.double()
                x = F.unfold(features[0], 3, padding=1)[0].T.double()
            h, w = features[0].shape[-2:]
            keep = torch.zeros(h, w, dtype=torch.bool)
            keep[border : h - border, border : w - border] = True
            x = torch.cat((x, torch.ones(len(x), 1, dtype=x.dtype)), 1)[keep.flatten()]
            target = target[keep.flatten()]
            s = stats.setdefault(key, {"xtx": 0, "xtt": 0, "n": 0, "tt": 0.0, "yy": 0.0, "images": 0})
            s["xtx"] = s["xtx"] + x.T @ x
            s["xtt"] = s["xtt"] + x.T @ target
            s["n"] += len(x)
            s["tt"] += float(target.square().sum())
            s["yy"] += float((target @ luma).square().sum())
            s["images"] += 1
    finally:
        hook.remove()
    return stats


def luma_matrix(scale: int) -> Tensor:
    """(3 s^2, s^2): the RGB sub-pixel outputs of PixelShuffle's channel order to their luma (in [0, 1] units)."""
    m = torch.zeros(3 * scale * scale, scale * scale, dtype=torch.float64)
    for c, coef in enumerate(BT601_Y):
        for k in range(scale * scale):
            m[c * scale * scale + k, k] = coef / 255
    return m


def fit(stats: dict[str, Stats], mix: dict[str, float]) -> Tensor:
    """Least-squares weights (with the bias as the last row) for the mix: each folder's share of the
    loss in proportion to its `mix` value, pixels weighted equally within a folder."""
    total = sum(mix.values())
    xtx = sum(w / total * stats[k]["xtx"] / stats[k]["n"] for k, w in mix.items())
    xtt = sum(w / total * stats[k]["xtt"] / stats[k]["n"] for k, w in mix.items())
    return torch.linalg.solve(xtx, xtt)


def luma_psnr(weights: Tensor, s: Stats, luma: Tensor) -> float:
    """Pooled luma PSNR over a set's pixels with these tail weights (before clamping and rounding)."""
    wy, xty = weights @ luma, s["xtt"] @ luma
    sse = torch.trace(wy.T @ s["xtx"] @ wy) - 2 * torch.trace(wy.T @ xty) + s["yy"]
    return -10 * math.log10(float(sse) / (s["n"] * luma.shape[1]))


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--train", default=str(here.parent / "shared" / "data" / "train"))
    ap.add_argument("--bench", default=str(DEFAULT_BENCH))
    ap.add_argument("--sets", nargs="+", default=["Set5", "Set14", "B100", "Vid4"])
    ap.add_argument("--limit", type=int, default=10**9, help="images per training folder and per benchmark set (a quick look)")
    ap.add_argument("--write", help="write the weights refitted on all the training data (by area), for streamsr eval")
    args = ap.parse_args()

    model, meta = load_weights(args.weights)
    model.eval()
    scale = int(meta["scale"])
    conv = model.upsample[0]
    current = torch.cat((conv.weight.detach().double().flatten(1), conv.bias.detach().double()[:, None]), 1).T
    train = gather(model, find_images([args.train]), scale, border=0, limit=args.limit)
    bench: dict[str, Stats] = {}
    for name in args.sets:  # Vid4's frames sit in clip folders: pooled under the set's name
        paths = find_images([Path(args.bench) / name])
        bench |= gather(model, paths, scale, border=1, limit=args.limit, group=lambda _p, n=name: n)
    luma = luma_matrix(scale)
    folders = sorted(train)
    fits = {"all, by area (as training draws)": {k: float(train[k]["n"]) for k in folders},
            "all, equal per folder": dict.fromkeys(folders, 1.0)}
    fits.update({f"{k} alone": {k: 1.0} for k in folders})
    reference = {name: luma_psnr(current, s, luma) for name, s in bench.items()}
    print(f"{'refit on':<36}" + "".join(f"{name:>9}" for name in bench))
    print(f"{'(trained tail, pooled luma PSNR)':<36}" + "".join(f"{v:>9.3f}" for v in reference.values()))
    for label, mix in fits.items():
        w = fit(train, mix)
        print(f"{label:<36}" + "".join(f"{luma_psnr(w, s, luma) - reference[n]:>+9.4f}" for n, s in bench.items()))
    if args.write:
        w = fit(train, fits["all, by area (as training draws)"]).float()
        with torch.no_grad():
            conv.weight.copy_(w[:-1].T.reshape(conv.weight.shape))
            conv.bias.copy_(w[-1])
        refit = (f"upsample.0 refitted by least squares on {args.train} (by area), "
                 f"from {args.weights} (sha256 {weights_digest(args.weights)})")
        save_weights(model, args.write, arch=meta["arch"], extra=derived_metadata(meta, {"tail_refit": refit}))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
