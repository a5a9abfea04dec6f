"""What a user looks at: the network made every frame, colours survive on pixels, images end upright.

The model here (`net_weights`) is seeded random in every layer, so its output is neither bilinear
nor bicubic: each output must equal `Upscaler` on the decoded source and differ from a plain resize.
Colour is checked on pixels through YUV equations of the standards' own (tests/pictures.py).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_clip, pattern
from pictures import (
    SWATCHES,
    decode_rgb_by_tags,
    make_swatch_clip,
    read_rgb,
    rgb_to_yuv,
    swatch_centres,
    swatch_image,
    swatch_spread,
    yuv_to_rgb,
)
from PIL import Image, ImageOps

from streamsr.cli import cli
from streamsr.upscaler import Upscaler, bicubic_upscale

CPU = ["--device", "cpu", "--precision", "fp32", "-q"]
NOT_A_RESIZE = 4.0
"""Mean code values by which the network's output must differ from bicubic (it measures about 9)."""


def invoke(*args: str) -> None:
    result = CliRunner().invoke(cli, [*args, *CPU])
    assert result.exit_code == 0, result.output


def decode_all(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def network_output(weights: Path, frames: list[np.ndarray]) -> np.ndarray:
    """The library's own upscale of `frames` ((H, W, 3) uint8 each): (N, 2H, 2W, 3) uint8."""
    up = Upscaler(str(weights), device="cpu", precision="fp32", tile=0)
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
    return up.upscale_frames(x).permute(0, 2, 3, 1).numpy()


def bicubic_output(frames: list[np.ndarray]) -> np.ndarray:
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    return (bicubic_upscale(x, 2) * 255).round().permute(0, 2, 3, 1).numpy()


def assert_made_by_network(got: list[np.ndarray] | np.ndarray, source: list[np.ndarray], weights: Path) -> None:
    """Every frame within 1 code value of the network on the decoded source, and clearly not bicubic."""
    got = np.stack(got).astype(np.int32)
    want = network_output(weights, source).astype(np.int32)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1
    assert np.abs(got - bicubic_output(source)).mean() > NOT_A_RESIZE


@pytest.fixture(scope="module")
def lossless_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 frames of the moving pattern as lossless RGB (FFV1 bgr0): decoding it is exact, whatever
    the colour handling, so only the model decides the output's pixels."""
    return make_clip(tmp_path_factory.mktemp("lossless") / "rgb.mkv", frames=8, codec="ffv1", pix_fmt="bgr0",
                     audio=False)


# -- the network made the pictures -----------------------------------------------------------


def test_video_frames_are_the_networks(lossless_clip: Path, net_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    invoke("upscale", str(lossless_clip), "-o", str(out), "-m", str(net_weights), "--codec", "ffv1", "--pix-fmt", "bgr0")
    got = decode_all(out)
    assert len(got) == 8
    assert_made_by_network(got, decode_all(lossless_clip), net_weights)


def test_frames_out_are_the_networks(lossless_clip: Path, net_weights: Path, tmp_path: Path) -> None:
    invoke("upscale", str(lossless_clip), "--frames-out", str(tmp_path / "frames"), "-m", str(net_weights))
    got = [(read_rgb(p) * 255).round().astype(np.uint8) for p in sorted((tmp_path / "frames").glob("*.png"))]
    assert_made_by_network(got, decode_all(lossless_clip), net_weights)


def test_segmented_frames_are_the_networks(lossless_clip: Path, net_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    invoke("upscale", str(lossless_clip), "-o", str(out), "-m", str(net_weights), "--codec", "ffv1", "--pix-fmt", "bgr0",
           "--segment-seconds", "0.5")
    assert_made_by_network(decode_all(out), decode_all(lossless_clip), net_weights)


def test_image_is_the_networks(net_weights: Path, tmp_path: Path) -> None:
    rgb = pattern(40, 30, 2)
    Image.fromarray(rgb).save(tmp_path / "still.png")
    invoke("upscale", str(tmp_path / "still.png"), "-m", str(net_weights))
    with Image.open(tmp_path / "still_x2.png") as image:
        assert_made_by_network([np.asarray(image)], [rgb], net_weights)


def test_batch_outputs_are_the_networks(lossless_clip: Path, net_weights: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "clip.mkv").write_bytes(lossless_clip.read_bytes())
    rgb = pattern(40, 30, 5)
    Image.fromarray(rgb).save(src / "still.png")
    invoke("batch", str(src), str(out), "-m", str(net_weights), "--codec", "ffv1", "--pix-fmt", "bgr0")
    assert_made_by_network(decode_all(out / "clip.mkv"), decode_all(lossless_clip), net_weights)
    with Image.open(out / "still.png") as image:
        assert_made_by_network([np.asarray(image)], [rgb], net_weights)


# -- colour on pixels ------------------------------------------------------------------------

# (AVColorSpace matrix, full range, bits): BT.601, BT.709 and BT.2020 10-bit, limited and full.
COLOUR_CASES = [(6, False, 8), (5, True, 8), (1, False, 8), (1, True, 8), (9, False, 10), (9, True, 10)]
COLOUR_IDS = ["bt601-limited", "bt601-full", "bt709-limited", "bt709-full", "bt2020-10bit-limited", "bt2020-10bit-full"]


def tolerance(bits: int) -> float:
    """Code values (of 8 bits) an output may be off the source's colour. An 8-bit source travels
    through 8-bit RGB and back to 8-bit YUV, two quantisations (measured worst: 2.9); a 10-bit
    one through 16-bit RGB (measured worst: 0.8). A wrong matrix or range moves these swatches by
    5 to 40 code values."""
    return 3.0 if bits == 8 else 1.0


@pytest.fixture(scope="module")
def swatch_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, bool, int], Path]:
    folder = tmp_path_factory.mktemp("swatches")
    return {case: make_swatch_clip(folder / f"{i}.mkv", matrix=case[0], full=case[1], bits=case[2])
            for i, case in enumerate(COLOUR_CASES)}


def source_colours(path: Path) -> np.ndarray:
    frames, _tags = decode_rgb_by_tags(path)
    return swatch_centres(frames[0], 1)


@pytest.mark.parametrize("case", COLOUR_CASES, ids=COLOUR_IDS)
def test_video_keeps_colours(case: tuple[int, bool, int], swatch_clips: dict, tiny_weights: Path, tmp_path: Path) -> None:
    src, out = swatch_clips[case], tmp_path / "out.mkv"
    invoke("upscale", str(src), "-o", str(out), "-m", str(tiny_weights), "--codec", "ffv1")
    frames, tags = decode_rgb_by_tags(out)
    _src_frames, src_tags = decode_rgb_by_tags(src)
    assert tags == src_tags
    for rgb in frames:
        assert swatch_spread(rgb, 2) * 255 < 1.0
        assert np.abs(swatch_centres(rgb, 2) - source_colours(src)).max() * 255 <= tolerance(case[2])


@pytest.mark.parametrize("case", COLOUR_CASES, ids=COLOUR_IDS)
def test_frames_out_keep_colours(case: tuple[int, bool, int], swatch_clips: dict, tiny_weights: Path,
                                 tmp_path: Path) -> None:
    src = swatch_clips[case]
    invoke("upscale", str(src), "--frames-out", str(tmp_path / "f"), "-m", str(tiny_weights))
    images = sorted((tmp_path / "f").glob("*.png"))
    assert len(images) == 3
    for image in images:
        rgb = read_rgb(image)
        assert np.abs(swatch_centres(rgb, 2) - source_colours(src)).max() * 255 <= tolerance(case[2])


def test_jpeg_keeps_colours(tiny_weights: Path, tmp_path: Path) -> None:
    """A JPEG is full-range BT.601 YUV inside: its colours must come out as Pillow shows the source."""
    Image.fromarray((swatch_image() * 255).round().astype(np.uint8)).save(tmp_path / "p.jpg", quality=100, subsampling=0)
    invoke("upscale", str(tmp_path / "p.jpg"), "-o", str(tmp_path / "p2.png"), "-m", str(tiny_weights))
    with Image.open(tmp_path / "p.jpg") as a, Image.open(tmp_path / "p2.png") as b:
        src, out = np.asarray(a) / 255, np.asarray(b) / 255
    assert np.abs(swatch_centres(out, 2) - swatch_centres(src, 1)).max() * 255 <= 1.0


def test_reference_equations_round_trip() -> None:
    """The test's own YUV equations invert each other to within the quantisation of their codes."""
    for matrix, full, bits in COLOUR_CASES:
        back = yuv_to_rgb(rgb_to_yuv(SWATCHES[None], matrix=matrix, full=full, bits=bits), matrix=matrix, full=full, bits=bits)
        assert np.abs(back[0] - SWATCHES).max() * 255 < (1.3 if bits == 8 else 0.4)


# -- orientation on pixels -------------------------------------------------------------------


def marked_image() -> np.ndarray:
    """A grey 36x24 picture (as stored) with a red top-left and a blue top-right corner."""
    rgb = np.full((24, 36, 3), 128, np.uint8)
    rgb[:6, :6] = (230, 20, 20)
    rgb[:6, -6:] = (20, 20, 230)
    return rgb


def corner_colours(rgb: np.ndarray) -> list[str]:
    """Which of red/blue/grey sits in each corner (top-left, top-right, bottom-left, bottom-right)."""
    h, w = rgb.shape[:2]
    names = []
    for y, x in ((2, 2), (2, w - 3), (h - 3, 2), (h - 3, w - 3)):
        r, _g, b = (int(v) for v in rgb[y, x])
        names.append("red" if r > 180 and b < 80 else "blue" if b > 180 and r < 80 else "grey")
    return names


@pytest.mark.parametrize("orientation", range(1, 9))
def test_images_end_upright_as_exif_says(orientation: int, tiny_weights: Path, tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(marked_image()).save(src, exif=exif.tobytes())
    with Image.open(src) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    invoke("upscale", str(src), "-m", str(tiny_weights))
    with Image.open(tmp_path / "photo_x2.png") as image:
        got = np.asarray(image.convert("RGB"))
        assert image.getexif().get(0x0112, 1) == 1
    assert got.shape[:2] == (expected.shape[0] * 2, expected.shape[1] * 2)
    assert corner_colours(got) == corner_colours(expected)
    assert corner_colours(expected).count("grey") == 2  # the marks survived the test's own transpose

