"""Flicker: PSNR and tPSNR on Vid4, clean and with the LR through H.264, for bicubic and each shipped model.

    STREAMSR_DATA=/data python benchmarks/temporal.py [--degradation x264:crf=28] [--models safdn-x4 ...] [--reuse]

tPSNR is the PSNR of the output's frame-to-frame change against the original's (SR_t - SR_t-1
against HR_t - HR_t-1, Y channel, border = scale), averaged over the frames of each clip, then over
the clips, as `streamsr eval` reports it for clip sets. A model that redraws codec noise differently
in every frame gains PSNR over bicubic but little or no tPSNR. With --reuse, each clip's frames go
through `--reuse auto` as `upscale` runs them (what holds still reuses the last output).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from fractions import Fraction

import torch

from streamsr.config import data_path
from streamsr.frames import FrameBatch
from streamsr.models import CATALOG, load_model
from streamsr.stages import model_stage
from streamsr.train.degrade import Compression
from streamsr.train.evaluate import evaluate_set, evaluation_upscaler, upscale_function
from streamsr.upscaler import Upscaler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--degradation", action="append", default=[],
                        help="LR compression (repeatable); the clean LR is always scored")
    parser.add_argument("--models", nargs="*", default=sorted(CATALOG))
    parser.add_argument("--reuse", action="store_true", help="also score each model with --reuse auto on compressed LR")
    args = parser.parse_args()
    folder = data_path("bench/Vid4")
    conditions = [None, *(Compression.parse(d) for d in args.degradation)]
    print("| model | LR | PSNR | tPSNR | bicubic PSNR | bicubic tPSNR | PSNR gain | tPSNR gain |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        up = evaluation_upscaler(load_model(name))
        for compression in conditions:
            for reuse in (False, True) if args.reuse and compression is not None else (False,):
                run = with_reuse(up) if reuse else upscale_function(up)
                sc = evaluate_set(folder, run, scale=up.scale, compression=compression)
                assert sc.tpsnr is not None and sc.bicubic_tpsnr is not None
                label = f"{name}{' --reuse auto' if reuse else ''}"
                print(f"| {label} | {compression or 'clean'} | {sc.psnr:.2f} | {sc.tpsnr:.2f} | {sc.bicubic_psnr:.2f} | "
                      f"{sc.bicubic_tpsnr:.2f} | {sc.psnr - sc.bicubic_psnr:+.2f} | {sc.tpsnr - sc.bicubic_tpsnr:+.2f} |",
                      flush=True)


def with_reuse(up: Upscaler) -> Callable[[torch.Tensor], torch.Tensor]:
    """One frame at a time through `--reuse auto`, its state kept from frame to frame (a new clip
    differs everywhere from the last, so it starts afresh)."""
    stage = model_stage(up, "auto")

    def run(lr: torch.Tensor) -> torch.Tensor:
        batch = FrameBatch(data=lr[None], pts=torch.zeros(1, dtype=torch.int64), time_base=Fraction(1))
        return next(stage(iter([batch]))).data[0]

    return run


if __name__ == "__main__":
    main()
