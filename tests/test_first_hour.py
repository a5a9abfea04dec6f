"""What a newcomer meets first: a readable probe, frame sequences turned and described like videos,
and logs without a terminal's carriage returns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_clip
from PIL import Image

from streamsr.cli import PlainProgress, cli

CPU = ["--device", "cpu", "--precision", "fp32", "--runtime", "torch"]
VIDEOS = Path(os.environ.get("STREAMSR_DATA", "/nonexistent")) / "videos"


def test_probe_names_colours_and_codecs(clip_10bit: Path) -> None:
    result = CliRunner().invoke(cli, ["probe", str(clip_10bit)])
    assert result.exit_code == 0, result.output
    assert "colour: primaries bt2020, transfer smpte2084 (PQ), matrix bt2020nc, range limited" in result.output
    hlg, av1 = VIDEOS / "sample_with_color_info.mp4", VIDEOS / "sample_with_colr_mdcv_and_clli.mp4"
    if hlg.is_file() and av1.is_file():  # real files from phones and encoders, where the data folder is present
        text = CliRunner().invoke(cli, ["probe", str(hlg)]).output
        assert "transfer arib-std-b67 (HLG)" in text and "rotation -90 deg" in text
        assert "video: av1 1920x1080" in CliRunner().invoke(cli, ["probe", str(av1)]).output  # not its decoder, libdav1d


def marked_frame(width: int, height: int, _index: int) -> np.ndarray:
    """Grey, with a red top-left corner as stored."""
    rgb = np.full((height, width, 3), 128, np.uint8)
    rgb[: height // 4, : width // 4] = (230, 20, 20)
    return rgb


def test_frames_out_turns_a_rotated_clip_upright(tmp_path: Path, tiny_weights: Path) -> None:
    plain = make_clip(tmp_path / "stored.mp4", width=64, height=48, frames=3, codec="libx264", audio=False,
                      painter=marked_frame)
    phone = tmp_path / "phone.mp4"
    with av.open(str(plain)) as i, av.open(str(phone), "w") as o:
        s = o.add_stream_from_template(i.streams.video[0])
        s.set_display_rotation(-90)  # shown a quarter turn clockwise, as a phone held upright records
        for packet in i.demux(video=0):
            if packet.size:
                packet.stream = s
                o.mux(packet)
    result = CliRunner().invoke(cli, ["upscale", str(phone), "--frames-out", str(tmp_path / "f"), "-m", str(tiny_weights),
                                      *CPU, "-q"])
    assert result.exit_code == 0, result.output
    frames = sorted((tmp_path / "f").glob("*.png"))
    assert len(frames) == 3
    with Image.open(frames[0]) as image:
        rgb = np.asarray(image.convert("RGB"))
    assert rgb.shape[:2] == (128, 96)  # portrait, as a player shows it
    red = rgb[..., 0] > 180
    assert red[:20, -20:].all() and not red[:20, :20].any()  # the stored top-left is now top-right


def test_frames_out_says_once_what_colours_untagged_images_hold(media_dir: Path, tmp_path: Path,
                                                                 tiny_weights: Path) -> None:
    color = {"color_primaries": 9, "color_trc": 18, "colorspace": 9, "color_range": 1}
    hlg = make_clip(media_dir / "hlg.mkv", frames=3, codec="ffv1", pix_fmt="yuv420p10le", color=color, audio=False)
    result = CliRunner().invoke(cli, ["upscale", str(hlg), "--frames-out", str(tmp_path / "f"), "-m", str(tiny_weights),
                                      *CPU, "-q"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "bt2020 / arib-std-b67 (HLG)" in warnings[0]
    plain = CliRunner().invoke(cli, ["upscale", str(make_clip(media_dir / "bt709.mkv", frames=2, audio=False)),
                                     "--frames-out", str(tmp_path / "g"), "-m", str(tiny_weights), *CPU, "-q"])
    assert plain.exit_code == 0 and "warning" not in plain.output


def test_a_log_gets_plain_lines_not_carriage_returns(clip_mp4: Path, tmp_path: Path, tiny_weights: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    done = subprocess.run([sys.executable, "-m", "streamsr", "upscale", str(clip_mp4), "-o", str(tmp_path / "o.mkv"),
                           "-m", str(tiny_weights), *CPU], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "wrote" in done.stderr + done.stdout
    lines: list[str] = []
    monkeypatch.setattr("streamsr.cli.click.echo", lambda message, err=False: lines.append(message))
    PlainProgress(total=100, desc="clip.mp4", every_seconds=0.0).update(40)
    assert len(lines) == 1 and lines[0].startswith("clip.mp4: 40/100 frames, ") and "min left" in lines[0]


def test_a_long_run_says_so_once_and_a_short_one_not() -> None:
    from streamsr.estimate import LongRunHint

    now = [0.0]
    slow = LongRunHint(720, clock=lambda: now[0])  # 720 frames at 10.9 s each
    said = []
    for _ in range(6):
        now[0] += 10.9
        said.append(slow.update(1))
    assert said[:2] == [None, None] and said[3:] == [None, None, None]
    assert said[2] is not None and said[2].startswith("this run takes about 2 h 10 min more at 10.9 s a frame")
    quick = LongRunHint(720, clock=lambda: now[0])
    for _ in range(6):
        now[0] += 0.5  # 6 min in all: nothing to say
        assert quick.update(1) is None


def test_estimate_measures_the_model_and_the_faster_ones(clip_mp4: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["upscale", str(clip_mp4), "-s", "2", "--estimate", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert list(rows) == ["safdn-x2", "safdn-rt-x2", "safdn-tiny-x2"]
    assert all(float(r[1]) > 0 for r in rows.values())
    assert list(tmp_path.iterdir()) == [] and not list(clip_mp4.parent.glob("clip_x2*"))  # nothing was upscaled


def test_models_table_says_how_long_each_file_trained() -> None:
    """The table explains a smaller file scoring higher: it says what training each one had."""
    from streamsr.models import find_weights
    from streamsr.models.weights import read_metadata

    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.startswith("safdn")}
    for name, line in rows.items():
        path = find_weights(name)
        if path is None:
            continue
        record = json.loads(read_metadata(path)["training"])
        iterations = record.get("total_iterations") or record["iterations"]
        assert f"{round(iterations / 1e3, 1):g}K it" in line, line
    assert "quality follows them as much as the size" in result.output
