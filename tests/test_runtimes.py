"""SAFDN exported to ONNX and run by ONNX Runtime and OpenVINO: the same output as torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from streamsr.errors import BackendUnavailableError
from streamsr.models import ModelDescriptor, load_model
from streamsr.models.archs.safdn import SAFDN
from streamsr.models.runtimes import cached_onnx, export_onnx, resolve_runtime
from streamsr.upscaler import Upscaler

pytest.importorskip("onnx")


@pytest.fixture()
def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelDescriptor:
    """A small SAFDN x2 with windowed attention (8 px windows), away from its bilinear start."""
    monkeypatch.setenv("STREAMSR_CACHE", str(tmp_path / "cache"))
    module = SAFDN(feat=8, blocks=2, esa=4, scale=2, window=8).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return ModelDescriptor.from_module(module, name="net", arch="safdn")


# Frames larger and smaller than a window, sides that are not multiples of a cell, a batch.
SHAPES = [(1, 3, 24, 40), (1, 3, 5, 37), (2, 3, 31, 9), (1, 3, 64, 64)]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_graph_runtimes_match_torch(net: ModelDescriptor, backend: str) -> None:
    pytest.importorskip(backend)
    reference = Upscaler(net, device="cpu", precision="fp32", tile=0)
    engine = Upscaler(net, device="cpu", precision="fp32", tile=0, backend=backend)
    assert engine.runtime == backend and engine.model.size.minimum == 5  # two cells of 4 px
    for shape in SHAPES:
        x = torch.rand(*shape)
        torch.testing.assert_close(engine(x), reference(x), atol=2e-4, rtol=0)


def test_openvino_compiles_once_per_shape(net: ModelDescriptor) -> None:
    pytest.importorskip("openvino")
    engine = Upscaler(net, device="cpu", precision="fp32", tile=0, backend="openvino")
    for _ in range(3):
        engine(torch.rand(1, 3, 20, 30))
    engine(torch.rand(1, 3, 30, 20))
    assert engine.model.module.compiled_shapes() == [(1, 3, 20, 30), (1, 3, 30, 20)]


def test_export_is_cached_by_content(net: ModelDescriptor, tmp_path: Path) -> None:
    first = cached_onnx(net)
    stamp = first.stat().st_mtime_ns
    assert cached_onnx(net) == first and first.stat().st_mtime_ns == stamp
    with torch.no_grad():
        next(net.module.parameters()).add_(1)
    assert cached_onnx(net) != first  # changed weights: a new graph


def test_export_leaves_no_partial_file(net: ModelDescriptor, tmp_path: Path) -> None:
    out = export_onnx(net, tmp_path / "m.onnx")
    assert out.is_file() and [p.name for p in tmp_path.iterdir() if p.name != "cache"] == ["m.onnx"]


def test_a_missing_runtime_is_one_clear_line(net: ModelDescriptor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streamsr.models.runtimes.runtime_available", lambda runtime: runtime == "torch")
    with pytest.raises(BackendUnavailableError, match=r'openvino is not installed \(pip install "streamsr\[openvino\]"\)'):
        resolve_runtime("openvino", net, torch.device("cpu"))
    assert resolve_runtime("auto", net, torch.device("cpu")) == "torch"  # never picks what is missing


def test_auto_keeps_torch_on_cuda_and_for_other_architectures(net: ModelDescriptor) -> None:
    assert resolve_runtime("auto", net, torch.device("cuda")) == "torch"
    other = ModelDescriptor(torch.nn.Identity(), "m", "spandrel:SPAN", 2, 3)
    assert resolve_runtime("auto", other, torch.device("cpu")) == "torch"


def test_shipped_model_graph_scores_as_torch_on_a_real_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    from streamsr.io.images import read_image
    from streamsr.train.degrade import bicubic_lr, modcrop
    from streamsr.train.metrics import psnr

    path = Path(os.environ.get("STREAMSR_DATA", "/nonexistent")) / "bench" / "B100" / "3096.png"
    if not path.is_file():
        pytest.skip("benchmark data not present (set STREAMSR_DATA)")
    monkeypatch.setenv("STREAMSR_CACHE", str(tmp_path))
    model = load_model("safdn-x4")
    hr = modcrop(read_image(path), 4)
    lr = bicubic_lr(hr, 4)[None]
    scores = {backend: psnr(Upscaler(model, device="cpu", precision="fp32", tile=0, backend=backend).upscale_frames(lr)[0], hr,
                            crop_border=4)
              for backend in ("torch", "onnxruntime")}
    assert abs(scores["onnxruntime"] - scores["torch"]) < 0.01
