"""Pipes and network I/O: stdin/stdout, an HTTP source and a TCP sink, all real processes and
sockets on the loopback interface."""

from __future__ import annotations

import functools
import http.server
import io
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from click.testing import CliRunner
from conftest import make_clip

from streamsr.cli import cli
from streamsr.upscaler import Upscaler

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "safdn-tiny-x2.safetensors"
MODEL = ["-s", "2", "-m", str(WEIGHTS), "--device", "cpu", "--backend", "torch"]


@pytest.fixture(scope="module")
def clip(media_dir: Path) -> Path:
    """24 frames at 12 fps (64x48) with AAC audio and an SRT cue, in Matroska."""
    return make_clip(media_dir / "stream-source.mkv", frames=24, subtitle=True)


def video(source: Path | io.BytesIO) -> tuple[tuple[int, int], list[float]]:
    with av.open(source if isinstance(source, io.BytesIO) else str(source)) as c:
        frames = list(c.decode(video=0))
        return (frames[0].width, frames[0].height), [round(float(f.pts * f.time_base), 3) for f in frames]


def packets(source: Path | io.BytesIO, kind: str) -> list[bytes]:
    if isinstance(source, io.BytesIO):
        source.seek(0)
    with av.open(source if isinstance(source, io.BytesIO) else str(source)) as c:
        stream = next(s for s in c.streams if s.type == kind)
        return [bytes(p) for p in c.demux(stream) if p.size]


def test_stdin_to_stdout(clip: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "streamsr", "upscale", "-", "-o", "-", "-f", "matroska", *MODEL],
                          input=clip.read_bytes(), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    out = io.BytesIO(done.stdout)  # only the video reaches stdout: the summary goes to stderr
    assert b"wrote stdout" in done.stderr
    size, times = video(out)
    out.seek(0)
    assert size == (128, 96)
    assert times == video(clip)[1] and len(times) == 24
    assert packets(out, "audio") == packets(clip, "audio")
    assert packets(out, "subtitle") == packets(clip, "subtitle")


def test_stdout_needs_a_format(clip: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "streamsr", "upscale", str(clip), "-o", "-", *MODEL],
                          capture_output=True, timeout=120)
    assert done.returncode == 3 and done.stdout == b""
    assert done.stderr.decode().strip() == ("Error: -: writing to stdout needs a container format; "
                                            "pass -f (e.g. -f matroska, -f mpegts)")


@pytest.fixture()
def http_server(clip: Path) -> Iterator[str]:
    """A static HTTP server on a free loopback port, serving the clip's folder."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # the CLI's output is under test, not the server's log
            pass

    handler = functools.partial(Quiet, directory=str(clip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_source(clip: Path, http_server: str, tmp_path: Path) -> None:
    out = tmp_path / "from-http.mkv"
    result = CliRunner().invoke(cli, ["upscale", f"{http_server}/{clip.name}", "-o", str(out), *MODEL, "-q"])
    assert result.exit_code == 0, result.output
    size, times = video(out)
    assert size == (128, 96) and times == video(clip)[1]
    assert packets(out, "audio") == packets(clip, "audio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["from-http.mkv"]


def test_missing_http_source_is_one_line(http_server: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["upscale", f"{http_server}/nothing.mkv", "-o", str(tmp_path / "x.mkv"), *MODEL, "-q"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {http_server}/nothing.mkv: cannot open") and "404" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_tcp_sink(clip: Path) -> None:
    """A listener on a free loopback port receives the upscaled MPEG-TS stream and decodes it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received = io.BytesIO()

    def receive() -> None:
        connection, _ = listener.accept()
        with connection:
            while chunk := connection.recv(65536):
                received.write(chunk)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    try:
        done = subprocess.run([sys.executable, "-m", "streamsr", "upscale", str(clip), "-o", f"tcp://127.0.0.1:{port}",
                               "-f", "mpegts", *MODEL, "-q"], capture_output=True, timeout=120)
        thread.join(timeout=30)
    finally:
        listener.close()
    assert done.returncode == 0, done.stderr.decode()
    received.seek(0)
    size, times = video(received)
    source_times = video(clip)[1]
    assert size == (128, 96) and len(times) == 24
    # MPEG-TS restarts the clock at its own offset; the spacing of the frames is the source's.
    assert [round(t - times[0], 3) for t in times] == [round(t - source_times[0], 3) for t in source_times]
    received.seek(0)
    with av.open(received) as c:
        assert [s.type for s in c.streams if s.type in ("video", "audio")] == ["video", "audio"]


def test_unreachable_sink_is_one_line_and_leaves_nothing(clip: Path, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    # The port is free again and nothing listens on it: the connection is refused.
    result = CliRunner().invoke(cli, ["upscale", str(clip), "-o", f"tcp://127.0.0.1:{port}", "-f", "mpegts", *MODEL, "-q"])
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: tcp://127.0.0.1:{port}: cannot write there")


def serve_once(data: bytes) -> tuple[int, threading.Thread]:
    """A loopback TCP server that sends `data` to its first client at once, then hangs up: a
    source that delivers faster than the model upscales, as a live one does."""
    listener = socket.create_server(("127.0.0.1", 0))

    def send() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(data)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def slow_upscale_frames(self: Upscaler, data):  # noqa: ANN001, ANN201
    """The model made slower than any decoder: 50 ms a frame, whatever the machine."""
    time.sleep(0.05 * len(data))
    return UPSCALE_FRAMES(self, data)


UPSCALE_FRAMES = Upscaler.upscale_frames


@pytest.mark.parametrize("policy", ["auto", "wait"])
def test_live_tcp_source_drops_frames_or_waits(media_dir: Path, tmp_path: Path, policy: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_clip(media_dir / "live.ts", width=96, height=64, frames=48, fps=24)
    port, server = serve_once(source.read_bytes())
    out = tmp_path / "live.mkv"
    # Frames arrive at once and are upscaled at 20 a second: the source outruns the model.
    monkeypatch.setattr(Upscaler, "upscale_frames", slow_upscale_frames)
    args = ["upscale", f"tcp://127.0.0.1:{port}", "-o", str(out), *MODEL, "--live-policy", policy, "-q"]
    result = CliRunner().invoke(cli, args)
    server.join(timeout=30)
    assert result.exit_code == 0, result.output
    _, source_times = video(source)
    size, times = video(out)
    assert size == (192, 128)
    if policy == "wait":
        assert len(times) == 48 and "dropped" not in result.output
        return
    # auto is drop for a TCP stream: fewer frames, each at its own source time, the rest counted.
    dropped = int(result.output.split("warning: ")[1].split(" frame(s) dropped")[0])
    assert dropped > 0 and len(times) + dropped == 48
    start = source_times[0]
    assert set(times) <= {round(t - start + times[0], 3) for t in source_times}  # a subset, in order
    assert times == sorted(times)


def test_hls_playlist_output(clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "hls" / "live.m3u8"
    out.parent.mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    result = CliRunner().invoke(cli, ["upscale", str(clip), "-o", str(out), *MODEL, "-q"])
    assert result.exit_code == 0, result.output
    assert "subtitle" in result.output  # HLS carries no subtitle stream here: said, not silently dropped
    assert list((tmp_path / "cwd").iterdir()) == []  # no stray file in the working folder
    # The playlist names its media files after itself (not after a hidden temporary name).
    media = sorted(p.name for p in out.parent.iterdir() if p.suffix == ".ts")
    assert media and all(name.startswith("live") for name in media)
    assert all(line in media for line in out.read_text().splitlines() if line and not line.startswith("#"))
    size, times = video(out)
    assert size == (128, 96) and len(times) == 24
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1


def test_probe_a_url(clip: Path, http_server: str) -> None:
    result = CliRunner().invoke(cli, ["probe", f"{http_server}/{clip.name}"])
    assert result.exit_code == 0, result.output
    assert "video: mpeg4 64x48" in result.output and "audio: aac" in result.output
    assert "#2 subtitle: srt [eng]" in result.output


def test_malformed_option_is_one_usage_line(clip: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["upscale", str(clip), "-o", str(tmp_path / "x.mkv"), "--input-option", "novalue"])
    assert result.exit_code == 2 and "--input-option" in result.output and "key=value" in result.output
    assert list(tmp_path.iterdir()) == []
