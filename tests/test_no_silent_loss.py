"""No silent loss: a run that cannot finish its output says so with a documented exit code and
leaves nothing half-written, a second run never damages a first, and no user file is deleted."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from click.testing import CliRunner
from conftest import make_clip
from safetensors.torch import save_file

from streamsr.cli import cli
from streamsr.models.archs.safdn import SAFDN

CPU = ["--device", "cpu", "--precision", "fp32", "--runtime", "torch"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, *CPU])
    return result.exit_code, result.output


@pytest.fixture()
def small_disk(tmp_path: Path):  # noqa: ANN201
    """A 320 KiB tmpfs: room for the start of an output, not for all of it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 frames of 160x120 with a keyframe every 12: a few hundred KiB once upscaled."""
    return make_clip(tmp_path_factory.mktemp("long") / "long.mkv", width=160, height=120, frames=48, fps=24,
                     codec="libx264", options={"g": "12", "keyint_min": "12", "sc_threshold": "0", "crf": "0"})


@pytest.mark.parametrize("kind", ["playlist", "segments"])
def test_a_full_disk_is_exit_3_and_leaves_nothing(kind: str, long_clip: Path, small_disk: Path, tiny_weights: Path) -> None:
    args = {"playlist": ["-o", str(small_disk / "live.m3u8")],
            "segments": ["-o", str(small_disk / "out.mkv"), "--segment-seconds", "0.5"]}[kind]
    if kind == "segments":  # the work folder sits beside the output, on the same small disk
        args += ["--resume"]
    code, text = run("upscale", str(long_clip), *args, "-m", str(tiny_weights), "--codec", "ffv1", "-q")
    assert code == 3, text
    assert "disk is full" in text and "Traceback" not in text and len(text.strip().splitlines()) == 1
    left = sorted(p.name for p in small_disk.iterdir())
    # A resumable run keeps its finished segments (only those) for the next try; nothing else stays.
    assert left == [] or (kind == "segments" and left == [".out.mkv.segments"])
    if left:
        work = small_disk / left[0]
        assert all(p.name == "plan.json" or p.name.startswith("segment-") for p in work.iterdir())


def test_a_second_run_on_the_same_output_refuses_and_leaves_the_first_alone(media_dir: Path, tmp_path: Path,
                                                                            tiny_weights: Path) -> None:
    long_clip = make_clip(media_dir / "for-two-runs.mkv", width=96, height=64, frames=240, audio=False)
    out = tmp_path / "out.mkv"
    first = subprocess.Popen([sys.executable, "-m", "streamsr", "upscale", "-", "-o", str(out), "-m", str(tiny_weights),
                              *CPU, "-q"], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    data = long_clip.read_bytes()
    first.stdin.write(data[: len(data) // 2])  # the first run waits for the rest
    first.stdin.flush()
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.partial-*")) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    partial = list(tmp_path.glob(".out.partial-*"))
    assert len(partial) == 1 and first.poll() is None
    code, text = run("upscale", str(long_clip), "-o", str(out), "-m", str(tiny_weights), "--overwrite", "-q")
    assert code == 3 and "another run is writing it now" in text
    assert partial[0].exists()  # the first run's work is untouched
    first.stdin.write(data[len(data) // 2 :])
    first.stdin.close()
    assert first.wait(timeout=120) == 0, first.stderr.read().decode()
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 240
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]


def test_a_pipe_that_loses_only_its_last_frame_is_exit_2(tmp_path: Path, tiny_weights: Path) -> None:
    clip = make_clip(tmp_path / "clip.mkv", frames=36, fps=12, codec="libx264", audio=False)
    with av.open(str(clip)) as c:
        last = max((p for p in c.demux(video=0) if p.size), key=lambda p: p.pos)
    data = clip.read_bytes()[: last.pos]  # everything before the file's last packet
    done = subprocess.run([sys.executable, "-m", "streamsr", "upscale", "-", "-o", str(tmp_path / "o.mkv"),
                           "-m", str(tiny_weights), "-q"], input=data, capture_output=True, timeout=120)
    assert done.returncode == 2, done.stderr.decode()
    assert "35 frames were upscaled" in done.stderr.decode() and "1 frames lost" in done.stderr.decode()


def test_frames_overwrite_never_deletes_other_files(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    folder = tmp_path / "frames"
    code, text = run("upscale", str(clip_mp4), "--frames-out", str(folder), "-m", str(tiny_weights), "-q")
    assert code == 0, text
    (folder / "notes.docx").write_bytes(b"a document")
    code, text = run("upscale", str(clip_mp4), "--frames-out", str(folder), "-m", str(tiny_weights), "--overwrite", "-q")
    assert code == 3 and "notes.docx" in text
    assert (folder / "notes.docx").read_bytes() == b"a document" and len(list(folder.glob("*.png"))) == 12
    (folder / "notes.docx").unlink()
    code, text = run("upscale", str(clip_mp4), "--frames-out", str(folder), "-m", str(tiny_weights), "--overwrite", "-q")
    assert code == 0, text  # an earlier sequence alone is replaced


@pytest.mark.parametrize(("hparams", "why"), [("not json", "Expecting value"), ('["feat", 8]', "JSON object"),
                                               ('{"feat": 8, "colour": 1}', "colour"), ('{"feat": "wide"}', "")])
def test_malformed_weight_metadata_is_one_line(hparams: str, why: str, clip_mp4: Path, tmp_path: Path) -> None:
    path = tmp_path / "odd.safetensors"
    state = {k: v.contiguous() for k, v in SAFDN(feat=8, blocks=1, esa=4, scale=2).state_dict().items()}
    save_file(state, str(path), metadata={"arch": "safdn", "hparams": hparams})
    for args in (["upscale", str(clip_mp4), "-o", str(tmp_path / "o.mkv"), "-m", str(path), "-q"], ["models", str(path)]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 4, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "its metadata does not describe a safdn network" in lines[0] and why in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.safetensors"]


def test_a_url_is_named_as_given(tmp_path: Path, tiny_weights: Path) -> None:
    """A source URL that breaks off is named as typed (not folded like a path: http:/host)."""
    import functools
    import http.server
    import threading

    full = make_clip(tmp_path / "whole.mkv", frames=48, audio=False)
    served = tmp_path / "served"
    served.mkdir()
    (served / "cut.mkv").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # the CLI's output is under test, not the server's log
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cut.mkv"
    try:
        code, text = run("upscale", url, "-o", str(tmp_path / "o.mkv"), "-m", str(tiny_weights), "-q")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 2 and url in text and "http:/127" not in text, text
    assert len(text.strip().splitlines()) == 1 and text.startswith("Error: ")


def _cut_then_serve_again(data: bytes, cut: int, ranges: bool):  # noqa: ANN202
    """A loopback HTTP server whose first response breaks off after `cut` bytes; later requests get
    the rest from the asked byte (`ranges`) or, as servers that ignore ranges do, the whole file again."""
    import http.server
    import threading

    served = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            served.append(self.headers.get("Range"))
            start = int(self.headers["Range"].split("=")[1].split("-")[0]) if ranges and self.headers.get("Range") else 0
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes" if ranges else "none")
            self.end_headers()
            body = data[start:]
            if len(served) == 1:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, served


@pytest.mark.parametrize("suffix", [".mkv", ".ts"])
@pytest.mark.parametrize("ranges", [True, False], ids=["ranges", "no-ranges"])
def test_a_reconnect_never_splices_a_restarted_stream(suffix: str, ranges: bool, tmp_path: Path, tiny_weights: Path) -> None:
    clip = make_clip(tmp_path / f"clip{suffix}", frames=48, fps=12)
    server, served = _cut_then_serve_again(clip.read_bytes(), clip.stat().st_size // 2, ranges)
    url = f"http://127.0.0.1:{server.server_address[1]}/clip{suffix}"
    out = tmp_path / "o.mkv"
    try:
        code, text = run("upscale", url, "-o", str(out), "-m", str(tiny_weights), "--reconnect", "-q")
    finally:
        server.shutdown()
        server.server_close()
    assert len(served) >= 2  # the connection broke and was made again
    if ranges:  # resumed where it broke: the whole clip, each frame once, at its time
        assert code == 0, text
        with av.open(str(out)) as c, av.open(str(clip)) as s:
            times = [f.time for f in c.decode(video=0)]
            assert len(times) == 48 and times == sorted(times)
            assert [round(t, 2) for t in times] == [round(f.time, 2) for f in s.decode(video=0)]
    else:  # the file came again from its start: never spliced in, and never exit 0
        assert code == 2, text
        assert "started over" in text and len(text.strip().splitlines()) == 1
        with av.open(str(out)) as c:
            times = [f.time for f in c.decode(video=0)]
        assert 0 < len(times) < 48 and times == sorted(times)


def test_a_source_that_sends_nothing_is_said_to_have_timed_out(tmp_path: Path) -> None:
    import socket
    import threading

    from streamsr.errors import InputError
    from streamsr.io.stream import StreamSource

    listener = socket.create_server(("127.0.0.1", 0))
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()  # accepts, says nothing
    try:
        with pytest.raises(InputError, match=r"timed out: no data for 1 s"):
            StreamSource(f"tcp://127.0.0.1:{listener.getsockname()[1]}", fmt="mpegts", timeout=1)
    finally:
        listener.close()


# -- resume trusts nothing it has not verified --------------------------------------------------

def _decoded(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format="rgb24").tobytes()) for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def resumable(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path):  # noqa: ANN201
    """A clip of four 1 s segments, its uninterrupted segmented output, and the config."""
    from streamsr.config import UpscaleConfig
    from streamsr.segments import upscale_segmented

    folder = tmp_path_factory.mktemp("resume")
    clip = make_clip(folder / "film.mkv", frames=48, fps=12, codec="libx264", audio=False,
                     options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})
    cfg = UpscaleConfig(scale=2, model=str(tiny_weights), device="cpu", precision="fp32", backend="torch",
                        encode=__import__("streamsr.io.codecs", fromlist=["EncodeConfig"]).EncodeConfig(codec="ffv1"))
    whole = folder / "whole.mkv"
    upscale_segmented(clip, whole, cfg, segment_seconds=1.0)
    return clip, cfg, _decoded(whole)


def _stopped_run(clip: Path, out: Path, cfg: object) -> Path:
    """A resumable run stopped after its first two segments; its work folder."""
    from streamsr.segments import upscale_segment, upscale_segmented, work_folder
    from streamsr.stages import make_upscaler

    up = make_upscaler(cfg)

    def two_then_stop(jobs: list, _progress: object) -> None:
        for job in jobs[:2]:
            upscale_segment(job, up)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale_segmented(clip, out, cfg, segment_seconds=1.0, resume=True, run_segments=two_then_stop)
    return work_folder(out)


@pytest.mark.parametrize("damage", ["bytes", "swapped", "empty", "cut"])
def test_resume_redoes_a_segment_that_fails_verification(damage: str, resumable: tuple, tmp_path: Path) -> None:
    from streamsr.segments import upscale_segmented

    clip, cfg, whole = resumable
    out = tmp_path / "out.mkv"
    work = _stopped_run(clip, out, cfg)
    first, second = work / "segment-00000.mp4", work / "segment-00001.mp4"
    data = bytearray(first.read_bytes())
    if damage == "bytes":
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
        first.write_bytes(bytes(data))
    elif damage == "swapped":
        first.write_bytes(second.read_bytes())
    elif damage == "empty":
        first.write_bytes(b"")
    else:
        first.write_bytes(bytes(data[: len(data) // 3]))
    warnings: list[str] = []
    result = upscale_segmented(clip, out, cfg, segment_seconds=1.0, resume=True, on_warning=warnings.append)
    assert [w for w in warnings if w.startswith("segment 0 is upscaled again")], warnings
    assert result.frames == 48 and _decoded(out) == whole  # every frame, at its time, with the right pixels


def test_resume_starts_afresh_for_another_source_of_the_same_size_and_time(resumable: tuple, tmp_path: Path) -> None:
    import os

    from streamsr.segments import upscale_segmented

    clip, cfg, _whole = resumable
    src = tmp_path / "film.mkv"
    src.write_bytes(clip.read_bytes())
    out = tmp_path / "out.mkv"
    work = _stopped_run(src, out, cfg)
    assert len(list(work.glob("segment-*.mp4"))) == 2
    stat = src.stat()
    with av.open(str(src)) as c:  # a frame's picture data, deep inside its packet
        packet = [p for p in c.demux(video=0) if p.size][40]
        at = packet.pos + packet.size // 2
    data = bytearray(src.read_bytes())
    data[at : at + 16] = bytes(b ^ 0xFF for b in data[at : at + 16])  # another file: the same size,
    src.write_bytes(bytes(data))  # the same packets and keyframes (so the same plan), and the same time:
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert src.stat().st_size == stat.st_size and src.stat().st_mtime_ns == stat.st_mtime_ns
    asked: list[int] = []

    def record_and_stop(jobs: list, _progress: object) -> None:
        asked.extend(job.segment.index for job in jobs)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale_segmented(src, out, cfg, segment_seconds=1.0, resume=True, run_segments=record_and_stop)
    assert asked == [0, 1, 2, 3]  # nothing of the other file's run is reused


def test_an_output_folder_removed_during_the_run_is_exit_3(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    import shutil

    clip = make_clip(media_dir / "for-removed-folder.mkv", width=96, height=64, frames=240, audio=False)
    folder = tmp_path / "out"
    folder.mkdir()
    run_ = subprocess.Popen([sys.executable, "-m", "streamsr", "upscale", "-", "-o", str(folder / "o.mkv"),
                             "-m", str(tiny_weights), *CPU, "-q"], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    data = clip.read_bytes()
    run_.stdin.write(data[: len(data) // 2])
    run_.stdin.flush()
    deadline = time.monotonic() + 60
    while not any(folder.iterdir()) and time.monotonic() < deadline and run_.poll() is None:
        time.sleep(0.05)
    assert any(folder.iterdir()), "the run never started writing"
    shutil.rmtree(folder)
    run_.stdin.write(data[len(data) // 2 :])
    run_.stdin.close()
    err = run_.stderr.read().decode()
    assert run_.wait(timeout=120) == 3, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and not folder.exists()


def test_a_source_that_declares_no_length_is_said_so(tmp_path: Path, tiny_weights: Path) -> None:
    clip = make_clip(tmp_path / "clip.ts", frames=12, audio=False)
    done = subprocess.run([sys.executable, "-m", "streamsr", "upscale", "-", "-o", str(tmp_path / "o.mkv"),
                           "-m", str(tiny_weights), *CPU, "-q"], input=clip.read_bytes(), capture_output=True)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "does not say how long it is (mpegts)" in err and "12 frames were written" in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_start_up_is_one_line(signum: int, clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    """Ctrl-C or SIGTERM while the command still loads torch and FFmpeg: one line, 128 + signal."""
    proc = subprocess.Popen([sys.executable, "-m", "streamsr", "upscale", str(clip_mp4), "-o", str(tmp_path / "o.mkv"),
                             "-m", str(tiny_weights), *CPU, "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:  # the moment torch's libraries are being loaded
        try:
            if "libtorch" in maps.read_text():
                break
        except OSError:
            pass
        time.sleep(0.005)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 128 + signum, err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"Error: stopped by {signal.Signals(signum).name}")
    assert list(tmp_path.iterdir()) == []
