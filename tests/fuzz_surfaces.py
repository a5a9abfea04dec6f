"""Fuzzing the surfaces around a clean source: pipes and URLs that break off, playlists on a full
disk, resumed segments whose files were damaged, frame folders and outputs that are already there.

Used by tests/test_fuzz.py (a few cases in the suite) and benchmarks/fuzz.py --surfaces (hundreds).
The source is always intact, so every run that exits 0 must give exactly the pictures and times of
a clean run: anything else is a *silent bad output*. A run that cannot finish must say so with a
documented exit code and one error line, leave no partial file, and delete nothing of the user's.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from click.testing import CliRunner
from conftest import make_clip

from streamsr.cli import cli
from streamsr.partials import is_temporary

DOCUMENTED_EXIT_CODES = frozenset({0, 2, 3, 4, 6})


def pictures(path: Path) -> list[tuple[float, str]]:
    """(time, sha256 of the RGB pixels) of each frame of a video, a playlist or a frame folder."""
    if path.is_dir():
        times = [float(line.split()[0]) / 1000 for line in (path / "timestamps.txt").read_text().splitlines()[1:]]
        frames = sorted(p for p in path.iterdir() if p.suffix == ".png")
        return [(round(t, 3), hashlib.sha256(av.open(str(f)).decode(video=0).__next__().to_ndarray(format="rgb24")
                                              .tobytes()).hexdigest()) for t, f in zip(times, frames, strict=False)]
    with av.open(str(path)) as c:
        return [(round(f.time, 3), hashlib.sha256(f.to_ndarray(format="rgb24").tobytes()).hexdigest())
                for f in c.decode(video=0)]


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    output: str
    error: BaseException | None = None


@dataclass(frozen=True)
class Verdict:
    """One case: `problem` is empty when the product behaved as documented; `kind` names the
    failure class (traceback, hang, code, lines, leftover, lost, silent)."""

    case: str
    exit_code: int
    problem: str = ""
    kind: str = ""


class Lab:
    """The seed clip, the weights, the clean outputs of each surface, and a scratch folder."""

    def __init__(self, folder: Path, weights: Path) -> None:
        self.folder, self.weights = folder, weights
        shutil.rmtree(folder, ignore_errors=True)  # the clean runs refuse to overwrite an earlier lab's
        folder.mkdir(parents=True)
        self.seed = make_clip(folder / "seed.mkv", codec="libx264", frames=36, fps=12,
                              options={"g": "12", "keyint_min": "12", "sc_threshold": "0", "preset": "ultrafast"})
        self.model = ["--model", str(weights), "--device", "cpu", "--runtime", "torch", "--quiet"]
        self.clean: dict[str, list[tuple[float, str]]] = {}
        for surface, run in (("video", self._clean_video), ("playlist", self._clean_playlist),
                             ("segments", self._clean_segments), ("frames", self._clean_frames)):
            self.clean[surface] = pictures(run(folder / f"clean-{surface}"))

    def cli(self, *args: str) -> Outcome:
        result = CliRunner().invoke(cli, [*args, *self.model])
        return Outcome(result.exit_code, result.output, result.exception)

    def _clean_video(self, where: Path) -> Path:
        where.mkdir()
        assert self.cli("upscale", str(self.seed), "-o", str(where / "o.mkv")).exit_code == 0
        return where / "o.mkv"

    def _clean_playlist(self, where: Path) -> Path:
        where.mkdir()
        assert self.cli("upscale", str(self.seed), "-o", str(where / "o.m3u8")).exit_code == 0
        return where / "o.m3u8"

    def _clean_segments(self, where: Path) -> Path:
        where.mkdir()
        assert self.cli("upscale", str(self.seed), "-o", str(where / "o.mkv"), "--segment-seconds", "1").exit_code == 0
        return where / "o.mkv"

    def _clean_frames(self, where: Path) -> Path:
        assert self.cli("upscale", str(self.seed), "--frames-out", str(where)).exit_code == 0
        return where


# -- the surfaces: each sets up one case in `case_dir` and returns (outcome, output, clean, user files) --

Case = tuple[Outcome, Path, str, dict[Path, bytes]]


def _pipe_cut(lab: Lab, rng: random.Random, case_dir: Path) -> tuple[str, Case]:
    data = lab.seed.read_bytes()
    n = rng.choice([len(data), rng.randint(1, len(data) - 1)])
    out = case_dir / "o.mkv"
    done = subprocess.run([sys.executable, "-m", "streamsr", "upscale", "-", "-o", str(out), *lab.model],
                          input=data[:n], capture_output=True, timeout=300)
    return f"pipe of {n}/{len(data)} bytes", (Outcome(done.returncode, done.stderr.decode()), out, "video", {})


@contextlib.contextmanager
def _server(data: bytes, cut: int, ranges: bool) -> Iterator[str]:
    """A loopback HTTP server whose first answer breaks off after `cut` bytes (see test_no_silent_loss)."""
    count = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            count[0] += 1
            rng = self.headers.get("Range")
            start = int(rng.split("=")[1].split("-")[0]) if ranges and rng else 0
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            body = data[start:] if count[0] > 1 else data[start:][:cut]
            with contextlib.suppress(OSError):
                self.wfile.write(body)
                if count[0] == 1:
                    self.connection.shutdown(2)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/seed.mkv"
    finally:
        server.shutdown()
        server.server_close()


def _http_cut(lab: Lab, rng: random.Random, case_dir: Path) -> tuple[str, Case]:
    data = lab.seed.read_bytes()
    cut, ranges, reconnect = rng.randint(1, len(data)), rng.random() < 0.5, rng.random() < 0.7
    out = case_dir / "o.mkv"
    with _server(data, cut, ranges) as url:
        outcome = lab.cli("upscale", url, "-o", str(out), *(["--reconnect"] if reconnect else []))
    what = f"http cut at {cut}/{len(data)}, {'ranges' if ranges else 'no ranges'}, {'' if reconnect else 'no '}reconnect"
    return what, (outcome, out, "video", {})


def _playlist_disk(lab: Lab, rng: random.Random, case_dir: Path) -> tuple[str, Case]:
    kib = rng.choice([8, 16, 32, 64, 128, 256, 4096])
    disk = case_dir / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(disk)], capture_output=True).returncode:
        raise MountError
    try:
        out = disk / "o.m3u8"
        outcome = lab.cli("upscale", str(lab.seed), "-o", str(out))
        leftovers = sorted(p.name for p in disk.iterdir())
        clean = pictures(out) == lab.clean["playlist"] if outcome.exit_code == 0 else None
    finally:
        subprocess.run(["umount", str(disk)], check=False)
    # The disk is gone with its files: report what it held through a stand-in folder.
    stand_in = case_dir / "held"
    stand_in.mkdir()
    for name in leftovers:
        (stand_in / name).touch()
    if clean is not None:
        (stand_in / ".clean" if clean else stand_in / ".differs").touch()
    return f"playlist onto a {kib} KiB disk", (outcome, stand_in / "o.m3u8", "playlist", {})


def _damage(segment: Path, others: list[bytes], rng: random.Random) -> str:
    how = rng.choice(["flip", "truncate", "empty", "swap", "record", "delete"])
    if how == "flip":
        data = bytearray(segment.read_bytes())
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        segment.write_bytes(bytes(data))
    elif how == "truncate":
        segment.write_bytes(segment.read_bytes()[: rng.randint(0, segment.stat().st_size - 1)])
    elif how == "empty":
        segment.write_bytes(b"")
    elif how == "swap" and others:
        segment.write_bytes(rng.choice(others))
    elif how == "record":
        segment.with_suffix(".json").write_text(json.dumps({"frames": rng.randint(0, 30), "sha256": "0" * 64}))
    else:
        segment.unlink()
    return how


def _resume_damage(lab: Lab, rng: random.Random, case_dir: Path) -> tuple[str, Case]:
    from streamsr.config import UpscaleConfig
    from streamsr.segments import upscale_segment, upscale_segmented, work_folder
    from streamsr.stages import make_upscaler

    out = case_dir / "o.mkv"
    cfg = UpscaleConfig(model=str(lab.weights), device="cpu", backend="torch")
    up = make_upscaler(cfg)
    done = rng.randint(1, 3)

    def some_then_stop(jobs: list, _progress: object) -> None:
        for job in jobs[:done]:
            upscale_segment(job, up)
        raise KeyboardInterrupt

    with contextlib.suppress(KeyboardInterrupt):
        upscale_segmented(lab.seed, out, cfg, segment_seconds=1.0, resume=True, upscaler=up, run_segments=some_then_stop)
    finished = sorted(work_folder(out).glob("segment-*.mp4"))
    contents = {s: s.read_bytes() for s in finished}  # what a swap copies, read before anything is damaged
    hows = [_damage(s, [data for o, data in contents.items() if o != s], rng)
            for s in rng.sample(finished, rng.randint(1, len(finished)))]
    outcome = lab.cli("upscale", str(lab.seed), "-o", str(out), "--segment-seconds", "1", "--resume")
    return f"resume after {done} segments, damaged: {'+'.join(hows)}", (outcome, out, "segments", {})


def _frames_folder(lab: Lab, rng: random.Random, case_dir: Path) -> tuple[str, Case]:
    folder = case_dir / "frames"
    state = rng.choice(["none", "empty", "earlier", "earlier+foreign", "foreign"])
    user: dict[Path, bytes] = {}
    if state != "none":
        folder.mkdir()
    if state.startswith("earlier"):
        shutil.copytree(lab.folder / "clean-frames", folder, dirs_exist_ok=True)
        (folder / "000001.png").write_bytes(b"an older frame")
    if state.endswith("foreign"):
        user[folder / "notes.txt"] = b"the user's own file"
        (folder / "notes.txt").write_bytes(user[folder / "notes.txt"])
    overwrite = rng.random() < 0.7
    outcome = lab.cli("upscale", str(lab.seed), "--frames-out", str(folder), *(["--overwrite"] if overwrite else []))
    return f"frames into a folder ({state}), {'' if overwrite else 'no '}--overwrite", (outcome, folder, "frames", user)


def _existing_output(lab: Lab, rng: random.Random, case_dir: Path) -> tuple[str, Case]:
    out = case_dir / "o.mkv"
    user = {out: b"an earlier file the user keeps"}
    out.write_bytes(user[out])
    overwrite = rng.random() < 0.5
    outcome = lab.cli("upscale", str(lab.seed), "-o", str(out), *(["--overwrite"] if overwrite else []))
    if overwrite:
        user = {}
    return f"existing output, {'' if overwrite else 'no '}--overwrite", (outcome, out, "video", user)


SURFACES: dict[str, Callable[[Lab, random.Random, Path], tuple[str, Case]]] = {
    "pipe": _pipe_cut, "http": _http_cut, "playlist": _playlist_disk, "resume": _resume_damage,
    "frames": _frames_folder, "output": _existing_output,
}


class MountError(Exception):
    """A small disk cannot be mounted here (it needs root and a kernel that lets it)."""


def judge_surface(lab: Lab, surface: str, number: int, case_dir: Path) -> Verdict:
    """Run case `number` of `surface` in an empty `case_dir` and judge it (exit code -1 and no
    problem: the case cannot run on this machine)."""
    if surface == "playlist" and os.geteuid() != 0:
        return Verdict(f"{surface} #{number}", -1, "")  # mounting a small disk needs root
    rng = random.Random(f"{surface}:{number}")
    try:
        what, (outcome, output, clean, user) = SURFACES[surface](lab, rng, case_dir)
    except MountError:
        return Verdict(f"{surface} #{number}", -1, "")
    except subprocess.TimeoutExpired:
        return Verdict(f"{surface} #{number}", -1, "hang: still running after 300 s", "hang")
    name = f"{surface} #{number} ({what})"
    code = outcome.exit_code
    if outcome.error is not None and not isinstance(outcome.error, SystemExit):
        last = "".join(traceback.format_exception(outcome.error)).strip().splitlines()[-1]
        return Verdict(name, code, f"traceback: {last}", "traceback")
    if "Traceback (most recent call last)" in outcome.output:
        return Verdict(name, code, "traceback on stderr", "traceback")
    if code not in DOCUMENTED_EXIT_CODES:
        return Verdict(name, code, f"undocumented exit code {code}", "code")
    errors = [line for line in outcome.output.splitlines() if line.startswith("Error:")]
    if code != 0 and len(errors) != 1:
        return Verdict(name, code, f"{len(errors)} error lines", "lines")
    for path, data in user.items():
        if not path.is_file() or path.read_bytes() != data:
            return Verdict(name, code, f"the user's {path.name} was changed or deleted", "lost")
    holder = output.parent
    if holder.exists() and any(is_temporary(p) or p.name.endswith(".segments") and code == 0
                               for p in holder.iterdir()):
        return Verdict(name, code, f"partial files left: {sorted(p.name for p in holder.iterdir())}", "leftover")
    if code == 0:
        if surface == "playlist":
            good = (holder / ".clean").exists()
        else:
            good = output.exists() and pictures(output) == lab.clean[clean]
        if not good:
            return Verdict(name, code, "exit 0, but the output's frames, times or pixels differ from a clean run", "silent")
    elif surface == "playlist" and any(not p.name.startswith(".") for p in holder.iterdir()):
        return Verdict(name, code, f"exit {code}, but playlist files were left: {sorted(p.name for p in holder.iterdir())}",
                       "leftover")
    return Verdict(name, code)


__all__ = ["SURFACES", "Lab", "Verdict", "judge_surface", "pictures"]
