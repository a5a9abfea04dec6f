"""Still images: same format, mode and depth out; orientation applied; ICC and EXIF kept; atomic."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import pattern
from PIL import Image, ImageCms

from streamsr.cli import cli
from streamsr.config import UpscaleConfig
from streamsr.errors import OutputError
from streamsr.images import upscale_image
from streamsr.upscaler import Upscaler


def _cfg(weights: Path) -> UpscaleConfig:
    return UpscaleConfig(scale=2, model=str(weights), device="cpu", precision="fp32", backend="torch")


def _engine_output(weights: Path, rgb: np.ndarray) -> np.ndarray:
    engine = Upscaler(str(weights), device="cpu", precision="fp32", tile=0)
    frames = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    return engine.upscale_frames(frames)[0].permute(1, 2, 0).numpy()


def test_png_stays_an_rgb_png_with_the_models_pixels(tmp_path: Path, tiny_weights: Path) -> None:
    rgb = pattern(40, 30, 3)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    result = CliRunner().invoke(cli, ["upscale", str(tmp_path / "photo.png"), "--model", str(tiny_weights),
                                      "--device", "cpu", "--backend", "torch"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "photo_x2.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png", "photo_x2.png"]
    with Image.open(out) as image:
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (80, 60)
        np.testing.assert_array_equal(np.asarray(image), _engine_output(tiny_weights, rgb))


def test_sixteen_bit_png_stays_sixteen_bit(tmp_path: Path, tiny_weights: Path) -> None:
    rgb = (pattern(24, 16, 1).astype(np.uint16) * 257 + np.arange(24, dtype=np.uint16)[None, :, None])
    src = tmp_path / "deep.png"
    with av.open(str(src), "w", format="image2") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = 24, 16, "rgb48be"
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    result = upscale_image(src, None, _cfg(tiny_weights))
    assert result.bits == 16
    with av.open(str(result.output)) as c:
        frame = next(c.decode(video=0))
        assert frame.format.name == "rgb48be" and (frame.width, frame.height) == (48, 32)
        got = frame.to_ndarray(format="rgb48le")
    np.testing.assert_array_equal(got, _engine_output(tiny_weights, rgb))
    assert np.any(got % 257 != 0)  # the low byte carries information: not 8 bits scaled up


def test_jpeg_is_turned_upright_and_keeps_icc_and_exif(tmp_path: Path, tiny_weights: Path) -> None:
    src = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    exif[0x010F] = "streamsr test camera"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(pattern(40, 24, 2)).save(src, quality=95, exif=exif.tobytes(), icc_profile=icc)
    result = upscale_image(src, tmp_path / "up.jpg", _cfg(tiny_weights))
    with Image.open(result.output) as image:
        assert image.format == "JPEG" and image.size == (48, 80)  # upright: 24x40, doubled
        assert image.info.get("icc_profile") == icc
        kept = image.getexif()
        assert kept.get(0x010F) == "streamsr test camera" and kept.get(0x0112, 1) == 1


def test_grey_and_alpha_images_keep_their_mode(tmp_path: Path, tiny_weights: Path) -> None:
    grey = tmp_path / "scan.png"
    Image.fromarray(pattern(20, 20, 0)[..., 0]).save(grey)
    rgba = pattern(20, 20, 1)
    alpha = np.zeros((20, 20), np.uint8)
    alpha[:, 10:] = 255
    Image.fromarray(np.dstack([rgba, alpha])).save(tmp_path / "logo.webp", lossless=True)
    with Image.open(upscale_image(grey, None, _cfg(tiny_weights)).output) as image:
        assert image.mode == "L" and image.size == (40, 40)
    with Image.open(upscale_image(tmp_path / "logo.webp", None, _cfg(tiny_weights)).output) as image:
        assert image.format == "WEBP" and image.mode == "RGBA" and image.size == (40, 40)
        a = np.asarray(image)[..., 3]
        assert a[:, :16].max() < 40 and a[:, 24:].min() > 215  # transparent left, opaque right


def test_image_to_a_video_suffix_is_refused_and_nothing_is_written(tmp_path: Path, tiny_weights: Path) -> None:
    Image.fromarray(pattern(16, 16, 0)).save(tmp_path / "a.png")
    with pytest.raises(OutputError, match="image suffix"):
        upscale_image(tmp_path / "a.png", tmp_path / "a.mp4", _cfg(tiny_weights))
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
