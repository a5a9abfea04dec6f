"""Fuzz `streamsr upscale` with N seeded mutations of three small containers (tests/fuzz.py), or
with N cases of the surfaces around a clean source (tests/fuzz_surfaces.py: pipes and URLs that
break off, playlists on a small disk, damaged segments under --resume, frame folders and outputs
that already exist).

    python benchmarks/fuzz.py --cases 1000 [--work /tmp/fuzz]
    python benchmarks/fuzz.py --surfaces 500 [--work /tmp/fuzz]

Prints the counts by exit code and every case that broke a rule (traceback, hang, undocumented
exit code, more than one error line, a partial file or a stray output left behind; for surfaces
also a user's file lost, and a silent bad output: exit 0 with frames, times or pixels that differ
from a clean run).
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
from fuzz_surfaces import SURFACES, Lab, judge_surface  # noqa: E402

from streamsr.models import save_weights  # noqa: E402
from streamsr.models.archs.safdn import SAFDN  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--seconds", type=int, default=120, help="a case running longer is a hang")
    parser.add_argument("--surfaces", type=int, default=0, help="run this many surface cases instead")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="streamsr-fuzz-"))
    weights = work / "tiny-x2.safetensors"
    work.mkdir(parents=True, exist_ok=True)
    save_weights(SAFDN(feat=8, blocks=1, esa=4, scale=2), weights, arch="safdn")
    if args.surfaces:
        return surfaces(args.surfaces, work, weights)
    seeds = make_seeds(work / "seeds")
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


def surfaces(cases: int, work: Path, weights: Path) -> int:
    lab = Lab(work / "lab", weights)
    names = list(SURFACES)
    codes: collections.Counter[tuple[str, int]] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    start = time.perf_counter()
    for i in range(cases):
        surface = names[i % len(names)]
        case_dir = work / "case"
        shutil.rmtree(case_dir, ignore_errors=True)
        case_dir.mkdir()
        verdict = judge_surface(lab, surface, i // len(names), case_dir)
        codes[(surface, verdict.exit_code)] += 1
        if verdict.problem:
            kinds[verdict.kind] += 1
            problems.append(f"{verdict.case}: exit {verdict.exit_code}: {verdict.problem}")
    print(f"{cases} cases in {time.perf_counter() - start:.0f} s")
    print("| surface | cases | exit 0 (output equal to a clean run) | exit 2 | exit 3 | other |")
    print("| --- | --- | --- | --- | --- | --- |")
    for surface in names:
        row = {code: n for (s, code), n in codes.items() if s == surface}
        other = sum(n for code, n in row.items() if code not in (0, 2, 3))
        print(f"| {surface} | {sum(row.values())} | {row.get(0, 0)} | {row.get(2, 0)} | {row.get(3, 0)} | {other} |")
    print("problems: " + (", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())) or "none")
          + " (tracebacks, hangs, undocumented codes, error lines, leftovers, user files lost, silent bad outputs)")
    for line in problems:
        print("  " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
