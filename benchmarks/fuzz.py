"""Fuzz `streamsr upscale` with N seeded mutations of three small containers (tests/fuzz.py).

    python benchmarks/fuzz.py --cases 1000 [--work /tmp/fuzz]

Prints the counts by exit code and every case that broke a rule (traceback, hang, undocumented
exit code, more than one error line, a partial file or a stray output left behind).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz import judge, make_seeds, mutate  # noqa: E402

from streamsr.models import save_weights  # noqa: E402
from streamsr.models.archs.safdn import SAFDN  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--seconds", type=int, default=120, help="a case running longer is a hang")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="streamsr-fuzz-"))
    seeds = make_seeds(work / "seeds")
    weights = work / "tiny-x2.safetensors"
    save_weights(SAFDN(feat=8, blocks=1, esa=4, scale=2), weights, arch="safdn")
    codes: collections.Counter[int] = collections.Counter()
    problems: list[str] = []
    start = time.perf_counter()
    for i in range(args.cases):
        seed = seeds[i % len(seeds)]
        case = work / "case" / f"c{i}{seed.suffix}"
        out_dir = work / "case" / "out"
        shutil.rmtree(case.parent, ignore_errors=True)
        out_dir.mkdir(parents=True)
        what = mutate(seed, i // len(seeds), case)
        verdict = judge(case, out_dir, weights, f"{seed.suffix[1:]} #{i // len(seeds)} ({what})", seconds=args.seconds)
        codes[verdict.exit_code] += 1
        if verdict.problem:
            problems.append(f"{verdict.case}: exit {verdict.exit_code}: {verdict.problem}")
    print(f"{args.cases} cases in {time.perf_counter() - start:.0f} s; exit codes: "
          + ", ".join(f"{code}: {n}" for code, n in sorted(codes.items())))
    print(f"problems: {len(problems)}")
    for line in problems:
        print("  " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
