"""The figures we publish hold: `eval` scores bicubic as the SR literature does, and every shipped
weight file still reaches the Set5 quality recorded in its metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamsr.cli import cli
from streamsr.models.weights import read_metadata

SET5 = Path(os.environ.get("STREAMSR_DATA", "/nonexistent")) / "bench" / "Set5"
WEIGHTS = sorted((Path(__file__).resolve().parents[1] / "weights").glob("*.safetensors"))
needs_set5 = pytest.mark.skipif(not SET5.is_dir(), reason="benchmark data not present (set STREAMSR_DATA)")

PUBLISHED_BICUBIC = {2: 33.66, 3: 30.39, 4: 28.42}
"""Bicubic on Set5, Y channel, border of `scale` shaved (the tables of EDSR, RCAN, IMDN, BSRN...)."""


def eval_set5(model: Path, folder: Path) -> dict[str, float]:
    result = CliRunner().invoke(cli, ["eval", "-m", str(model), str(SET5), "--json", str(folder / "scores.json")])
    assert result.exit_code == 0, result.output
    return json.loads((folder / "scores.json").read_text())["sets"][0]


@needs_set5
@pytest.mark.parametrize("weights", WEIGHTS, ids=[w.stem for w in WEIGHTS])
def test_shipped_weights_reproduce_their_recorded_set5(weights: Path, tmp_path: Path) -> None:
    recorded = json.loads(read_metadata(weights)["quality"])["Set5"]
    scores = eval_set5(weights, tmp_path)
    assert scores["name"] == "Set5" and scores["images"] == 5
    assert scores["psnr"] == pytest.approx(recorded["psnr"], abs=0.01)
    assert scores["ssim"] == pytest.approx(recorded["ssim"], abs=0.0005)
    # The same run's bicubic column is the literature's (measured 33.649 / 30.385 / 28.419).
    scale = int(read_metadata(weights)["scale"])
    assert scores["bicubic_psnr"] == pytest.approx(PUBLISHED_BICUBIC[scale], abs=0.015)
