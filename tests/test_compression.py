"""Compressed-LR degradation: parsing, the codec round trip, training banks and evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import pattern

from streamsr.cli import cli
from streamsr.io.images import write_png
from streamsr.train.data import PairBank
from streamsr.train.degrade import Compression, compress_frames


def test_parse_and_describe() -> None:
    c = Compression.parse("x264+x265:crf=18-35,noise=2")
    assert (c.codecs, c.crf, c.noise) == (("x264", "x265"), (18, 35), 2.0)
    assert str(c) == "x264+x265:crf=18-35,noise=2"
    assert Compression.parse("x265:crf=30").crf == (30, 30)
    for bad in ("x264", "mpeg2:crf=3", "x264:crf=60", "x264:crf=30,blur=1", "x264:crf=a"):
        with pytest.raises(ValueError, match="degradation"):
            Compression.parse(bad)


def image(width: int, height: int, index: int = 0) -> torch.Tensor:
    return torch.from_numpy(pattern(width, height, index)).permute(2, 0, 1).contiguous()


@pytest.mark.parametrize("codec", ["x264", "x265"])
def test_compression_keeps_size_and_loses_more_at_higher_crf(codec: str) -> None:
    frames = [image(37, 30, i) for i in range(3)]  # odd width: padded for 4:2:0, cropped back
    errors = []
    for crf in (10, 40):
        out = compress_frames(frames, codec, crf)
        assert len(out) == 3 and all(o.shape == f.shape and o.dtype == torch.uint8 for o, f in zip(out, frames, strict=True))
        errors.append(float(sum((o.float() - f.float()).abs().mean() for o, f in zip(out, frames, strict=True))))
    assert 0 < errors[0] < errors[1]


def test_bank_draws_compressed_variants_and_weights_its_sources(tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        write_png(image(64, 64, i), paths[-1])
    bank = PairBank(paths, scale=2, patch=8, compression=Compression.parse("x264:crf=30-35"), variants=2,
                    groups=[0, 0, 0, 1], group_weights=[1.0, 3.0])
    assert all(len(v) == 3 for v in bank.lr)  # clean + 2
    assert all((v[1].float() - v[0].float()).abs().mean() > 0.5 for v in bank.lr)
    # The one image of the second source gets 3/4 of the samples.
    assert bank._p[3] == pytest.approx(0.75)  # noqa: SLF001


def test_eval_with_degradation_scores_lower_than_clean(tmp_path: Path, tiny_weights: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        noisy = image(96, 80, i).float() + torch.from_numpy(rng.normal(0, 8, (3, 80, 96))).float()
        write_png(noisy.clamp(0, 255).to(torch.uint8), folder / f"{i}.png")
    runner = CliRunner()
    clean = runner.invoke(cli, ["eval", "-m", str(tiny_weights), str(folder)])
    worse = runner.invoke(cli, ["eval", "-m", str(tiny_weights), str(folder), "--degradation", "x264:crf=40"])
    assert clean.exit_code == 0 and worse.exit_code == 0, clean.output + worse.output
    assert "LR through x264:crf=40" in worse.output

    def score(output: str) -> float:
        return float(output.strip().splitlines()[-1].split()[2])

    assert score(worse.output) < score(clean.output) - 0.1
