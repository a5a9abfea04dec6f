"""`upscale --frames-out DIR`: a video as numbered images with the source's timestamps."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_clip

from streamsr.cli import cli

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "safdn-tiny-x2.safetensors"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "-m", str(WEIGHTS), "--device", "cpu", "--backend", "torch", "-q"])
    return result.exit_code, result.output


def read_rgb(path: Path) -> np.ndarray:
    """An image's pixels as FFmpeg decodes them, at the depth the file stores."""
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        deep = frame.format.name.startswith(("rgb48", "rgba64"))
        return frame.to_ndarray(format="rgb48le" if deep else "rgb24")


def source_frames(src: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(src)) as c:
        frames = list(c.decode(video=0))
        return [f.to_ndarray(format="rgb24") for f in frames], [float(f.pts * f.time_base * 1000) for f in frames]


def timestamps(folder: Path) -> list[float]:
    lines = (folder / "timestamps.txt").read_text().splitlines()
    assert lines[0] == "# timestamp format v2"
    return [float(line) for line in lines[1:]]


def test_vfr_video_becomes_numbered_images_with_its_timestamps(tmp_path: Path) -> None:
    pts = [0, 40, 90, 100, 180, 200, 290, 300, 333, 420]
    src = make_clip(tmp_path / "vfr.mkv", frames=len(pts), pts=pts, time_base=Fraction(1, 1000), codec="ffv1",
                    pix_fmt="yuv444p")
    folder = tmp_path / "frames"
    code, text = run("upscale", str(src), "-s", "2", "--frames-out", str(folder))
    assert code == 0, text
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{i:06d}.png" for i in range(1, 11)] + ["timestamps.txt"]
    assert timestamps(folder) == pytest.approx([float(p) for p in pts])
    lr, _ = source_frames(src)
    for i in (0, 5, 9):
        sr = read_rgb(folder / f"{i + 1:06d}.png")
        assert sr.shape == (96, 128, 3) and sr.dtype == np.uint8
        # The upscaled frame, averaged back down, is its own source frame (a real model, in order).
        down = sr.reshape(48, 2, 64, 2, 3).mean(axis=(1, 3))
        mse = np.mean((down - lr[i].astype(np.float64)) ** 2)
        assert 10 * np.log10(255**2 / mse) > 28
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_ten_bit_source_gives_sixteen_bit_png(clip_10bit: Path, tmp_path: Path) -> None:
    folder = tmp_path / "deep"
    code, text = run("upscale", str(clip_10bit), "-s", "2", "--frames-out", str(folder))
    assert code == 0, text
    first = read_rgb(folder / "000001.png")
    assert first.dtype == np.uint16 and first.shape == (96, 128, 3)
    # Deeper than 8 bits: an 8-bit picture stored as 16 bits has every value a multiple of 257.
    assert np.mean(first % 257 == 0) < 0.5
    assert len(timestamps(folder)) == 6


def test_jpeg_sequence(clip_mp4: Path, tmp_path: Path) -> None:
    folder = tmp_path / "jpg"
    code, text = run("upscale", str(clip_mp4), "-s", "2", "--frames-out", str(folder), "--frames-format", "jpg")
    assert code == 0, text
    assert len(list(folder.glob("*.jpg"))) == 12 and read_rgb(folder / "000012.jpg").shape == (96, 128, 3)


def test_folder_of_other_files_is_never_replaced(clip_mp4: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    code, text = run("upscale", str(clip_mp4), "-s", "2", "--frames-out", str(folder))
    assert code == 3 and "--overwrite" in text and "Traceback" not in text
    code, text = run("upscale", str(clip_mp4), "-s", "2", "--frames-out", str(folder), "--overwrite")
    assert code == 3 and "not a frame sequence" in text
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"] and (folder / "holiday.jpg").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_overwrite_replaces_an_earlier_sequence_whole(clip_mp4: Path, tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    assert run("upscale", str(clip_mp4), "-s", "2", "--frames-out", str(folder))[0] == 0
    short = make_clip(tmp_path / "short.mp4", frames=5, audio=False)
    code, text = run("upscale", str(short), "-s", "2", "--frames-out", str(folder))
    assert code == 3 and "--overwrite" in text and len(timestamps(folder)) == 12
    code, text = run("upscale", str(short), "-s", "2", "--frames-out", str(folder), "--overwrite")
    assert code == 0, text
    # No frame of the longer, earlier sequence is left behind.
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:06d}.png" for i in range(1, 6)] + ["timestamps.txt"]
    assert len(timestamps(folder)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "short.mp4"]


def test_stale_partial_folder_is_cleared_and_a_failed_run_leaves_none(clip_mp4: Path, tmp_path: Path) -> None:
    stale = tmp_path / ".frames.partial-0123abcd"
    stale.mkdir()
    (stale / "000001.png").write_bytes(b"half")
    assert run("upscale", str(clip_mp4), "-s", "2", "--frames-out", str(tmp_path / "frames"))[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]

    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(4000))
    code, text = run("upscale", str(garbage), "-s", "2", "--frames-out", str(tmp_path / "none"))
    assert code == 2 and "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "garbage.mkv"]


def test_frames_out_with_o_or_an_image_is_a_usage_error(clip_mp4: Path, tmp_path: Path) -> None:
    code, text = run("upscale", str(clip_mp4), "-o", str(tmp_path / "x.mp4"), "--frames-out", str(tmp_path / "f"))
    assert code == 2 and "not both" in text
    assert list(tmp_path.iterdir()) == []
