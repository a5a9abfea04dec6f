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
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import torch

from streamsr.models.weights import carried_metadata, load_weights, save_weights, weights_digest


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


def main(out_path: str, *paths: str) -> None:
    if len(paths) < 2:
        sys.exit("usage: average_weights.py OUT WEIGHTS WEIGHTS [WEIGHTS ...]")
    loaded = [load_weights(p) for p in paths]
    arches = {meta.get("arch") for _, meta in loaded}
    hparams = {meta.get("hparams") for _, meta in loaded}
    if len(arches) != 1 or len(hparams) != 1:
        sys.exit("the files hold different models (arch or hparams differ): their mean means nothing")
    model, meta = loaded[-1]
    states = [m.state_dict() for m, _ in loaded]
    with torch.no_grad():  # written into the last model's own tensors: each key is read before it is written
        for key, tensor in states[-1].items():
            if tensor.is_floating_point():
                tensor.copy_(torch.stack([s[key].float() for s in states]).mean(0).to(tensor.dtype))
    training = json.loads(meta.get("training", "{}"))
    training.pop("val_psnr", None)
    training["weight_average"] = _record(paths, [m for _, m in loaded])
    extra = carried_metadata(meta, drop=("quality",))
    extra["training"] = json.dumps(training)
    save_weights(model, out_path, arch=meta["arch"], extra=extra)


if __name__ == "__main__":
    main(*sys.argv[1:])
