"""`streamsr serve`: the web app on a real uvicorn server on 127.0.0.1, driven over HTTP.

An uploaded clip goes through a job to a result whose size, frames, timestamps and audio are
checked as the CLI's are; the root folder is the only place read, listed, written or served; a
server killed in a job's middle resumes it from its finished segments.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
import torch
from conftest import make_clip
from serving import Server

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from streamsr.serve import is_loopback, needs_token  # noqa: E402
from streamsr.serve.files import clean_name  # noqa: E402


def timing(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        return [f.pts * f.time_base for f in c.decode(video=0)]


def video_shape(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return frames[0].width, frames[0].height, len(frames)


def audio_of(path: Path) -> tuple[str, float]:
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        packets = [p for p in c.demux(stream) if p.size]
        return stream.codec_context.name, float(sum(p.duration for p in packets) * stream.time_base)


@pytest.fixture(scope="module")
def clip(media_dir: Path) -> Path:
    """2 s at 24 fps with a keyframe every 12 frames, and AAC audio."""
    return make_clip(media_dir / "serve-clip.mp4", width=96, height=64, frames=48, fps=24, codec="libx264",
                     options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    root = tmp_path_factory.mktemp("serve-root")
    with Server(root, "--segment-seconds", "0.5", "--max-upload", "1") as running:
        yield running


def test_upload_job_progress_and_download(server: Server, clip: Path, tmp_path: Path) -> None:
    stored = server.upload(clip)
    assert stored["path"] == "uploads/serve-clip.mp4"
    assert (stored["kind"], stored["width"], stored["height"], stored["frames"], stored["audio"]) == ("video", 96, 64, 48, ["aac"])
    assert (server.root / stored["path"]).read_bytes() == clip.read_bytes()
    listed = server.json("GET", "/api/files")["media"]
    assert [m["path"] for m in listed] == ["uploads/serve-clip.mp4"]

    job = server.json("POST", "/api/jobs", {"source": stored["path"], "options": {"model": "safdn-tiny-x2"}}, status=201)
    assert job["state"] in ("queued", "running") and job["output"] == "upscaled/serve-clip_x2.mp4"
    events = list(server.events(job["id"]))
    frames = [e["frames"] for e in events]
    assert frames == sorted(frames), "progress went backwards"
    assert events[-1]["state"] == "done" and events[-1]["frames"] == 48
    assert any(e["state"] == "running" and 0 < e["frames"] < 48 for e in events), "no progress seen between start and end"
    assert any(e["fps"] > 0 and e["eta_seconds"] is not None for e in events if e["state"] == "running")

    status, headers, body = server.request("GET", f"/media/{job['output']}?download=1")
    assert status == 200 and headers["content-disposition"].startswith("attachment")
    result = tmp_path / "result.mp4"
    result.write_bytes(body)
    assert video_shape(result) == (192, 128, 48)
    assert timing(result) == timing(clip)
    codec, seconds = audio_of(result)
    assert codec == "aac" and seconds == pytest.approx(audio_of(clip)[1], abs=0.01)
    # The page's player asks for byte ranges.
    status, headers, part = server.request("GET", f"/media/{job['output']}", headers={"Range": "bytes=100-199"})
    assert status == 206 and part == body[100:200]


def test_jobs_one_after_another_each_get_their_own_model(server: Server, clip: Path) -> None:
    source = server.upload(clip, "two.mp4")["path"]
    asked = [("safdn-tiny-x2", {"model": "safdn-tiny-x2"}), ("safdn-tiny-x4", {"model": "safdn-tiny-x4"}),
             ("again x2", {"scale": 2, "preset": "fast"}), ("720p", {"height": 720, "preset": "fast"})]
    jobs = [server.json("POST", "/api/jobs", {"source": source, "options": options}, status=201) for _, options in asked]
    sizes = []
    for job in jobs:
        done = server.wait(job["id"], lambda j: j["state"] in ("done", "failed"))
        assert done["state"] == "done", done
        sizes.append(video_shape(server.root / done["output"]))
    assert sizes == [(192, 128, 48), (384, 256, 48), (192, 128, 48), (1080, 720, 48)]
    assert [j["output"] for j in jobs] == ["upscaled/two_x2.mp4", "upscaled/two_x4.mp4", "upscaled/two_x2 (2).mp4",
                                           "upscaled/two_720p.mp4"]


def test_before_after_pictures_of_a_frame(server: Server, clip: Path) -> None:
    source = server.upload(clip, "cmp.mp4")["path"]
    pair = server.json("GET", f"/api/compare?source={source}&at=1.0&model=safdn-tiny-x2")
    assert pair["seconds"] == pytest.approx(1.0) and (pair["width"], pair["height"], pair["scale"]) == (192, 128, 2)
    from io import BytesIO
    from urllib.request import urlopen

    import numpy as np
    from PIL import Image

    before, after = (np.asarray(Image.open(BytesIO(urlopen(pair[k]).read()))) for k in ("before", "after"))  # noqa: S310 (data: URLs)
    assert before.shape == after.shape == (128, 192, 3)
    assert np.abs(before.astype(int) - after.astype(int)).mean() > 0.5, "the model's picture equals bicubic"
    sized = server.json("GET", f"/api/compare?source={source}&at=0&height=192")
    assert (sized["scale"], sized["width"], sized["height"], sized["name"]) == (3, 288, 192, "safdn-x3")


def test_the_estimate_is_measured_for_the_chosen_model_and_the_faster_ones(server: Server, clip: Path) -> None:
    source = server.upload(clip, "estimate.mp4")["path"]
    found = server.json("POST", "/api/estimate", {"source": source, "options": {"scale": 2}})
    assert [e["model"] for e in found] == ["safdn-x2", "safdn-rt-x2", "safdn-tiny-x2"]
    for e in found:
        assert e["seconds_per_frame"] > 0 and e["seconds"] == pytest.approx(48 * e["seconds_per_frame"])
    assert found[0]["seconds_per_frame"] > found[-1]["seconds_per_frame"]
    # A target size is measured with the model a job of it runs: 64 lines to 192 is x3.
    assert [e["model"] for e in server.json("POST", "/api/estimate", {"source": source, "options": {"height": 192}})] == ["safdn-x3"]


def test_jobs_run_on_ray(tmp_path: Path, clip: Path) -> None:
    pytest.importorskip("ray")
    (tmp_path / "ray.mp4").write_bytes(clip.read_bytes())
    with Server(tmp_path, "--engine", "ray", "--segment-seconds", "0.5") as server:
        job = server.json("POST", "/api/jobs", {"source": "ray.mp4", "options": {"model": "safdn-tiny-x2"}}, status=201)
        done = server.wait(job["id"], lambda j: j["state"] in ("done", "failed"))
    assert done["state"] == "done", done
    out = tmp_path / done["output"]
    assert video_shape(out) == (192, 128, 48) and timing(out) == timing(clip)


def test_a_failed_job_says_why_with_the_exit_code(server: Server, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    stored = server.upload(broken)
    assert stored["kind"] == "unreadable"
    job = server.json("POST", "/api/jobs", {"source": stored["path"], "options": {}}, status=201)
    done = server.wait(job["id"], lambda j: j["state"] in ("done", "failed"))
    assert (done["state"], done["exit_code"], done["meaning"]) == ("failed", 2, "bad input")
    assert done["error"].startswith("uploads/broken.mp4") and "\n" not in done["error"]  # paths as the page shows them
    assert str(server.root) not in json.dumps(server.json("GET", "/api/files"))
    assert not (server.root / done["output"]).exists()


def test_a_stopped_job_leaves_nothing(server: Server, clip: Path) -> None:
    source = server.upload(clip, "stop.mp4")["path"]
    job = server.json("POST", "/api/jobs", {"source": source, "options": {"model": "safdn-x2"}}, status=201)
    server.wait(job["id"], lambda j: j["frames"] > 0)
    server.json("DELETE", f"/api/jobs/{job['id']}")
    done = server.wait(job["id"], lambda j: j["state"] != "running")
    assert done["state"] == "cancelled"
    out = server.root / done["output"]
    assert not out.exists() and not list(out.parent.glob(f".{out.stem}*"))
    server.json("DELETE", f"/api/jobs/{job['id']}")  # a finished job is forgotten
    assert server.request("GET", f"/api/jobs/{job['id']}")[0] == 404


def test_bad_choices_are_refused_before_a_job_exists(server: Server, clip: Path) -> None:
    source = server.upload(clip, "choices.mp4")["path"]
    before = server.json("GET", "/api/jobs")
    for options, word in [({"preset": "nope"}, "preset"), ({"model": "no-such-model"}, "model"),
                          ({"scale": 7}, "scale"), ({"shell": "rm -rf /"}, "shell")]:
        status, _, body = server.request("POST", "/api/jobs", {"source": source, "options": options})
        assert status == 400 and word in json.loads(body)["error"], (options, body)
    assert server.json("GET", "/api/jobs") == before


# --- the root folder, and nothing else -----------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, clip: Path) -> Server:
    """A server with a token and a 1 MiB upload limit, a clip outside its root and a link to it inside."""
    base = tmp_path_factory.mktemp("guarded")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(clip.read_bytes())
    (root / "link.mp4").symlink_to(outside / "secret.mp4")
    (root / "inside.mp4").write_bytes(clip.read_bytes())
    with Server(root, "--token", "s3cret-token", "--max-upload", "1") as running:
        running.outside = outside
        yield running


AUTH = {"Authorization": "Bearer s3cret-token"}


def test_every_request_needs_the_token(guarded: Server) -> None:
    for path in ("/", "/api/files", "/api/jobs", "/media/inside.mp4", "/static/app.js"):
        assert guarded.request("GET", path)[0] == 401, path
    assert guarded.request("GET", "/api/files", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert guarded.request("PUT", "/api/files/x.mp4", b"data")[0] == 401
    assert not (guarded.root / "uploads").exists()
    status, headers, _ = guarded.request("GET", "/?token=s3cret-token")
    assert status == 200 and "streamsr_token=s3cret-token" in headers["set-cookie"] and "httponly" in headers["set-cookie"].lower()
    assert guarded.request("GET", "/api/files", headers={"Cookie": "streamsr_token=s3cret-token"})[0] == 200
    # With a token the server may answer other host names (it was started for other hosts).
    assert guarded.request("GET", "/api/files", headers={**AUTH, "Host": "upscaler.lan:8765"})[0] == 200


def test_without_a_token_only_loopback_names_are_answered(server: Server) -> None:
    assert server.request("GET", "/api/files")[0] == 200
    assert server.request("GET", "/api/files", headers={"Host": "attacker.example:8765"})[0] == 403
    status, _, _ = server.request("POST", "/api/jobs", {"source": "x.mp4"}, headers={"Origin": "http://attacker.example"})
    assert status == 403
    assert needs_token("127.0.0.1", None) is None and needs_token("::1", None) is None and is_loopback("localhost")
    made = needs_token("0.0.0.0", None)
    assert made and len(made) >= 20 and needs_token("0.0.0.0", None) != made
    assert needs_token("192.168.1.5", "given") == "given"


@pytest.mark.parametrize("path", ["../outside/secret.mp4", "%2E%2E/outside/secret.mp4", "/etc/passwd", "link.mp4",
                                  ".streamsr/jobs", "uploads/../../outside/secret.mp4"])
def test_paths_out_of_the_root_are_refused(guarded: Server, path: str) -> None:
    status, _, body = guarded.request("GET", f"/media/{path}", headers=AUTH)
    assert status in (403, 404), (path, status)
    assert b"\x00\x00\x00" not in body[:64], "a video was served"
    source = path.replace("%2E", ".")
    for method, url, data in [("POST", "/api/jobs", {"source": source}), ("POST", "/api/estimate", {"source": source}),
                              ("GET", f"/api/compare?source={path}&model=safdn-tiny-x2", None)]:
        status, _, body = guarded.request(method, url, data, headers=AUTH)
        assert status == 403 or (status == 404 and "not found" in json.loads(body)["error"]), (method, url, status, body)


def test_links_out_of_the_root_are_not_listed(guarded: Server) -> None:
    listed = [m["path"] for m in guarded.json("GET", "/api/files", headers=AUTH)["media"]]
    assert "inside.mp4" in listed and "link.mp4" not in listed


def test_uploads_are_named_safely_and_kept_to_the_limit(guarded: Server) -> None:
    stored = guarded.json("PUT", "/api/files/..%2F..%2Fevil%20%3Cscript%3E.mp4", b"\0" * 1000, headers=AUTH, status=201)
    assert stored["path"] == "uploads/evil _script_.mp4"
    assert not (guarded.root.parent / "evil <script>.mp4").exists()
    again = guarded.json("PUT", "/api/files/evil%20%3Cscript%3E.mp4", b"\1" * 10, headers=AUTH, status=201)
    assert again["path"] == "uploads/evil _script_ (2).mp4"  # never over an existing file
    assert guarded.request("PUT", "/api/files/run.sh", b"#!/bin/sh\n", headers=AUTH)[0] == 403
    # Over the limit: refused by its declared length, and, sent in chunks with no length, as it arrives.
    big = b"\0" * ((1 << 20) + 1)
    assert guarded.request("PUT", "/api/files/big.mp4", big, headers=AUTH)[0] == 413
    connection = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=60)
    connection.request("PUT", "/api/files/big2.mp4", body=(big[i:i + 65536] for i in range(0, len(big), 65536)),
                       headers=AUTH, encode_chunked=True)
    assert connection.getresponse().status == 413
    connection.close()
    names = sorted(p.name for p in (guarded.root / "uploads").iterdir())
    assert names == ["evil _script_ (2).mp4", "evil _script_.mp4"], names  # no partial file left either
    assert [p.name for p in guarded.outside.iterdir()] == ["secret.mp4"]


def test_a_model_file_that_runs_code_is_refused(guarded: Server, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self) -> tuple:
            import os

            return os.system, (f"touch {marker}",)

    evil = tmp_path / "4x-evil.pth"
    torch.save({"params": {"conv.weight": Payload()}}, evil)
    stored = guarded.json("PUT", "/api/files/4x-evil.pth", evil.read_bytes(), headers=AUTH, status=201)
    assert stored["path"] == "models/4x-evil.pth"
    assert "models/4x-evil.pth" in [m["path"] for m in guarded.json("GET", "/api/files", headers=AUTH)["models"]]
    job = guarded.json("POST", "/api/jobs", {"source": "inside.mp4", "options": {"model": stored["path"]}},
                       headers=AUTH, status=201)
    done = guarded.wait(job["id"], lambda j: j["state"] in ("done", "failed"), headers=AUTH)
    assert (done["state"], done["exit_code"], done["meaning"]) == ("failed", 4, "model problem")
    status, _, body = guarded.request("GET", f"/api/compare?source=inside.mp4&model={stored['path']}", headers=AUTH)
    assert status == 400 and json.loads(body)["exit_code"] == 4
    assert not marker.exists(), "the pickle ran"


# --- restarts -------------------------------------------------------------------------------------


def test_a_job_survives_a_stopped_and_a_killed_server_and_resumes_its_segments(tmp_path: Path, media_dir: Path) -> None:
    clip = make_clip(media_dir / "serve-long.mp4", width=160, height=96, frames=96, fps=24, codec="libx264",
                     options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})
    root = tmp_path / "root"
    root.mkdir()
    state = root / ".streamsr" / "jobs"
    first = Server(root, "--segment-seconds", "0.5").start()
    source = first.upload(clip)["path"]
    job = first.json("POST", "/api/jobs", {"source": source, "options": {"model": "safdn-x2"}}, status=201)
    seen = first.wait(job["id"], lambda j: j["frames"] >= 24 or j["state"] != "running")
    assert seen["state"] == "running", "the job ended before the server was stopped"
    assert first.stop(signal.SIGTERM) == 0  # Ctrl-C or SIGTERM is how a server ends
    on_disk = json.loads((state / f"{job['id']}.json").read_text())
    assert (on_disk["state"], on_disk["restarts"]) == ("queued", 1)
    out = root / on_disk["output"]
    assert not out.exists() and not list(out.parent.glob(f".{out.stem}.partial-*"))

    second = Server(root, "--segment-seconds", "0.5").start()
    seen = second.wait(job["id"], lambda j: j["frames"] >= j["resumed"] + 36 or j["state"] != "running")
    assert seen["state"] == "running" and seen["resumed"] >= 24, seen
    second.stop(signal.SIGKILL)  # a crash: nothing is said on the way out
    assert json.loads((state / f"{job['id']}.json").read_text())["state"] == "running"

    with Server(root, "--segment-seconds", "0.5") as third:
        done = third.wait(job["id"], lambda j: j["state"] in ("done", "failed", "cancelled"))
    assert done["state"] == "done", done
    assert done["restarts"] == 2 and 48 <= done["resumed"] < 96, "the finished segments were not reused"
    assert video_shape(out) == (320, 192, 96)
    assert timing(out) == timing(clip)
    assert audio_of(out)[1] == pytest.approx(audio_of(clip)[1], abs=0.01)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "work files left beside the result"


def test_the_app_mounts_in_another_asgi_app(tmp_path: Path, clip: Path) -> None:
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from streamsr.serve import create_app

    (tmp_path / "a.mp4").write_bytes(clip.read_bytes())
    app = create_app(tmp_path)
    host = Starlette(routes=[Mount("/upscaler", app=app)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(host, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        port = sock.getsockname()[1]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/upscaler/")
        page = connection.getresponse().read().decode()
        assert 'src="static/app.js"' in page  # relative: it finds its script under the prefix
        connection.request("GET", "/upscaler/static/app.js")
        assert connection.getresponse().read().startswith(b"// The streamsr page")
        connection.request("GET", "/upscaler/api/files")
        assert [m["path"] for m in json.loads(connection.getresponse().read())["media"]] == ["a.mp4"]
        connection.close()
    finally:
        server.should_exit = True
        thread.join(30)
        app.jobs.stop()


def test_clean_names() -> None:
    assert clean_name("../../x/ä b?.MP4") == "ä b_.MP4"
    assert clean_name(".hidden.mkv") == "hidden.mkv"
    assert clean_name("a" * 300 + ".mp4") == "a" * 116 + ".mp4"  # 120 characters in all
    assert clean_name("C:\\Users\\me\\clip.mov") == "clip.mov"
    assert clean_name("...") == "upload"


def test_serve_says_what_is_missing_or_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import sys

    from click.testing import CliRunner

    from streamsr.cli import cli

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    result = CliRunner().invoke(cli, ["serve", "--root", str(tmp_path), "--port", str(taken.getsockname()[1])])
    taken.close()
    assert result.exit_code == 2 and "cannot listen on 127.0.0.1:" in result.output
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as where the extra is not installed
    result = CliRunner().invoke(cli, ["serve", "--root", str(tmp_path)])
    assert result.exit_code == 5 and 'pip install "streamsr[serve]"' in result.output
