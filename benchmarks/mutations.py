"""Does the test suite see the picture? Apply deliberate breakages one at a time to a copy of the
package and run the suite against each: every one must make it fail.

    python benchmarks/mutations.py                      # all breakages, the whole suite each (~8 min each, 2 cores)
    python benchmarks/mutations.py colour orientation   # some of them
    python benchmarks/mutations.py --tests tests/test_pictures.py model   # a part of the suite

Prints one row per breakage: the tests that failed and the first few of their names. The copy is
made from the working tree (`git ls-files`), so uncommitted changes count; nothing in the
repository is modified. Not part of CI: it runs the suite once per breakage.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    path: str
    old: str
    new: str


MUTATIONS = [
    Mutation("model", "model bypassed: Upscaler returns a bicubic resize",
             "streamsr/upscaler.py",
             "        return self(x).mul_(peak).round_().to(data.dtype)",
             "        return bicubic_upscale(x, self.scale).mul_(peak).round_().to(data.dtype)"),
    Mutation("colour", "colour matrix ignored: every source decoded as BT.601 limited range",
             "streamsr/io/pyav.py",
             "        src_colorspace=swscale_matrix(int(frame.colorspace)),\n        src_color_range=frame.color_range or None,",
             "        src_colorspace=5,\n        src_color_range=1,"),  # SWS_CS_ITU601, MPEG (limited) range
    Mutation("orientation", "orientation reversed: EXIF 6 and 8 turn the other way",
             "streamsr/io/images.py",
             "6: lambda a: np.rot90(a, -1), 7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],\n           8: lambda a: np.rot90(a, 1)}",
             "6: lambda a: np.rot90(a, 1), 7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],\n           8: lambda a: np.rot90(a, -1)}"),
    Mutation("psnr", "PSNR unshaved: eval scores the border pixels too",
             "streamsr/train/evaluate.py",
             "        ps.append(psnr(sr, hr, crop_border=scale))",
             "        ps.append(psnr(sr, hr, crop_border=0))"),
    Mutation("pts", "a pts off by one frame: every output frame one frame late",
             "streamsr/io/encode.py",
             "            frame.pts = pts\n",
             "            frame.pts = pts + round(1 / (self.info.fps * self.info.time_base))\n"),
    Mutation("audio", "an audio packet dropped: the first copied audio packet never reaches the output",
             "streamsr/io/passthrough.py",
             "        if index in self._copies:\n            packet.stream = self._copies[index]\n",
             "        if index in self._copies:\n"
             "            if packet.stream.type == \"audio\" and not getattr(self, \"_one_dropped\", False):\n"
             "                self._one_dropped = True\n"
             "                return\n"
             "            packet.stream = self._copies[index]\n"),
]


def working_copy(into: Path) -> None:
    """The repository's tracked and untracked-but-not-ignored files, as they are now."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, into / name)


def apply(mutation: Mutation, tree: Path) -> None:
    path = tree / mutation.path
    text = path.read_text()
    if text.count(mutation.old) != 1:
        raise SystemExit(f"{mutation.name}: the code to break is not (exactly once) in {mutation.path}; update this script")
    path.write_text(text.replace(mutation.old, mutation.new))


def run_suite(tree: Path, tests: list[str]) -> tuple[int, int, list[str], float]:
    """(failed, passed, failed test ids, seconds) for the suite run inside `tree`."""
    # PYTHONPATH puts the copy's package ahead of the editable install, for the test process and
    # for the CLI processes the tests start.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *tests],
                          cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    out = done.stdout + done.stderr
    failed_ids = re.findall(r"^FAILED (\S+)", out, flags=re.M) + re.findall(r"^ERROR (\S+)", out, flags=re.M)
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (failed|passed|errors?)", out.splitlines()[-1] if out else "")}
    return counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0), counts.get("passed", 0), failed_ids, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"breakages to apply (default all: {', '.join(m.name for m in MUTATIONS)})")
    parser.add_argument("--tests", action="append", default=[], help="test paths to run (default: the whole suite)")
    parser.add_argument("--baseline", action="store_true", help="also run the suite without any breakage")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    rows = []
    for mutation in ([None] if args.baseline else []) + chosen:
        with tempfile.TemporaryDirectory(prefix="streamsr-mutation-") as tmp:
            tree = Path(tmp)
            working_copy(tree)
            if mutation is not None:
                apply(mutation, tree)
            failed, passed, ids, seconds = run_suite(tree, args.tests)
        name, what = (mutation.name, mutation.what) if mutation else ("none", "the code as it is")
        verdict = ("caught" if failed else "MISSED") if mutation else ("passes" if not failed else "FAILS")
        shown = ", ".join(i.split("::")[-1] for i in ids[:4]) + (" ..." if len(ids) > 4 else "")
        rows.append(f"| {name} | {what} | {verdict} | {failed} failed, {passed} passed | {shown} |")
        print(rows[-1], flush=True)
    print("\n| breakage | what | suite | tests | failing (first four) |\n| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
