"""`streamsr compare`: bicubic beside the model, with the most detailed region enlarged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from conftest import make_clip, pattern
from PIL import Image

from streamsr.cli import cli
from streamsr.compare import LABEL_HEIGHT, PANEL_WIDTH, ZOOM_SIDE, compare_picture, most_detailed
from streamsr.upscaler import Upscaler, bicubic_upscale


def test_most_detailed_finds_the_textured_corner() -> None:
    rgb = np.full((64, 64, 3), 128, np.uint8)
    rgb[40:56, 8:24] = np.random.default_rng(0).integers(0, 256, (16, 16, 3))
    x, y = most_detailed(rgb, 16)
    assert abs(x - 8) <= 4 and abs(y - 40) <= 4


def test_picture_shows_bicubic_beside_the_model(tmp_path: Path, tiny_weights: Path) -> None:
    with torch.no_grad():
        engine = Upscaler(str(tiny_weights), device="cpu", precision="fp32", tile=0)
        for p in engine._module.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # a model visibly different from bicubic
    rgb = pattern(60, 40, 5)
    Image.fromarray(rgb).save(tmp_path / "still.png")
    result = compare_picture(tmp_path / "still.png", upscaler=engine)
    picture = np.asarray(result.picture)
    top = LABEL_HEIGHT + round(80 * PANEL_WIDTH / 120)
    assert picture.shape == (top + LABEL_HEIGHT + ZOOM_SIDE, 2 * PANEL_WIDTH, 3)
    left, right = picture[LABEL_HEIGHT:top, :PANEL_WIDTH], picture[LABEL_HEIGHT:top, PANEL_WIDTH:]
    assert np.abs(left.astype(int) - right.astype(int)).mean() > 2  # the halves differ where the model acts
    x, y, side = result.crop
    lr = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)
    bicubic = bicubic_upscale(lr, 2)[0].mul(255).round().byte().permute(1, 2, 0).numpy()
    offset = (PANEL_WIDTH - ZOOM_SIDE) // 2
    zoom = picture[top + LABEL_HEIGHT:, offset:offset + ZOOM_SIDE]
    step = ZOOM_SIDE // side
    np.testing.assert_array_equal(zoom[::step, ::step][:side, :side], bicubic[y:y + side, x:x + side])


def test_cli_compares_a_video_with_its_upscaled_file(tmp_path: Path, tiny_weights: Path) -> None:
    src = make_clip(tmp_path / "clip.mkv", width=64, height=48, frames=12, fps=12)
    runner = CliRunner()
    args = ["--model", str(tiny_weights), "--device", "cpu", "--backend", "torch"]
    assert runner.invoke(cli, ["upscale", str(src), "-o", str(tmp_path / "clip_x2.mkv"), *args]).exit_code == 0
    result = runner.invoke(cli, ["compare", str(src), str(tmp_path / "clip_x2.mkv"), "--at", "0:00.5",
                                 "-o", str(tmp_path / "cmp.png")])
    assert result.exit_code == 0, result.output
    assert "frame at 0.500 s" in result.output
    with Image.open(tmp_path / "cmp.png") as image:
        assert image.size[0] == 2 * PANEL_WIDTH
    bad = runner.invoke(cli, ["compare", str(src), "--at", "soon"])
    assert bad.exit_code == 2 and "not a time" in bad.output
