"""End-to-end: generated clips through decode -> SAFDN -> encode; assertions on the output file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import make_clip, pattern

from streamsr.config import UpscaleConfig
from streamsr.errors import DecodeError, OutputError
from streamsr.frames import ContentLightLevel, FrameBatch, MasteringDisplay
from streamsr.io.probe import probe
from streamsr.run import upscale_file
from streamsr.stages import run_stages


def _cfg(weights: Path, **kw: object) -> UpscaleConfig:
    return UpscaleConfig(scale=2, model=str(weights), device="cpu", precision="fp32", **kw)  # type: ignore[arg-type]


def video_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]


def packets(path: Path, kind: str) -> list[tuple[bytes, float]]:
    with av.open(str(path)) as c:
        stream = next(s for s in c.streams if s.type == kind)
        return [(bytes(p), float(p.pts * p.time_base)) for p in c.demux(stream) if p.size]


def test_mp4_with_audio(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "out.mp4"
    result = upscale_file(clip_mp4, out, _cfg(tiny_weights))
    src, dst = probe(clip_mp4), probe(out)
    assert (dst.width, dst.height) == (2 * src.width, 2 * src.height)
    assert result.frames == 12
    assert video_times(out) == pytest.approx(video_times(clip_mp4), abs=1e-3)
    src_audio, dst_audio = packets(clip_mp4, "audio"), packets(out, "audio")
    assert [p for p, _ in dst_audio] == [p for p, _ in src_audio]  # bit for bit, same count
    assert [t for _, t in dst_audio] == pytest.approx([t for _, t in src_audio], abs=1e-3)
    assert not list(tmp_path.glob(".*partial*"))


def test_default_output_name_beside_input(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    src = tmp_path / "video.mp4"
    src.write_bytes(clip_mp4.read_bytes())
    before = src.read_bytes()
    result = upscale_file(src, None, _cfg(tiny_weights))
    assert result.output == tmp_path / "video_x2.mp4" and result.output.is_file()
    assert src.read_bytes() == before  # the source is never touched


def test_variable_frame_rate_keeps_every_timestamp(clip_vfr: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "vfr_x2.mkv"
    upscale_file(clip_vfr, out, _cfg(tiny_weights))
    expected = [0, 0.04, 0.09, 0.1, 0.18, 0.2, 0.29, 0.3, 0.333, 0.42]
    assert video_times(clip_vfr) == pytest.approx(expected, abs=1e-3)
    assert video_times(out) == pytest.approx(expected, abs=1e-3)


def test_mkv_keeps_audio_and_subtitles(clip_mkv_subs: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "subs_x2.mkv"
    upscale_file(clip_mkv_subs, out, _cfg(tiny_weights))
    assert packets(out, "subtitle") == packets(clip_mkv_subs, "subtitle")
    assert [p for p, _ in packets(out, "audio")] == [p for p, _ in packets(clip_mkv_subs, "audio")]
    with av.open(str(out)) as c:
        assert c.streams.subtitles[0].metadata.get("language") == "eng"


def test_subtitles_into_mp4_are_skipped_with_a_warning(clip_mkv_subs: Path, tmp_path: Path, tiny_weights: Path) -> None:
    warnings: list[str] = []
    out = tmp_path / "subs_x2.mp4"
    upscale_file(clip_mkv_subs, out, _cfg(tiny_weights), on_warning=warnings.append)
    assert any("subtitle" in w and ".mkv" in w for w in warnings)
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1 and not c.streams.subtitles


def test_odd_dimensions(clip_odd: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "odd_x2.mkv"
    result = upscale_file(clip_odd, out, _cfg(tiny_weights))
    info = probe(out)
    assert (info.width, info.height) == (74, 46) and result.frames == 5


def test_ten_bit_and_colour_tags_survive(clip_10bit: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "tenbit_x2.mkv"
    upscale_file(clip_10bit, out, _cfg(tiny_weights, encode=_x264()))
    src, dst = probe(clip_10bit), probe(out)
    assert src.bit_depth == 10 and dst.bit_depth == 10
    assert dst.color == src.color and dst.color.transfer == 16


@pytest.mark.parametrize("codec", ["libx265", "libx264"])
def test_hdr10_static_metadata_survives(clip_hdr10: Path, tmp_path: Path, tiny_weights: Path, codec: str) -> None:
    from streamsr.io.codecs import EncodeConfig

    out = tmp_path / f"hdr10_{codec}.mp4"
    upscale_file(clip_hdr10, out, _cfg(tiny_weights, encode=EncodeConfig(codec=codec, crf=20, preset="ultrafast")))
    src, dst = probe(clip_hdr10), probe(out)
    assert src.color.mastering_display == MasteringDisplay(
        red=(0.68, 0.32), green=(0.265, 0.69), blue=(0.15, 0.06), white_point=(0.3127, 0.329),
        min_luminance=0.005, max_luminance=1000.0)
    assert src.color.content_light == ContentLightLevel(max_cll=1000, max_fall=400)
    assert dst.color == src.color and dst.bit_depth == 10


def test_hdr10_metadata_an_encoder_cannot_write_is_reported(clip_hdr10: Path, tmp_path: Path, tiny_weights: Path) -> None:
    from streamsr.io.codecs import EncodeConfig

    warnings: list[str] = []
    out = tmp_path / "hdr10_ffv1.mkv"
    upscale_file(clip_hdr10, out, _cfg(tiny_weights, encode=EncodeConfig(codec="ffv1")), on_warning=warnings.append)
    assert any("HDR10" in w and "ffv1" in w for w in warnings)
    assert probe(out).color.mastering_display is None


def _x264():  # noqa: ANN202
    from streamsr.io.codecs import EncodeConfig

    return EncodeConfig(codec="libx264", crf=10, preset="ultrafast")


def test_colours_are_preserved(media_dir: Path, tmp_path: Path) -> None:
    """With an identity model (untrained: bilinear), the picture's colours must come back as they went in."""
    from streamsr.models import save_weights
    from streamsr.models.archs.safdn import SAFDN

    weights = tmp_path / "bilinear.safetensors"
    save_weights(SAFDN(feat=8, blocks=1, esa=4, scale=2), weights, arch="safdn")
    src = make_clip(media_dir / "flat.mkv", frames=3, codec="ffv1", pix_fmt="yuv444p", audio=False)
    out = tmp_path / "flat_x2.mkv"
    upscale_file(src, out, _cfg(weights, encode=_x264()))
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(np.float64)
    expected = pattern(64, 48, 0).astype(np.float64)
    # Compare block means (the pattern is resampled x2, so compare 2x2-pooled output).
    pooled = frame.reshape(48, 2, 64, 2, 3).mean(axis=(1, 3))
    assert np.abs(pooled - expected).mean() < 6


def test_existing_output_is_not_overwritten(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError, match="--overwrite"):
        upscale_file(clip_mp4, out, _cfg(tiny_weights))
    assert out.read_bytes() == b"precious"
    upscale_file(clip_mp4, out, _cfg(tiny_weights, overwrite=True))
    assert probe(out).width == 128


def test_error_mid_run_leaves_no_partial_output(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    from streamsr.upscaler import Upscaler

    class Exploding(Upscaler):
        def upscale_batch(self, frames: FrameBatch) -> FrameBatch:
            if frames.index_start >= 4:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-file
            return super().upscale_batch(frames)

    up = Exploding(str(tiny_weights), device="cpu", precision="fp32")
    out = tmp_path / "never.mp4"
    with pytest.raises(KeyboardInterrupt):
        upscale_file(clip_mp4, out, _cfg(tiny_weights), upscaler=up)
    assert list(tmp_path.iterdir()) == []


def test_truncated_source_writes_what_decodes_and_reports_loss(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    full = make_clip(media_dir / "long.mkv", frames=48, audio=False)
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    out = tmp_path / "damaged_x2.mkv"
    with pytest.raises(DecodeError, match="frames lost") as err:
        upscale_file(damaged, out, _cfg(tiny_weights))
    assert 0 < err.value.frames_done < 48 and err.value.frames_lost
    assert probe(out).width == 128  # what decoded was kept, finished and playable


def test_stage_errors_propagate_and_stop_the_pipeline() -> None:
    def batches():  # noqa: ANN202
        for i in range(100):
            yield FrameBatch(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), torch.tensor([i]), Fraction(1, 25), i)

    written: list[int] = []

    def write(b: FrameBatch) -> None:
        if b.index_start == 3:
            raise OSError("disk full")
        written.append(b.index_start)

    with pytest.raises(OSError, match="disk full"):
        run_stages(batches(), lambda bs: bs, write, queue_size=2)
    assert written == [0, 1, 2]


def test_stages_keep_order_and_count() -> None:
    def batches():  # noqa: ANN202
        for i in range(50):
            yield FrameBatch(torch.full((2, 3, 2, 2), i, dtype=torch.uint8), torch.tensor([2 * i, 2 * i + 1]), Fraction(1, 25), 2 * i)

    seen: list[int] = []
    progress: list[int] = []
    run_stages(batches(), lambda bs: bs, lambda b: seen.extend(b.pts.tolist()), queue_size=1, on_progress=progress.append)
    assert seen == list(range(100)) and sum(progress) == 100


def test_audio_reencode_to_aac_when_asked(clip_mkv_subs: Path, tmp_path: Path, tiny_weights: Path) -> None:
    from streamsr.io.codecs import EncodeConfig

    out = tmp_path / "aac.mkv"
    upscale_file(clip_mkv_subs, out, _cfg(tiny_weights, encode=EncodeConfig(audio="aac", preset="ultrafast")))
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(a))
    assert a.codec_context.name == "aac" and abs(samples / 16000 - 1.0) < 0.1  # about 1 s of audio kept


def test_audio_none_drops_it_and_says_so(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    from streamsr.io.codecs import EncodeConfig

    warnings: list[str] = []
    out = tmp_path / "silent.mp4"
    upscale_file(clip_mp4, out, _cfg(tiny_weights, encode=EncodeConfig(audio="none")), on_warning=warnings.append)
    with av.open(str(out)) as c:
        assert not c.streams.audio
    assert any("--audio none" in w for w in warnings)


def test_chapters_and_container_metadata_are_copied(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    src = make_clip(media_dir / "chapters.mkv", frames=12, chapters=[(0, 500, "Opening"), (500, 1000, "Ending")])
    out = tmp_path / "chapters_x2.mkv"
    upscale_file(src, out, _cfg(tiny_weights))
    with av.open(str(src)) as a, av.open(str(out)) as b:
        want = [(float(c["start"] * c["time_base"]), c["metadata"].get("title")) for c in a.chapters()]
        got = [(float(c["start"] * c["time_base"]), c["metadata"].get("title")) for c in b.chapters()]
        assert want == [(0.0, "Opening"), (0.5, "Ending")] and got == want
        assert b.metadata.get("title") == "streamsr test clip"


def test_a_killed_runs_partial_is_removed_by_the_next_run(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    from streamsr.partials import temporary_path

    out = tmp_path / "out.mp4"
    stale = temporary_path(out)
    stale.write_bytes(b"half a file")
    other = temporary_path(tmp_path / "other.mp4")
    other.write_bytes(b"another output's")
    upscale_file(clip_mp4, out, _cfg(tiny_weights))
    assert out.is_file() and not stale.exists()
    assert other.exists()  # not this output's: left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, other.name])


def _with_repeated_pts(src: Path, dst: Path, repeat_at: int) -> None:
    """Remux `src` (video and audio) so that video packet `repeat_at` takes the previous one's pts."""
    with av.open(str(src)) as i, av.open(str(dst), "w", format="matroska") as o:
        streams = {s.index: o.add_stream_from_template(s) for s in (i.streams.video[0], i.streams.audio[0])}
        video, previous, n = i.streams.video[0].index, None, 0
        for packet in i.demux(list(i.streams.video) + list(i.streams.audio)):
            if packet.dts is None:
                continue
            if packet.stream.index == video:
                if n == repeat_at:
                    packet.pts = packet.dts = previous
                previous, n = packet.pts, n + 1
            packet.stream = streams[packet.stream.index]
            o.mux(packet)


def test_repeated_source_timestamp_drops_that_frame_and_says_so(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    clean = make_clip(media_dir / "dup-src.mkv", frames=24, codec="mpeg4", audio=True)
    damaged = tmp_path / "dup.mkv"
    _with_repeated_pts(clean, damaged, repeat_at=10)
    source_times = video_times(damaged)
    assert source_times[9] == source_times[10]
    out = tmp_path / "dup_x2.mp4"  # MP4 refuses two frames on one pts outright
    result = upscale_file(damaged, out, _cfg(tiny_weights))
    assert any("1 frame(s) dropped" in w for w in result.warnings)
    assert video_times(out) == pytest.approx(source_times[:10] + source_times[11:], abs=1e-3)
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1 and sum(1 for _ in c.demux(audio=0)) > 1


def test_frames_lost_inside_a_webm_are_counted_and_reported(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    clean = make_clip(media_dir / "loss.webm", codec="libvpx-vp9", frames=24, audio_codec="libopus",
                      options={"g": "8", "deadline": "realtime", "cpu-used": "8"})
    with av.open(str(clean)) as c:
        where = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(clean.read_bytes())
    pos, size = where[12]
    data[pos : pos + size] = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    damaged = tmp_path / "loss.webm"
    damaged.write_bytes(bytes(data))  # the demuxer loses frames in the middle; the end is intact
    out = tmp_path / "loss_x2.mkv"
    with pytest.raises(DecodeError, match="frames lost") as err:
        upscale_file(damaged, out, _cfg(tiny_weights))
    kept = len(video_times(out))
    assert kept < 24 and err.value.frames_done == kept and err.value.frames_lost == 24 - kept
