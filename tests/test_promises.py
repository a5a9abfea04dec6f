"""README's promises that no other test holds: each test names the promise it checks."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_clip
from safetensors.torch import save_file

from streamsr.cli import cli
from streamsr.models import load_model
from streamsr.models.archs.safdn import SAFDN
from streamsr.upscaler import Upscaler

CPU = ["--device", "cpu", "--precision", "fp32"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, *CPU])
    return result.exit_code, result.output


def decode_rgb(path: Path, fmt: str = "rgb24") -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format=fmt) for f in c.decode(video=0)]


# -- the other streams -----------------------------------------------------------------------


def test_display_rotation_is_kept_in_video(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    """"display rotation is kept": a phone clip shown upright stays upright, its pixels unturned."""
    plain = make_clip(media_dir / "unrotated.mp4", frames=4, codec="libx264", audio=False)
    src = tmp_path / "phone.mp4"
    with av.open(str(plain)) as i, av.open(str(src), "w") as o:
        s = o.add_stream_from_template(i.streams.video[0])
        s.set_display_rotation(-90)
        for packet in i.demux(video=0):
            if packet.size:
                packet.stream = s
                o.mux(packet)
    out = tmp_path / "out.mp4"
    code, text = run("upscale", str(src), "-o", str(out), "-m", str(tiny_weights), "-q")
    assert code == 0, text
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert frame.rotation == -90 and (frame.width, frame.height) == (128, 96)


def test_attachments_are_copied(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    """"Audio, subtitles, attachments ... copied packet for packet": a Matroska font attachment survives."""
    plain = make_clip(media_dir / "for-attachment.mkv", frames=4)
    src = tmp_path / "fonts.mkv"
    font = bytes(range(256)) * 8
    with av.open(str(plain)) as i, av.open(str(src), "w") as o:
        copies = {s.index: o.add_stream_from_template(s) for s in i.streams}
        o.add_attachment("title.ttf", "font/ttf", font)
        for packet in i.demux():
            if packet.size:
                packet.stream = copies[packet.stream.index]
                o.mux(packet)
    out = tmp_path / "out.mkv"
    code, text = run("upscale", str(src), "-o", str(out), "-m", str(tiny_weights), "-q")
    assert code == 0, text
    with av.open(str(out)) as c:
        attachments = [s for s in c.streams if s.type == "attachment"]
        assert len(attachments) == 1 and attachments[0].name == "title.ttf" and attachments[0].data == font
        assert len(c.streams.audio) == 1


def test_pcm_audio_into_mp4_is_reencoded_to_aac(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    """"Where the output container cannot hold a stream ... re-encodes audio to AAC; it never drops audio silently"."""
    src = make_clip(media_dir / "pcm.mkv", frames=12, audio_codec="pcm_s16le")
    out = tmp_path / "out.mp4"
    code, text = run("upscale", str(src), "-o", str(out), "-m", str(tiny_weights), "-q")
    assert code == 0, text
    assert "re-encoding it to aac" in text
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        samples = sum(f.samples for f in c.decode(audio=0))
    assert abs(samples / 16000 - 1.0) < 0.1  # the second of audio is all there


def test_subtitles_and_chapters_survive_a_segment_join(tmp_path: Path, tiny_weights: Path) -> None:
    """Segments: "Audio, subtitles and the rest are copied from the source once, at the join"."""
    src = make_clip(tmp_path / "long.mkv", frames=36, subtitle=True, codec="libx264",
                    options={"g": "6", "keyint_min": "6", "sc_threshold": "0"},
                    chapters=[(0, 1500, "Opening"), (1500, 3000, "End")])
    out = tmp_path / "out.mkv"
    code, text = run("upscale", str(src), "-o", str(out), "-m", str(tiny_weights), "--segment-seconds", "1", "-q")
    assert code == 0, text
    with av.open(str(out)) as c, av.open(str(src)) as s:
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Opening", "End"]
        assert len(c.streams.subtitles) == 1 and c.streams.subtitles[0].metadata.get("language") == "eng"
        cues = [bytes(p) for p in c.demux(c.streams.subtitles[0]) if p.size]
        assert cues == [b"hello subtitles"]
        assert sum(1 for _ in s.decode(video=0)) == 36
    assert len(decode_rgb(out)) == 36


# -- outputs ---------------------------------------------------------------------------------


def test_dash_output_writes_a_playable_manifest(media_dir: Path, tmp_path: Path, tiny_weights: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """"HLS and DASH (-o out.m3u8, -o out.mpd) write the playlist and its media files beside it"."""
    src = make_clip(media_dir / "dash-source.mp4", frames=24, codec="libx264")
    out = tmp_path / "dash" / "show.mpd"
    out.parent.mkdir()
    monkeypatch.chdir(tmp_path)
    code, text = run("upscale", str(src), "-o", str(out), "-m", str(tiny_weights), "-q")
    assert code == 0, text
    media = [p.name for p in out.parent.iterdir() if p != out]
    assert media and all(name.startswith("show") for name in media)
    assert "<MPD" in out.read_text()
    # Every frame, at its own time, is in the media files the manifest names.
    segments = sorted(out.parent.glob("show-chunk-stream0-*.m4s"))
    init = out.parent / "show-init-stream0.m4s"
    joined = tmp_path / "video.mp4"
    joined.write_bytes(init.read_bytes() + b"".join(p.read_bytes() for p in segments))
    with av.open(str(joined)) as c, av.open(str(src)) as s:
        got = [round(float(f.time), 3) for f in c.decode(video=0)]
        want = [round(float(f.time), 3) for f in s.decode(video=0)]
        assert c.streams.video[0].width == 128
    assert len(got) == 24 and [t - got[0] for t in got] == pytest.approx([t - want[0] for t in want], abs=1e-3)


def test_sixteen_bit_tiff_frames_for_a_ten_bit_source(clip_10bit: Path, tmp_path: Path, tiny_weights: Path) -> None:
    """"--frames-format png|tiff|jpg|webp; PNG and TIFF are 16-bit for 10-bit sources"."""
    folder = tmp_path / "frames"
    code, text = run("upscale", str(clip_10bit), "--frames-out", str(folder), "--frames-format", "tiff",
                     "-m", str(tiny_weights), "-q")
    assert code == 0, text
    images = sorted(folder.glob("*.tif*"))
    assert len(images) == 6
    with av.open(str(images[0])) as c:
        frame = next(c.decode(video=0))
        assert frame.format.name.startswith("rgb48") and (frame.width, frame.height) == (128, 96)
        deep = frame.to_ndarray(format="rgb48le")
    # Ten bits of information, not eight stretched: values that are no multiple of 257 occur.
    assert np.count_nonzero(deep % 257) > deep.size // 2


def test_tile_option_runs_the_model_in_tiles(media_dir: Path, tmp_path: Path, net_weights: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """"--tile: frames too large for memory, in tiles": the model never sees a whole frame, and the
    picture is the tiled model's."""
    src = make_clip(media_dir / "tiles.mkv", width=160, height=96, frames=2, codec="ffv1", pix_fmt="bgr0", audio=False)
    seen: list[tuple[int, int]] = []
    model_call = Upscaler._run

    def spy(self: Upscaler, x: torch.Tensor, **kwargs: bool) -> torch.Tensor:
        seen.append(tuple(x.shape[-2:]))
        return model_call(self, x, **kwargs)

    monkeypatch.setattr(Upscaler, "_run", spy)
    folder = tmp_path / "frames"
    code, text = run("upscale", str(src), "--frames-out", str(folder), "--tile", "24", "-m", str(net_weights),
                     "--backend", "torch", "-q")
    assert code == 0, text
    monkeypatch.undo()
    overlap = Upscaler(str(net_weights), device="cpu").tile_overlap
    assert seen and all(h <= 24 + 2 * overlap and w <= 24 + 2 * overlap for h, w in seen)
    assert max(w for _h, w in seen) < 160  # never the whole frame
    source = torch.from_numpy(np.stack(decode_rgb(src))).permute(0, 3, 1, 2).contiguous()
    tiled = Upscaler(str(net_weights), device="cpu", precision="fp32", tile=24).upscale_frames(source)
    got = torch.from_numpy(np.stack([decode_rgb(p)[0] for p in sorted(folder.glob("*.png"))])).permute(0, 3, 1, 2)
    assert (got.int() - tiled.int()).abs().max() <= 1


# -- models ----------------------------------------------------------------------------------


def test_backend_auto_runs_safdn_on_openvino_on_the_cpu(tiny_weights: Path) -> None:
    """"auto (the CLI default) picks OpenVINO for SAFDN on the CPU where it is installed"."""
    pytest.importorskip("openvino")
    up = Upscaler(str(tiny_weights), device="cpu", precision="fp32", backend="auto")
    assert up.runtime == "openvino"
    x = torch.rand(1, 3, 30, 26)
    reference = Upscaler(str(tiny_weights), device="cpu", precision="fp32", backend="torch")
    torch.testing.assert_close(up(x), reference(x), atol=1e-4, rtol=0)


def test_infinite_weights_are_refused(clip_mp4: Path, tmp_path: Path) -> None:
    """"Weights holding NaN or infinity are refused"."""
    net = SAFDN(feat=8, blocks=1, esa=4, scale=2)
    state = {k: v.clone().contiguous() for k, v in net.state_dict().items()}
    state["upsample.0.weight"][0, 0, 0, 0] = float("inf")
    path = tmp_path / "inf.safetensors"
    save_file(state, str(path), metadata={"arch": "safdn", "hparams": '{"feat": 8, "blocks": 1, "esa": 4, "scale": 2}'})
    code, text = run("upscale", str(clip_mp4), "-o", str(tmp_path / "out.mp4"), "-m", str(path))
    assert code == 4 and "infinit" in text.lower() and "Traceback" not in text
    assert not (tmp_path / "out.mp4").exists()


def test_restoration_models_are_refused_by_upscale(clip_mp4: Path, tmp_path: Path) -> None:
    """"Restoration models (x1) are refused by upscale, which only upscales"."""
    spandrel = pytest.importorskip("spandrel")
    del spandrel
    from spandrel.architectures.Compact import Compact

    net = Compact(num_feat=8, num_conv=2, upscale=1)
    path = tmp_path / "1x-denoise.pth"
    torch.save({"params": net.state_dict()}, path)
    assert load_model(path).scale == 1
    out = tmp_path / "out.mp4"
    code, text = run("upscale", str(clip_mp4), "-o", str(out), "-m", str(path), "-q")
    assert code == 4 and "x1" in text and "restoration" in text
    assert list(tmp_path.iterdir()) == [path]


# -- exit codes ------------------------------------------------------------------------------


def test_encoder_failure_is_exit_6(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    """Exit codes: "6 encoder failure", one line, nothing left behind."""
    code, text = run("upscale", str(clip_mp4), "-o", str(tmp_path / "out.mkv"), "-m", str(tiny_weights),
                     "--codec", "libx264", "--preset", "no-such-preset", "-q")
    assert code == 6 and text.strip().startswith("Error: video encoder failed") and "Traceback" not in text
    assert list(tmp_path.iterdir()) == []


def test_closed_pipe_is_exit_3(media_dir: Path, tiny_weights: Path) -> None:
    """"stdout ... a closed pipe exits 3 with one line"."""
    src = make_clip(media_dir / "for-pipe.mkv", frames=48, width=96, height=64)
    proc = subprocess.Popen([sys.executable, "-m", "streamsr", "upscale", str(src), "-o", "-", "-f", "matroska",
                             "-m", str(tiny_weights), *CPU, "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(2000)  # the reader takes the header, then goes away
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: -: ") and "Traceback" not in err


def test_ctrl_c_is_exit_130_and_leaves_nothing(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    """Exit codes: "130 stopped by Ctrl-C (unfinished outputs are removed)"."""
    src = make_clip(media_dir / "for-sigint.mkv", width=96, height=64, frames=240, audio=False)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "streamsr", "upscale", "-", "-o", str(out_dir / "x.mkv"),
                             "-m", str(tiny_weights), *CPU], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            # A test run started in the background ignores SIGINT, and the child would inherit that.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    data = src.read_bytes()
    proc.stdin.write(data[: len(data) // 2])  # the rest never comes: the run is still going when stopped
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not any(out_dir.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None and any(out_dir.iterdir()), "the upscale never started writing"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode() and list(out_dir.iterdir()) == []
