"""--codec auto: NVENC where it opens, x264 elsewhere; 10-bit stays 10-bit either way."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from streamsr.config import UpscaleConfig
from streamsr.io import codecs
from streamsr.io.codecs import choose_pix_fmt, resolve_codec
from streamsr.io.probe import probe
from streamsr.run import upscale_file


@pytest.mark.parametrize(
    ("opens", "bit_depth", "width", "expected"),
    [
        (set(), 8, 1920, "libx264"),  # no NVENC (no NVIDIA GPU, or an H100): x264
        ({"h264_nvenc", "hevc_nvenc"}, 8, 1920, "h264_nvenc"),
        ({"hevc_nvenc"}, 8, 7680, "hevc_nvenc"),  # H.264 NVENC stops at 4096 px: its open fails
        ({"h264_nvenc", "hevc_nvenc"}, 10, 1920, "hevc_nvenc"),  # 10-bit: HEVC
        ({"h264_nvenc"}, 10, 1920, "libx265"),  # 10-bit on the CPU: HEVC Main10, which players play
    ],
)
def test_auto_picks_the_first_encoder_that_opens(
    monkeypatch: pytest.MonkeyPatch, opens: set[str], bit_depth: int, width: int, expected: str
) -> None:
    tried: list[tuple[str, str]] = []

    def fake_opens(codec: str, w: int, h: int, pix_fmt: str) -> bool:
        tried.append((codec, pix_fmt))
        return codec in opens

    monkeypatch.setattr(codecs, "encoder_opens", fake_opens)
    fmt = "yuv420p10le" if bit_depth > 8 else "yuv420p"
    assert resolve_codec("auto", width=width, height=width * 9 // 16, source_pix_fmt=fmt, bit_depth=bit_depth) == expected
    if bit_depth > 8:
        assert all(pix_fmt == "p010le" for codec, pix_fmt in tried if codec.endswith("_nvenc"))


def test_named_codec_is_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codecs, "encoder_opens", lambda *_: pytest.fail("a named codec needs no trial"))
    assert resolve_codec("libx265", width=64, height=64, source_pix_fmt="yuv420p", bit_depth=8) == "libx265"


def test_auto_skips_nvenc_for_a_pixel_format_it_cannot_take(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codecs, "encoder_opens", lambda *_: True)  # as if an NVENC GPU were here
    kw = {"width": 1920, "height": 1080, "source_pix_fmt": "yuv420p10le", "bit_depth": 10}
    assert resolve_codec("auto", **kw) == "hevc_nvenc"
    assert resolve_codec("auto", **kw, pix_fmt="yuv420p10le") == "libx265"


def test_nvenc_takes_ten_bit_as_p010() -> None:
    assert choose_pix_fmt("hevc_nvenc", "yuv420p10le", 10) == "p010le"
    assert choose_pix_fmt("hevc_nvenc", "yuv420p", 8) == "yuv420p"


def test_encoder_that_cannot_open_is_reported_false() -> None:
    assert not codecs.encoder_opens("libx264", 0, 0, "yuv420p")  # a zero-size frame never opens
    assert codecs.encoder_opens("libx264", 64, 48, "yuv420p")


def test_auto_writes_h264_and_ten_bit_as_hevc_main10(clip_mp4: Path, clip_10bit: Path, tmp_path: Path, tiny_weights: Path) -> None:
    cfg = UpscaleConfig(scale=2, model=str(tiny_weights), device="cpu", precision="fp32")
    assert cfg.encode.codec == "auto"
    result = upscale_file(clip_mp4, tmp_path / "a.mp4", cfg)
    assert result.codec in ("libx264", "h264_nvenc")
    with av.open(str(result.output)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
    ten = upscale_file(clip_10bit, tmp_path / "b.mp4", cfg)
    assert ten.codec in ("libx265", "hevc_nvenc") and probe(ten.output).bit_depth == 10
    with av.open(str(ten.output)) as c:
        video = c.streams.video[0]
        assert video.codec_context.name == "hevc" and video.codec_context.profile == "Main 10"
        assert video.codec_tag == "hvc1"  # the tag Apple's players and browsers need in MP4
