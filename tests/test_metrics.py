from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from streamsr.io.images import read_image
from streamsr.train.degrade import bicubic_lr, imresize, modcrop
from streamsr.train.metrics import psnr, rgb_to_y, ssim

SET5 = Path(os.environ.get("STREAMSR_DATA", "/nonexistent")) / "bench" / "Set5"


def test_identical_images() -> None:
    img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    assert psnr(img, img) == math.inf
    assert ssim(img, img) == pytest.approx(1.0)


def test_psnr_known_value() -> None:
    a = torch.full((3, 16, 16), 100, dtype=torch.uint8)
    b = a.clone()
    b[0] += 10  # Y: 16 + 219 * 100 / 255 = 101.88 -> 102; plus 65.481 * 10 / 255 = 104.45 -> 104
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 2**2), abs=1e-9)
    assert psnr(a, b, y_channel=False) == pytest.approx(10 * math.log10(255**2 / (100 / 3)), abs=1e-9)


def test_y_channel_matches_matlab_rgb2ycbcr() -> None:
    white = torch.full((3, 1, 1), 255, dtype=torch.uint8)
    black = torch.zeros((3, 1, 1), dtype=torch.uint8)
    assert rgb_to_y(white).item() == 235 and rgb_to_y(black).item() == 16


def test_matlab_imresize_known_values() -> None:
    # Away from the borders, bicubic (a = -0.5) reproduces a linear ramp exactly, both ways.
    ramp = torch.arange(16, dtype=torch.float64)[None, None]
    up = imresize(ramp, 2)[0, 0, 6:26]
    torch.testing.assert_close(up[1:] - up[:-1], torch.full((19,), 0.5, dtype=torch.float64))
    down = imresize(ramp, 0.5)[0, 0, 2:6]  # output pixel k covers input pixels 2k and 2k+1
    torch.testing.assert_close(down, torch.tensor([4.5, 6.5, 8.5, 10.5], dtype=torch.float64))
    assert imresize(torch.zeros(3, 10, 12, dtype=torch.uint8), 0.5).shape == (3, 5, 6)
    assert modcrop(torch.zeros(3, 11, 13), 4).shape == (3, 8, 12)


@pytest.mark.skipif(not SET5.is_dir(), reason="benchmark data not present (set STREAMSR_DATA)")
@pytest.mark.parametrize(("scale", "published"), [(2, 33.66), (4, 28.42)])
def test_bicubic_baseline_matches_published_set5(scale: int, published: float) -> None:
    scores = []
    for path in sorted(SET5.glob("*.png")):
        hr = modcrop(read_image(path), scale)
        scores.append(psnr(imresize(bicubic_lr(hr, scale), scale), hr, crop_border=scale))
    assert sum(scores) / len(scores) == pytest.approx(published, abs=0.02)


def test_temporal_psnr_measures_flicker_the_original_does_not_have() -> None:
    from streamsr.train.metrics import temporal_psnr

    g = torch.Generator().manual_seed(3)
    hr0 = torch.randint(20, 200, (3, 32, 32), generator=g, dtype=torch.uint8)
    hr1 = hr0.roll(1, dims=2)  # the original moves
    steady0, steady1 = hr0 + 10, hr1 + 10  # wrong, but wrong alike in both frames
    flicker1 = steady1 + (torch.rand(3, 32, 32, generator=g) * 8).to(torch.uint8)  # noise that changes per frame
    assert temporal_psnr(hr0, hr1, hr0, hr1) == math.inf
    assert temporal_psnr(steady0, steady1, hr0, hr1) > 45  # only Y's rounding differs
    assert temporal_psnr(steady0, flicker1, hr0, hr1) < 40  # noise of up to 7 code values, ~2.4 in Y
