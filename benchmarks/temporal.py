"""Flicker: PSNR and tPSNR on Vid4, clean and with the LR through H.264, for bicubic and each shipped model.

    STREAMSR_DATA=/data python benchmarks/temporal.py [--degradation x264:crf=28] [--models safdn-x4 ...]

tPSNR is the PSNR of the output's frame-to-frame change against the original's (SR_t - SR_t-1
against HR_t - HR_t-1, Y channel, border = scale), averaged over the frames of each clip, then over
the clips, as `streamsr eval` reports it for clip sets. A model that redraws codec noise differently
in every frame gains PSNR over bicubic but little or no tPSNR.
"""

from __future__ import annotations

import argparse

from streamsr.config import data_path
from streamsr.models import CATALOG, load_model
from streamsr.train.degrade import Compression
from streamsr.train.evaluate import evaluate_set, evaluation_upscaler, upscale_function


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--degradation", action="append", default=[],
                        help="LR compression (repeatable); the clean LR is always scored")
    parser.add_argument("--models", nargs="*", default=sorted(CATALOG))
    args = parser.parse_args()
    folder = data_path("bench/Vid4")
    conditions = [None, *(Compression.parse(d) for d in args.degradation)]
    print("| model | LR | PSNR | tPSNR | bicubic PSNR | bicubic tPSNR | PSNR gain | tPSNR gain |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        up = evaluation_upscaler(load_model(name))
        for compression in conditions:
            sc = evaluate_set(folder, upscale_function(up), scale=up.scale, compression=compression)
            assert sc.tpsnr is not None and sc.bicubic_tpsnr is not None
            print(f"| {name} | {compression or 'clean'} | {sc.psnr:.2f} | {sc.tpsnr:.2f} | {sc.bicubic_psnr:.2f} | "
                  f"{sc.bicubic_tpsnr:.2f} | {sc.psnr - sc.bicubic_psnr:+.2f} | {sc.tpsnr - sc.bicubic_tpsnr:+.2f} |", flush=True)


if __name__ == "__main__":
    main()
