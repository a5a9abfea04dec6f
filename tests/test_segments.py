"""Long files in keyframe-aligned segments: the joined output equals the one-piece run, and a
stopped run resumes with only its missing segments."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_clip, pattern

from streamsr.cli import cli
from streamsr.config import UpscaleConfig
from streamsr.run import upscale_file
from streamsr.segments import SegmentJob, plan_segments, upscale_segment, upscale_segmented, work_folder

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "safdn-tiny-x2.safetensors"


@pytest.fixture(scope="module")
def long_clip(media_dir: Path) -> Path:
    """4 s at 24 fps of H.264 with B-frames and a keyframe every 12 frames, plus AAC audio."""
    return make_clip(media_dir / "long.mp4", width=64, height=48, frames=96, fps=24, codec="libx264",
                     options={"g": "12", "keyint_min": "12", "sc_threshold": "0", "bf": "3"})


def config() -> UpscaleConfig:
    return UpscaleConfig(scale=2, model=str(WEIGHTS), device="cpu", backend="torch", overwrite=True)


def frames_and_times(path: Path) -> tuple[np.ndarray, list[float]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return np.stack([f.to_ndarray(format="rgb24") for f in frames]), [float(f.pts * f.time_base) for f in frames]


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


def test_plan_cuts_at_keyframes_only(long_clip: Path) -> None:
    segments = plan_segments(long_clip, 1.0)
    assert [s.frames for s in segments] == [24, 24, 24, 24]
    with av.open(str(long_clip)) as c:
        keyframes = {p.pts for p in c.demux(video=0) if p.is_keyframe and p.size}
    assert {s.start_pts for s in segments} <= keyframes
    assert [s.end_pts for s in segments[:-1]] == [s.start_pts for s in segments[1:]] and segments[-1].end_pts is None


def test_segmented_output_equals_the_one_piece_run(long_clip: Path, tmp_path: Path) -> None:
    whole, joined = tmp_path / "whole.mp4", tmp_path / "joined.mp4"
    upscale_file(long_clip, whole, config())
    result = upscale_segmented(long_clip, joined, config(), segment_seconds=1.0)
    assert result.frames == 96
    (a, a_times), (b, b_times) = frames_and_times(whole), frames_and_times(joined)
    _, source_times = frames_and_times(long_clip)
    assert b_times == a_times == source_times  # MP4 keeps every pts exactly
    assert audio_packets(joined) == audio_packets(whole) == audio_packets(long_clip)
    # No frame lost or doubled at the seams: each joined frame is closest to the same frame of the
    # one-piece run (both were encoded lossily, so compare by nearest match and by PSNR).
    diffs = np.abs(b[:, None].astype(np.int16) - a[None].astype(np.int16)).mean(axis=(2, 3, 4))
    assert list(diffs.argmin(axis=1)) == list(range(96))
    mse = ((a.astype(np.float64) - b) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 30  # neighbouring frames differ by ~6 dB
    assert sorted(p.name for p in tmp_path.iterdir()) == ["joined.mp4", "whole.mp4"]  # work folder gone


def test_a_stopped_run_resumes_with_the_missing_segments_only(long_clip: Path, tmp_path: Path) -> None:
    from streamsr.stages import make_upscaler

    out = tmp_path / "resumed.mkv"
    upscaler = make_upscaler(config())
    ran: list[int] = []

    def stop_after_two(jobs: list[SegmentJob], progress: object) -> None:
        for job in jobs[:2]:
            upscale_segment(job, upscaler)
            ran.append(job.segment.index)
        raise KeyboardInterrupt  # as Ctrl-C in the middle of the third

    with pytest.raises(KeyboardInterrupt):
        upscale_segmented(long_clip, out, config(), segment_seconds=1.0, resume=True, run_segments=stop_after_two)
    assert not out.exists()
    kept = sorted(p.name for p in work_folder(out).iterdir())
    assert kept == ["plan.json", "segment-00000.json", "segment-00000.mp4", "segment-00001.json", "segment-00001.mp4"]

    def record(jobs: list[SegmentJob], progress: object) -> None:
        for job in jobs:
            upscale_segment(job, upscaler)
            ran.append(job.segment.index)

    result = upscale_segmented(long_clip, out, config(), segment_seconds=1.0, resume=True, run_segments=record)
    assert ran == [0, 1, 2, 3]  # the rerun did segments 2 and 3 only
    assert (result.frames, result.resumed) == (96, 48)  # and says the first two were kept
    uninterrupted = tmp_path / "uninterrupted.mkv"
    upscale_segmented(long_clip, uninterrupted, config(), segment_seconds=1.0)
    (a, a_times), (b, b_times) = frames_and_times(uninterrupted), frames_and_times(out)
    assert a_times == b_times and np.array_equal(a, b)  # the same segments, encoded alike
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed.mkv", "uninterrupted.mkv"]


def test_segments_add_up_their_reused_frames(media_dir: Path, tmp_path: Path) -> None:
    held = make_clip(media_dir / "held.mp4", frames=48, fps=24, codec="libx264", painter=lambda w, h, i: pattern(w, h, i // 2),
                     options={"g": "12", "keyint_min": "12", "sc_threshold": "0", "qp": "0"})  # lossless: repeats exact
    whole = upscale_file(held, tmp_path / "whole.mkv", config())
    pieces = upscale_segmented(held, tmp_path / "pieces.mkv", config(), segment_seconds=0.5)
    assert whole.reused == pieces.reused == 24  # every second frame; each segment starts on a new picture


def test_cli_segments_and_resume(long_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.mkv"
    result = CliRunner().invoke(cli, ["upscale", str(long_clip), "-o", str(out), "-s", "2", "-m", str(WEIGHTS),
                                      "--segment-seconds", "1", "--resume", "-q"])
    assert result.exit_code == 0, result.output
    _, times = frames_and_times(out)
    assert len(times) == 96 and audio_packets(out) == audio_packets(long_clip)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.mkv"]


def test_a_stopped_batch_resumes_inside_its_file(long_clip: Path, tmp_path: Path) -> None:
    import shutil

    from streamsr.batch import BatchEvents, upscale_many

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(long_clip, src / "film.mp4")
    seen: list[int] = []

    def stop_in_the_second_segment(frames: int) -> None:
        seen.append(frames)
        if sum(seen) > 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale_many(src, out, config(), segment_seconds=1.0, events=BatchEvents(on_progress=stop_in_the_second_segment))
    assert not (out / "film.mp4").exists()
    assert sorted(p.name for p in work_folder(out / "film.mp4").glob("segment-*.mp4")) == ["segment-00000.mp4"]

    resumed: list[int] = []
    report = upscale_many(src, out, config(), segment_seconds=1.0, events=BatchEvents(on_progress=resumed.append))
    assert [o.status for o in report.outcomes] == ["done"]
    assert resumed[0] == 24 and sum(resumed) == 96  # the first segment counted as done, not redone
    _, times = frames_and_times(out / "film.mp4")
    assert times == frames_and_times(long_clip)[1]
    assert audio_packets(out / "film.mp4") == audio_packets(long_clip)
    assert sorted(p.name for p in out.iterdir() if p.name != ".streamsr-batch.json") == ["film.mp4"]


def test_open_gop_hevc_seams_lose_nothing(media_dir: Path, tmp_path: Path) -> None:
    """Open GOPs: the frames shown before a keyframe but decoded after it belong to the segment before."""
    src = make_clip(media_dir / "open-gop.mkv", frames=96, fps=24, codec="libx265", audio=False,
                    options={"x265-params": "log-level=error:keyint=24:min-keyint=24:scenecut=0:open-gop=1:bframes=4"})
    assert len(plan_segments(src, 1.0)) == 4
    out = tmp_path / "open-gop.mkv"
    assert upscale_segmented(src, out, config(), segment_seconds=1.0).frames == 96
    frames, times = frames_and_times(out)
    assert times == frames_and_times(src)[1]
    diffs = np.abs(frames[1:].astype(np.int16) - frames[:-1]).mean(axis=(1, 2, 3))
    assert diffs.min() > 1  # no frame repeated at a seam (the pattern moves every frame)


@pytest.mark.parametrize("seed", range(5))
def test_joined_decode_timestamps_are_monotonic_and_never_after_pts(seed: int) -> None:
    from streamsr.io.join import decode_timestamps

    rng = np.random.default_rng(seed)
    pts: list[int] = []
    for start in range(0, 600, 60):  # segments of 60 ticks, each reordered like B-frame pyramids
        frames = list(range(start, start + 60, 3))
        order = []
        for i in range(0, len(frames), 4):
            group = frames[i : i + 4]
            order += [group[-1], *rng.permutation(group[:-1]).tolist()]  # the anchor first, then the rest
        pts += order
    dts = decode_timestamps(pts)
    assert all(a < b for a, b in zip(dts, dts[1:], strict=False))
    assert all(d <= p for d, p in zip(dts, pts, strict=True))
    assert decode_timestamps([0, 3, 6]) == [0, 3, 6]  # no reordering: dts = pts
