"""What tiling costs in quality: Y-PSNR/SSIM of whole frames and of tiles, with the shipped weights.

    python benchmarks/tile_quality.py Set5 Set14 B100 --model safdn-x4 --tiles 64 120

A tile's channel attention sees only the tile (its windows sit on the tile's grid), so tiled output
is not bit-identical to the whole frame. This scores each set whole and at each tile size (the engine's
default 32 px overlap), as `streamsr eval` scores (Y channel, border = scale), and prints how far
the tiled pictures move from the whole ones in 8-bit code values. The engine runs as `streamsr
upscale` runs it on this machine (its automatic precision) unless --precision says otherwise, and
with the attention window the weights file records unless --window says otherwise (0: global).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from streamsr.config import data_path
from streamsr.models import ModelDescriptor, load_model
from streamsr.train.evaluate import SetScore, evaluate_set
from streamsr.upscaler import Upscaler


def load(name: str, window: int | None) -> ModelDescriptor:
    model = load_model(name)
    if window is not None:
        model.module.set_attention_window(window)
    return model


def score_set(folder: Path, engine: Upscaler) -> tuple[SetScore, list[torch.Tensor]]:
    """The set's scores, and each picture in the order `evaluate_set` asked for them (the same
    order on every call, so the whole and the tiled pictures of an image share a position)."""
    pictures: list[torch.Tensor] = []

    def run(lr: torch.Tensor) -> torch.Tensor:
        pictures.append(engine.upscale_frames(lr[None])[0])
        return pictures[-1]

    return evaluate_set(folder, run, scale=engine.scale), pictures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", default=["Set5", "Set14"],
                        help="set names under $STREAMSR_DATA/bench, or folders")
    parser.add_argument("--model", default="safdn-x4")
    parser.add_argument("--tiles", type=int, nargs="+", default=[64, 120], help="LR tile sides (after the sets)")
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--window", type=int, help="the attention's window (0: global; default: the file's)")
    args = parser.parse_args()

    whole = Upscaler(load(args.model, args.window), device="cpu", precision=args.precision, tile=0)
    print(f"{args.model}, {whole.precision_name}, attention window {whole.model.hparams['window']}, "
          f"{torch.get_num_threads()} threads, overlap {args.overlap}")
    print(f"{'set':<8} {'tile':>5} {'PSNR':>8} {'SSIM':>7} {'max diff':>9} {'mean diff':>10}")
    for name in args.sets:
        folder = Path(name) if Path(name).is_dir() else data_path(Path("bench") / name)
        score, pictures = score_set(folder, whole)
        print(f"{score.name:<8} {'whole':>5} {score.psnr:8.4f} {score.ssim:7.4f}")
        for tile in args.tiles:
            engine = Upscaler(load(args.model, args.window), device="cpu", precision=args.precision, tile=tile,
                              tile_overlap=args.overlap)
            score, tiled = score_set(folder, engine)
            distances = [(a.float() - b.float()).abs() for a, b in zip(tiled, pictures, strict=True)]
            worst = max(d.max().item() for d in distances)
            mean = sum(d.mean().item() for d in distances) / len(distances)
            print(f"{score.name:<8} {tile:>5} {score.psnr:8.4f} {score.ssim:7.4f} {worst:9.0f} {mean:10.3f}")


if __name__ == "__main__":
    main()
