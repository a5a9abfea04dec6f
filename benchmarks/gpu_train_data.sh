#!/usr/bin/env bash
# Packs training data a device call can carry (the whole tree it sends is capped at 64 MiB, and
# ../shared/data/train alone is ~77 MB): a seeded random subset of the training images up to
# BUDGET_MB, each in a folder named after its source folder (for `--sampling folder`), plus Set5 and
# Set14 (~6 MB) for validation, into .data/ (ignored by git via .git/info/exclude).
#   bash benchmarks/gpu_train_data.sh            # then: run(..., carry=[".data", ".whl"])
set -euo pipefail
cd "$(dirname "$0")/.."
# 19: what fits beside the PyAV wheel (36 MB; the device image has no PyAV), the repository and Set5/Set14.
src=${SRC:-../shared/data}; budget=${BUDGET_MB:-19}
mkdir -p .git/info
grep -qx '/.data/' .git/info/exclude 2>/dev/null || echo '/.data/' >> .git/info/exclude
rm -rf .data && mkdir -p .data/train .data/Set5 .data/Set14
cp "$src"/bench/Set5/* .data/Set5/
cp "$src"/bench/Set14/* .data/Set14/
python3 - "$src/train" .data/train "$budget" <<'PY'
import random, shutil, sys
from pathlib import Path
src, dst, budget = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) * 2**20
files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in {".png", ".webp"})
random.Random(0).shuffle(files)
used = taken = 0
for p in files:
    if used + p.stat().st_size > budget:
        continue
    (dst / p.parent.name).mkdir(exist_ok=True)
    shutil.copy(p, dst / p.parent.name / p.name)  # one folder per source folder, for `--sampling folder`
    used += p.stat().st_size
    taken += 1
print(f"{taken} of {len(files)} training images, {used / 2**20:.1f} MiB, in {dst}")
PY
