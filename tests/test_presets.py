from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streamsr.cli import cli
from streamsr.errors import ConfigError
from streamsr.presets import list_presets, load_preset


def test_shipped_presets_load() -> None:
    names = {p.name for p in list_presets()}
    assert {"default", "fast", "archive", "web"} <= names
    assert all(p.description for p in list_presets())
    assert load_preset("archive").config.encode.pix_fmt == "yuv420p10le"
    assert load_preset("web").config.encode.faststart


def test_pipelines_command_lists_them() -> None:
    result = CliRunner().invoke(cli, ["pipelines"])
    assert result.exit_code == 0 and "archive" in result.output and "web" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [("scale = 4\ncrf = 3\n", "unknown key 'crf'"), ("[encode]\ncodec = 264\n", "codec: expected str"),
     ("scale = 9\n", "scale must be from 2 to 8"), ("[encode]\naudio = 'mp3'\n", "audio must be")],
)
def test_bad_presets_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_preset(path)


def test_unknown_preset_name() -> None:
    with pytest.raises(ConfigError, match="unknown pipeline 'nope'"):
        load_preset("nope")


def test_flags_override_the_preset(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    import av

    out = tmp_path / "o.mp4"
    # archive asks for x265 10-bit at x4; the flags ask for x264 yuv420p at x2 with our model.
    args = ["upscale", str(clip_mp4), "-o", str(out), "-p", "archive", "-s", "2", "-m", str(tiny_weights),
            "--codec", "libx264", "--pix-fmt", "yuv420p", "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "h264" and v.width == 128 and v.codec_context.pix_fmt == "yuv420p"


def test_preset_values_apply(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    import av

    out = tmp_path / "o.mp4"
    result = CliRunner().invoke(cli, ["upscale", str(clip_mp4), "-o", str(out), "-p", "archive", "-s", "2", "-m", str(tiny_weights), "-q"])
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "hevc" and v.codec_context.pix_fmt == "yuv420p10le"


def test_compressed_preset_picks_the_video_model_of_the_asked_scale(clip_mp4: Path) -> None:
    from streamsr.cli import build_config, upscale

    for args, model, scale in (([], "safdn-x4-video", 4), (["-s", "2"], "safdn-x2-video", 2)):
        ctx = upscale.make_context("upscale", [str(clip_mp4), "-p", "compressed", *args])
        config = build_config(ctx, "compressed", ctx.params)
        assert (config.model, config.scale) == (model, scale)
