"""Fuzzing the CLI with damaged containers: seeded byte-level mutations of small real files.

Used by tests/test_fuzz.py (a few dozen cases in the suite) and benchmarks/fuzz.py (a thousand).
Each case runs `streamsr upscale` on a mutated file and is judged by what a user relies on:
an exit code the README documents, one line of error and no traceback, and in the output folder
either nothing or the finished output, never a partial file.
"""

from __future__ import annotations

import random
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from conftest import make_clip

from streamsr.cli import cli
from streamsr.partials import is_temporary

DOCUMENTED_EXIT_CODES = frozenset({0, 2, 3, 4, 6})


def make_seeds(folder: Path) -> list[Path]:
    """The three small containers the mutations start from: H.264/AAC MP4, MKV with subtitles,
    VP9/Opus WebM (each with several keyframes)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        make_clip(folder / "seed.mp4", codec="libx264", frames=24, options={"g": "8", "preset": "ultrafast"}),
        make_clip(folder / "seed.mkv", codec="mpeg4", frames=24, subtitle=True, options={"g": "8"}),
        make_clip(folder / "seed.webm", codec="libvpx-vp9", frames=24, audio_codec="libopus",
                  options={"g": "8", "deadline": "realtime", "cpu-used": "8"}),
    ]


def _flip_bytes(data: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 24)):
        data[rng.randrange(len(data))] = rng.randrange(256)


def _truncate(data: bytearray, rng: random.Random) -> None:
    del data[rng.randint(16, len(data) - 1):]


def _zero_run(data: bytearray, rng: random.Random) -> None:
    start = rng.randrange(len(data))
    end = min(len(data), start + rng.randint(8, 2048))
    data[start:end] = bytes(end - start)


def _duplicate_run(data: bytearray, rng: random.Random) -> None:
    start = rng.randrange(len(data))
    chunk = data[start:start + rng.randint(16, 4096)]
    at = rng.randrange(len(data))
    data[at:at] = chunk


def _delete_run(data: bytearray, rng: random.Random) -> None:
    start = rng.randrange(len(data))
    del data[start:start + rng.randint(1, 1024)]


def _header_bytes(data: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 6)):  # the headers hold sizes, codecs and timing
        data[rng.randrange(min(len(data), 512))] = rng.randrange(256)


MUTATIONS: dict[str, Callable[[bytearray, random.Random], None]] = {
    "flip": _flip_bytes, "truncate": _truncate, "zero": _zero_run,
    "duplicate": _duplicate_run, "delete": _delete_run, "header": _header_bytes,
}


def mutate(seed_file: Path, case: int, dst: Path) -> str:
    """Write mutation number `case` of `seed_file` to `dst`; returns what was done to it."""
    rng = random.Random(f"{seed_file.name}:{case}")
    data = bytearray(seed_file.read_bytes())
    names = rng.sample(sorted(MUTATIONS), rng.randint(1, 2))
    for name in names:
        MUTATIONS[name](data, rng)
    dst.write_bytes(bytes(data))
    return "+".join(names)


@dataclass(frozen=True)
class Verdict:
    """One case's outcome. `problem` is empty when the CLI behaved as documented."""

    case: str
    exit_code: int
    problem: str


class HangError(Exception):
    """Raised in a case that ran past its time limit."""


def _hang(_signum: int, _frame: object) -> None:
    raise HangError


def judge(src: Path, out_dir: Path, weights: Path, case: str, *, seconds: int = 120) -> Verdict:
    """Run `streamsr upscale` on `src` into an empty `out_dir` and judge the result; a run longer
    than `seconds` is a hang."""
    out = out_dir / f"{src.stem}_x2.mkv"
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(seconds)
    try:
        result = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(out), "--model", str(weights),
                                          "--scale", "2", "--device", "cpu", "--backend", "torch", "--quiet"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    code = result.exit_code
    if isinstance(result.exception, HangError):
        return Verdict(case, code, f"hang: still running after {seconds} s")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(result.exception)).strip().splitlines()[-1]
        return Verdict(case, code, f"traceback: {tb}")
    if code not in DOCUMENTED_EXIT_CODES:
        return Verdict(case, code, f"undocumented exit code {code}")
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    if code != 0 and len(errors) != 1:
        return Verdict(case, code, f"{len(errors)} error lines")
    left = sorted(p.name for p in out_dir.iterdir())
    if any(is_temporary(p) for p in out_dir.iterdir()):
        return Verdict(case, code, f"partial file left: {left}")
    if code == 0 and left != [out.name]:
        return Verdict(case, code, f"exit 0 but the folder holds {left}")
    if left and (code not in (0, 2) or left != [out.name]):  # exit 2 keeps what decoded, finished
        return Verdict(case, code, f"exit {code} but the folder holds {left}")
    return Verdict(case, code, "")
