"""Average weight files of one model (the uniform mean of every tensor) into a new file.

    python benchmarks/average_weights.py /tmp/mean-x4.safetensors weights/safdn-x4.safetensors \
        runs/safdn-x4-s26/final.safetensors
    streamsr eval -m /tmp/mean-x4.safetensors -s 4 --export /tmp/s26-x4.safetensors
    python benchmarks/compare_weights.py weights/safdn-x4.safetensors /tmp/s26-x4.safetensors

Files from one lineage (a shipped file and the EMAs trained on from it) sit close together, and their
mean can beat each of them: in the twenty-sixth session it passed the shipping rule where no new file
alone did (weights/README.md). The output keeps the last file's metadata but drops what belongs to
that file alone: its measured quality (compare_weights keeps the old file until the mean is measured)
and its Set5 validation figure (the mean's Set5 is in the `quality` that `streamsr eval --export`
writes). It records what was averaged, with each file's iteration count and sha256, under
`training.weight_average`. Giving a file more than once weights the mean towards it.

The mean's iterations and training time are those of every run it averages (a run's best and final
count once, as the run's longer snapshot), and its lineage totals add them to the earliest point any
of those runs started from: right for a file and the fine-tunes trained from it, the way soups are
made here (a mean of unrelated runs would undercount what came before them).
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import torch

from streamsr.models.weights import derived_metadata, load_weights, save_weights, weights_digest
from streamsr.train.trainer import lineage_totals


def _iterations(meta: dict[str, str]) -> object:
    """The iteration a file was written at, as its training record has it ("?" for files without one)."""
    return json.loads(meta.get("training", "{}")).get("iterations", "?")


def _record(paths: tuple[str, ...], metas: list[dict[str, str]]) -> dict[str, object]:
    """What was averaged, for `training.weight_average`. A file given n times weighs n/len(paths)
    (the way to lean a mean towards the shipped file); it is listed once, with that weight."""
    counts = Counter(paths)
    weighted = len(counts) < len(paths)
    files = []
    for path, meta in dict(zip(paths, metas, strict=True)).items():
        # The sha256 names each file for good: a shipped file averaged in is replaced by the mean itself.
        entry = f"{path} (iteration {_iterations(meta)}, sha256 {weights_digest(path)}"
        files.append(entry + (f", weight {counts[path]}/{len(paths)})" if weighted else ")"))
    return {"files": files, "how": "weighted mean of every tensor" if weighted else "uniform mean of every tensor"}


def _run_totals(records: list[dict[str, object]], paths: tuple[str, ...]) -> dict[str, int | float]:
    """Iterations and seconds behind the mean (see the module docstring), as training-record keys."""
    runs: dict[str, tuple[int, float]] = {}
    starts = []
    for record, path in zip(records, paths, strict=True):
        its, seconds = int(record.get("iterations", 0)), float(record.get("train_seconds", 0.0))
        total_its, total_seconds = lineage_totals(record)
        starts.append((total_its - its, total_seconds - seconds))
        # A run's best and final share their output folder (older records keep the recipe as one string).
        recipe = record.get("recipe", path)
        run = str(recipe.get("out", path) if isinstance(recipe, dict) else recipe)
        before = runs.get(run, (0, 0.0))
        runs[run] = (max(before[0], its), max(before[1], seconds))
    its = sum(i for i, _ in runs.values())
    seconds = sum(s for _, s in runs.values())
    return {"iterations": its, "train_seconds": round(seconds),
            "total_iterations": min(i for i, _ in starts) + its,
            "total_train_seconds": round(min(s for _, s in starts) + seconds)}


def mean_into(model: torch.nn.Module, models: list[torch.nn.Module]) -> torch.nn.Module:
    """`model` with each floating-point tensor replaced by the mean of that tensor over `models` (which
    may include `model` itself: each key is read from every model before it is written)."""
    states = [m.state_dict() for m in models]
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.stack([s[key].float() for s in states]).mean(0).to(tensor.dtype))
    return model


def main(out_path: str, *paths: str) -> None:
    if len(paths) < 2:
        sys.exit("usage: average_weights.py OUT WEIGHTS WEIGHTS [WEIGHTS ...]")
    loaded = [load_weights(p) for p in paths]
    arches = {meta.get("arch") for _, meta in loaded}
    hparams = {meta.get("hparams") for _, meta in loaded}
    if len(arches) != 1 or len(hparams) != 1:
        sys.exit("the files hold different models (arch or hparams differ): their mean means nothing")
    model, meta = loaded[-1]
    mean_into(model, [m for m, _ in loaded])
    runs = _run_totals([json.loads(m.get("training", "{}")) for _, m in loaded], paths)
    record = {**runs, "weight_average": _record(paths, [m for _, m in loaded])}
    save_weights(model, out_path, arch=meta["arch"], extra=derived_metadata(meta, record))


if __name__ == "__main__":
    main(*sys.argv[1:])
