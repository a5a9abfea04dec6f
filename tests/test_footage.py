"""The footage people upscale: interlaced and telecined video, non-square pixels, black borders,
and an exact output size. Every clip is made here with PyAV and FFmpeg's own filters."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from streamsr import upscale
from streamsr.cli import cli
from streamsr.config import UpscaleConfig
from streamsr.errors import ConfigError
from streamsr.frames import VideoInfo
from streamsr.io.probe import probe
from streamsr.stages.crop import Crop, detect_borders
from streamsr.stages.deinterlace import detect_interlacing
from streamsr.stages.resize import Target, choose_scale, plan_shape

NTSC = Fraction(30000, 1001)
FILM = Fraction(24000, 1001)


def bar_picture(width: int, height: int, t: float, *, border: int = 0) -> np.ndarray:
    """A grey field with a bright vertical bar that moves 3 px per field time `t`, and black
    bars `border` rows high at the top and bottom."""
    a = np.full((height, width, 3), 96, np.uint8)
    x = int(t * 3) % (width - 24)
    a[:, x:x + 24] = (230, 200, 160)
    a[height // 3: height // 3 + 6, :] = (40, 160, 60)  # a horizontal edge: combing shows on none, detail on both
    if border:
        a[:border] = 0
        a[height - border:] = 0
    return a


def write_clip(path: Path, pictures: list[np.ndarray], *, rate: Fraction = NTSC, sar: Fraction = Fraction(1),
               interlaced: bool = False, codec: str = "libx264", audio: bool = False, rotation: int = 0) -> Path:
    """Encode RGB `pictures` at `rate`; `interlaced` codes them as top-field-first interlaced
    (flagged so), `sar` is the sample aspect ratio the stream declares."""
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=rate)
        v.height, v.width = pictures[0].shape[:2]
        v.pix_fmt = "yuv420p"
        v.codec_context.sample_aspect_ratio = sar
        if rotation:
            v.set_display_rotation(rotation)
        options = {"qp": "0", "preset": "ultrafast"} if codec == "libx264" else {}
        if interlaced:
            v.codec_context.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
            options["x264-params"] = "tff=1"
        v.options = options
        a = out.add_stream("aac", rate=16000) if audio else None
        for i, rgb in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = 1 / rate
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            samples = (0.2 * np.sin(np.arange(int(16000 * len(pictures) / rate)) / 5)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, 0
            out.mux(a.encode(frame))
            out.mux(a.encode(None))
    return path


def interlaced_pictures(n: int, width: int = 160, height: int = 480) -> list[np.ndarray]:
    """Frames whose top field (even rows) shows time 2i and bottom field time 2i+1."""
    frames = []
    for i in range(n):
        a = bar_picture(width, height, 2 * i).copy()
        a[1::2] = bar_picture(width, height, 2 * i + 1)[1::2]
        frames.append(a)
    return frames


def combing(rgb: np.ndarray) -> float:
    """Energy of the odd rows against the mean of their neighbours, on the columns the bar moves in."""
    y = rgb.astype(np.float64).mean(axis=2)
    odd, around = y[1:-1:2], (y[0:-2:2] + y[2::2]) / 2
    return float(np.mean((odd - around) ** 2))


def frames_of(path: Path) -> tuple[list[np.ndarray], list[Fraction], list[bool]]:
    """RGB pictures, times in seconds and interlaced flags of a video's frames."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        got = [(f.to_ndarray(format="rgb24"), Fraction(f.pts) * s.time_base, f.interlaced_frame) for f in c.decode(s)]
    return [g[0] for g in got], [g[1] for g in got], [g[2] for g in got]


@pytest.fixture
def cfg(tiny_weights: Path) -> UpscaleConfig:
    return UpscaleConfig(model=str(tiny_weights), device="cpu", precision="fp32", backend="torch")


@pytest.fixture(scope="module")
def interlaced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("footage") / "interlaced.mp4", interlaced_pictures(10), interlaced=True)


@pytest.fixture(scope="module")
def progressive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same motion, each frame from one moment: what a deinterlacer should come close to.
    Interlaced clips are 480 lines high, as interlaced video is (smaller ones are judged by their flags)."""
    return write_clip(tmp_path_factory.mktemp("footage") / "progressive.mp4",
                      [bar_picture(160, 480, 2 * i) for i in range(10)])


def test_an_interlaced_clip_is_deinterlaced_before_the_model(interlaced: Path, progressive: Path, cfg: UpscaleConfig,
                                                            tmp_path: Path) -> None:
    auto = upscale(interlaced, tmp_path / "auto.mkv", cfg)
    off = upscale(interlaced, tmp_path / "off.mkv", replace(cfg, deinterlace="off"))
    reference = upscale(progressive, tmp_path / "ref.mkv", cfg)
    (auto_rgb, auto_t, auto_flags), (off_rgb, _, _), (ref_rgb, ref_t, _) = (
        frames_of(r.output) for r in (auto, off, reference))
    assert len(auto_rgb) == 10 and auto_t == ref_t  # one frame per frame, at the source's times
    assert not any(auto_flags) and probe(auto.output).field_order == "progressive"
    comb_auto, comb_off, comb_ref = (np.mean([combing(f) for f in frames[1:-1]]) for frames in (auto_rgb, off_rgb, ref_rgb))
    assert comb_off > 5 * comb_ref  # the combs enlarged with the picture
    assert comb_auto < 1.5 * comb_ref + 1.0, (comb_auto, comb_ref, comb_off)
    assert any("bwdif" in line and "tff" in line for line in auto.picture)
    assert not off.picture


def test_field_rate_gives_one_frame_per_field_at_field_times(interlaced: Path, cfg: UpscaleConfig, tmp_path: Path) -> None:
    result = upscale(interlaced, tmp_path / "fields.mp4", replace(cfg, field_rate=True))
    _, times, flags = frames_of(result.output)
    assert result.frames == len(times) == 20 and not any(flags)
    assert {b - a for a, b in zip(times, times[1:], strict=False)} == {1 / (2 * NTSC)}


def test_a_progressive_clip_flagged_interlaced_is_left_alone(progressive: Path, cfg: UpscaleConfig, tmp_path: Path) -> None:
    flagged = write_clip(tmp_path / "flagged.mkv", [bar_picture(160, 480, 2 * i) for i in range(10)], interlaced=True)
    assert probe(flagged).field_order == "tff"
    assert not detect_interlacing(flagged).interlaced  # idet decides, not the flag
    result = upscale(flagged, tmp_path / "out.mkv", cfg)
    assert result.picture == ()
    plain = upscale(progressive, tmp_path / "plain.mkv", cfg)
    for a, b in zip(frames_of(result.output)[0], frames_of(plain.output)[0], strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0


def telecined(path: Path, film: list[np.ndarray]) -> Path:
    """`film` at 24000/1001 through FFmpeg's telecine filter (3:2 pulldown, top field first), losslessly coded."""
    graph = av.filter.Graph()
    h, w = film[0].shape[:2]
    nodes = [graph.add("buffer", video_size=f"{w}x{h}", pix_fmt="yuv420p", time_base=str(1 / FILM),
                       pixel_aspect="1/1", frame_rate=f"{FILM.numerator}/{FILM.denominator}"),
             graph.add("telecine", "first_field=top:pattern=23"), graph.add("buffersink")]
    graph.link_nodes(*nodes)
    graph.configure()
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=NTSC)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"qp": "0", "preset": "ultrafast"}
        # The woven fields go to the encoder as they are: through RGB, their chroma would blend.
        woven_times: list[int] = []
        for i, rgb in enumerate([*film, None]):
            frame = None
            if rgb is not None:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                frame.pts = i
            graph.vpush(frame)
            while True:
                try:
                    woven = graph.vpull()
                except (av.BlockingIOError, av.EOFError):
                    break
                woven.pts, woven.time_base = len(woven_times), 1 / NTSC
                woven_times.append(woven.pts)
                out.mux(v.encode(woven))
        out.mux(v.encode(None))
    return path


def test_ivtc_gives_back_the_film_frames_at_film_times(cfg: UpscaleConfig, tmp_path: Path) -> None:
    film = [bar_picture(160, 120, 5 * i) for i in range(20)]
    source = telecined(tmp_path / "telecined.mkv", film)
    assert len(frames_of(source)[0]) == 25
    original = upscale(write_clip(tmp_path / "film.mkv", film, rate=FILM), tmp_path / "film_x2.mkv", cfg)
    result = upscale(source, tmp_path / "ivtc.mp4", replace(cfg, ivtc=True))
    rgb, times, _ = frames_of(result.output)
    assert result.frames == len(rgb) == 20
    assert {b - a for a, b in zip(times, times[1:], strict=False)} == {1 / FILM}
    for got, want in zip(rgb, frames_of(original.output)[0], strict=True):
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 1.5


@pytest.mark.parametrize(("sar", "dar"), [(Fraction(32, 27), Fraction(16, 9)), (Fraction(8, 9), Fraction(4, 3))])
def test_the_pixel_aspect_is_kept_or_made_square(sar: Fraction, dar: Fraction, cfg: UpscaleConfig, tmp_path: Path) -> None:
    src = write_clip(tmp_path / "anamorphic.mp4", [bar_picture(180, 120, i) for i in range(4)], sar=sar, audio=True)
    assert probe(src).display_aspect_ratio == dar
    kept = probe(upscale(src, tmp_path / "kept.mp4", cfg).output)
    assert (kept.width, kept.height, kept.sample_aspect_ratio) == (360, 240, sar)
    assert kept.display_aspect_ratio == dar and kept.has_audio
    square = probe(upscale(src, tmp_path / "square.mp4", replace(cfg, square_pixels=True)).output)
    assert square.sample_aspect_ratio == 1
    assert abs(square.width - square.height * dar) <= 1
    assert max(square.width, square.height) >= 240  # no side loses samples to the square pixels


def content_box(rgb: np.ndarray) -> tuple[int, int]:
    """Width and height of the part of a frame that is not black bars."""
    luma = rgb.astype(np.float64).mean(axis=2)
    rows, cols = np.flatnonzero(luma.mean(axis=1) > 24), np.flatnonzero(luma.mean(axis=0) > 24)
    return int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


@pytest.mark.parametrize(("sar", "size", "fit", "frame", "content"), [
    (Fraction(8, 9), (None, 360), "pad", (480, 360), (480, 360)),  # 4:3 by height
    (Fraction(32, 27), (None, 360), "pad", (640, 360), (640, 360)),  # 16:9 by height
    (Fraction(8, 9), (640, 360), "pad", (640, 360), (480, 360)),  # 4:3 pillarboxed in 16:9
    (Fraction(32, 27), (480, 360), "pad", (480, 360), (480, 270)),  # 16:9 letterboxed in 4:3
    (Fraction(8, 9), (640, 360), "crop", (640, 360), (640, 360)),
    (Fraction(8, 9), (640, 360), "stretch", (640, 360), (640, 360)),
])
def test_a_target_size_is_met_with_the_picture_in_its_aspect(sar: Fraction, size: tuple[int | None, int], fit: str,
                                                             frame: tuple[int, int], content: tuple[int, int],
                                                             cfg: UpscaleConfig, tmp_path: Path) -> None:
    src = write_clip(tmp_path / "src.mp4", [bar_picture(180, 120, i) for i in range(3)], sar=sar)
    result = upscale(src, tmp_path / "out.mp4", replace(cfg, width=size[0], height=size[1], fit=fit))
    info = probe(result.output)
    assert (info.width, info.height) == frame and info.sample_aspect_ratio == 1
    got = content_box(frames_of(result.output)[0][1])
    assert abs(got[0] - content[0]) <= 2 and abs(got[1] - content[1]) <= 2
    assert any("resampled" in line and "bicubic" in line for line in result.picture)


def test_crop_auto_feeds_the_model_the_picture_only_and_pad_restores_the_bars(cfg: UpscaleConfig, tmp_path: Path) -> None:
    # A dark opening: the borders are measured across the file, not on its first frames.
    pictures = [bar_picture(180, 120, i, border=20) for i in range(12)]
    pictures[0][20:100] = 8
    src = write_clip(tmp_path / "letterboxed.mp4", pictures, audio=True)
    assert detect_borders(src, probe(src)) == Crop(180, 80, 0, 20)
    cropped = upscale(src, tmp_path / "cropped.mp4", replace(cfg, crop="auto"))
    info = probe(cropped.output)
    assert (info.width, info.height) == (360, 160)  # the model ran on 180x80
    assert content_box(frames_of(cropped.output)[0][5]) == (360, 160)
    padded = upscale(src, tmp_path / "padded.mp4", replace(cfg, crop="auto", width=360, height=240, fit="pad"))
    rgb = frames_of(padded.output)[0][5]
    assert rgb.shape[:2] == (240, 360)
    assert content_box(rgb) == (360, 160) and rgb[:36].max() < 30 and rgb[-36:].max() < 30
    assert probe(padded.output).has_audio


def test_crop_given_must_fit_the_picture(cfg: UpscaleConfig, progressive: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not fit"):
        upscale(progressive, tmp_path / "o.mkv", replace(cfg, crop="200:100:0:0"))
    with pytest.raises(ConfigError, match="W:H:X:Y"):
        upscale(progressive, tmp_path / "o.mkv", replace(cfg, crop="100x100"))
    assert not (tmp_path / "o.mkv").exists()


def info_of(width: int, height: int, sar: Fraction) -> VideoInfo:
    return VideoInfo(width=width, height=height, fps=NTSC, time_base=Fraction(1, 1000), num_frames_estimate=0,
                     codec="h264", pix_fmt="yuv420p", bit_depth=8, sample_aspect_ratio=sar)


def test_the_model_scale_is_the_smallest_that_reaches_the_target() -> None:
    dvd = info_of(720, 480, Fraction(32, 27))
    assert choose_scale(dvd, Target(height=1080), (2, 3, 4)) == 3  # 1920x1080 needs x2.67 across
    assert choose_scale(info_of(720, 480, Fraction(8, 9)), Target(height=1080), (2, 3, 4)) == 3
    assert choose_scale(info_of(1920, 1080, Fraction(1)), Target(height=1440), (2, 3, 4)) == 2
    assert choose_scale(info_of(320, 180, Fraction(1)), Target(height=2160), (2, 3, 4)) == 4  # beyond: the largest
    shape = plan_shape(info_of(720, 480, Fraction(8, 9)), Target(1920, 1080, "pad"), 3)
    assert (shape.canvas, shape.picture, shape.offset) == ((1920, 1080), (1440, 1080), (240, 0))


def test_a_target_size_picks_the_model_scale(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "src.mp4", [bar_picture(96, 64, i) for i in range(2)])
    result = upscale(src, tmp_path / "out.mp4", UpscaleConfig(height=180, device="cpu", precision="fp32", backend="torch"))
    assert (probe(result.output).width, probe(result.output).height) == (270, 180)
    assert any(line.startswith("288x192 resampled to 270x180") for line in result.picture)  # x3 for x2.81


def test_segments_deinterlace_to_field_rate(interlaced: Path, cfg: UpscaleConfig, tmp_path: Path) -> None:
    result = upscale(interlaced, tmp_path / "seg.mkv", replace(cfg, field_rate=True), segment_seconds=0.1)
    assert result.frames == len(frames_of(result.output)[0]) == 20
    with pytest.raises(ConfigError, match="segments"):
        upscale(interlaced, tmp_path / "seg2.mkv", replace(cfg, ivtc=True), segment_seconds=0.1)


def test_a_read_once_source_is_deinterlaced_from_its_first_frames(interlaced: Path, cfg: UpscaleConfig, tmp_path: Path) -> None:
    result = upscale(str(interlaced), tmp_path / "stream.mkv", cfg, input_format="mov,mp4,m4a,3gp,3g2,mj2")
    rgb, _, flags = frames_of(result.output)
    assert len(rgb) == 10 and not any(flags)
    assert any("bwdif" in line for line in result.picture)


def test_cli_probe_shows_shape_and_fields_and_upscale_reports_them(interlaced: Path, tiny_weights: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    probed = runner.invoke(cli, ["probe", str(interlaced)])
    assert probed.exit_code == 0
    assert "sample aspect ratio 1:1" in probed.output and "declared tff; pictures interlaced, tff" in probed.output
    out = tmp_path / "o.mp4"
    run = runner.invoke(cli, ["upscale", str(interlaced), "-o", str(out), "-m", str(tiny_weights), "--device", "cpu",
                              "--size", "400x240", "--fit", "pad", "-q"])
    assert run.exit_code == 0, run.output
    assert (probe(out).width, probe(out).height) == (400, 240)
    bad = runner.invoke(cli, ["upscale", str(interlaced), "-o", str(tmp_path / "b.mp4"), "--size", "400by240"])
    assert bad.exit_code == 2 and "WIDTHxHEIGHT" in bad.output
    odd = runner.invoke(cli, ["upscale", str(interlaced), "-o", str(tmp_path / "b.mp4"), "--height", "241"])
    assert odd.exit_code != 0 and "even" in odd.output and not (tmp_path / "b.mp4").exists()


def test_an_image_meets_a_target_size_too(tiny_weights: Path, tmp_path: Path) -> None:
    from PIL import Image

    src = tmp_path / "photo.png"
    Image.fromarray(bar_picture(120, 80, 3)).save(src)
    out = tmp_path / "photo_big.png"
    result = upscale(src, out, UpscaleConfig(model=str(tiny_weights), device="cpu", width=320, height=320, fit="pad"))
    assert (result.width, result.height) == (320, 320) and Image.open(out).size == (320, 320)
    assert content_box(np.asarray(Image.open(out).convert("RGB"))) == (320, 214)  # 3:2 fitted into a square, even
    with pytest.raises(ConfigError, match="take a video"):
        upscale(src, tmp_path / "c.png", UpscaleConfig(model=str(tiny_weights), crop="auto"))


def test_a_target_size_is_the_size_the_viewer_sees(cfg: UpscaleConfig, tmp_path: Path) -> None:
    phone = write_clip(tmp_path / "phone.mp4", [bar_picture(180, 120, i) for i in range(3)], rotation=-90)
    assert probe(phone).rotation_degrees == -90  # shown 120 wide, 180 high
    out = probe(upscale(phone, tmp_path / "out.mp4", replace(cfg, height=360)).output)
    assert (out.width, out.height, out.rotation_degrees) == (360, 240, -90)  # shown 240 wide, 360 high


def test_telecined_film_under_auto_is_deinterlaced_with_a_pointer_to_ivtc(cfg: UpscaleConfig, tmp_path: Path) -> None:
    source = telecined(tmp_path / "telecined.mkv", [bar_picture(160, 480, 5 * i) for i in range(20)])
    warnings: list[str] = []
    result = upscale(source, tmp_path / "out.mkv", cfg, on_warning=warnings.append)
    assert any("looks telecined" in w and "--ivtc" in w for w in warnings), warnings
    assert result.frames == 25 and any("bwdif" in line for line in result.picture)


def test_an_explicit_method_deinterlaces_whatever_idet_says(progressive: Path, cfg: UpscaleConfig, tmp_path: Path) -> None:
    result = upscale(progressive, tmp_path / "out.mkv", replace(cfg, deinterlace="yadif"))
    assert result.frames == 10 and any(line.startswith("deinterlaced with yadif") for line in result.picture)
