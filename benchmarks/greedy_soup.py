"""Greedy weight soup: the mean of those fine-tunes of one file that, added one at a time, raise the
validation PSNR (Wortsman et al., "Model soups", 2022).

    python benchmarks/greedy_soup.py /tmp/soup-x3.safetensors --scale 3 weights/safdn-x3.safetensors \
        runs/safdn-x3-s3*/final.safetensors runs/safdn-x3-s3*/best.safetensors
    streamsr eval -m /tmp/soup-x3.safetensors -s 3 --export /tmp/soup-x3-q.safetensors
    python benchmarks/compare_weights.py weights/safdn-x3.safetensors /tmp/soup-x3-q.safetensors

Every file is scored alone on the validation sets (by default Set5 and Set14, the recipes' `val`: the
mean of their PSNRs, as training picks `best.safetensors`); in that order, best first, each joins the
soup when the uniform mean of the soup with it scores higher than the soup without it. B100 and Vid4
take no part in the choice, so `streamsr eval` on the written file measures them on sets the soup
never saw. The file is written by average_weights.py and carries the same `training.weight_average`
record. One thread by default, to share the machine with training lanes (`taskset -c` to pin it).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable

import torch
from average_weights import main as write_mean
from average_weights import mean_into

from streamsr.models.weights import load_weights
from streamsr.train.evaluate import DEFAULT_BENCH, evaluate_set, module_upscaler


def greedy_soup(models: dict[str, torch.nn.Module], score: Callable[[torch.nn.Module], float], *,
                report: Callable[[str], None] = lambda line: None) -> tuple[list[str], float]:
    """The greedy soup of `models` (the keys it keeps, best first) and the score of their uniform mean.

    Each model is scored alone; from the best one down, a file joins when the mean with it scores
    strictly higher than the soup so far. The models are left as they are.
    """
    alone = {path: score(model) for path, model in models.items()}
    ranked = sorted(models, key=alone.__getitem__, reverse=True)
    for path in ranked:
        report(f"{alone[path]:.4f}  {path}")
    soup, best = [ranked[0]], alone[ranked[0]]
    scratch = copy.deepcopy(models[ranked[0]])  # the model the trial means are written into
    report(f"start   {best:.4f}  {ranked[0]}")
    for path in ranked[1:]:
        trial = score(mean_into(scratch, [models[p] for p in [*soup, path]]))
        joined = trial > best
        report(f"{'added ' if joined else 'left  '}  {trial:.4f}  {path}")
        if joined:
            soup, best = [*soup, path], trial
    return soup, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="where to write the soup")
    parser.add_argument("files", nargs="+", help="weight files of one model, e.g. a shipped file and its fine-tunes")
    parser.add_argument("--scale", type=int, required=True)
    parser.add_argument("--val", nargs="+", default=["Set5", "Set14"], help="validation sets under the bench folder")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = list(dict.fromkeys(args.files))  # a shell glob can name a file twice
    if len(files) < 2:
        sys.exit("a soup needs at least two files")

    def score(model: torch.nn.Module) -> float:
        upscale = module_upscaler(model.eval())
        return sum(evaluate_set(DEFAULT_BENCH / v, upscale, scale=args.scale).psnr for v in args.val) / len(args.val)

    models = {path: load_weights(path)[0] for path in files}
    soup, best = greedy_soup(models, score, report=print)
    print(f"soup of {len(soup)}: {'+'.join(args.val)} {best:.4f}")
    if len(soup) == 1:
        sys.exit("no file raised the score of the best one: nothing written")
    write_mean(args.out, *soup)


if __name__ == "__main__":
    main()
