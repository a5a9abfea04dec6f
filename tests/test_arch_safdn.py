from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
import torch

from streamsr.models import REGISTRY, load_model, load_weights, measure_complexity, save_weights
from streamsr.models.archs import safdn
from streamsr.models.archs.safdn import SAFDN, fuse_concatenation, gram, shift_channels


@pytest.mark.parametrize(
    "hp", [{"feat": 8, "blocks": 1, "esa": 4}, {"feat": 16, "blocks": 2, "scale": 3}, {"feat": 12, "blocks": 1, "scale": 4, "in_ch": 1, "esa": 4}]
)
def test_safdn_roundtrip(tmp_path: Path, hp: dict[str, int]) -> None:
    model = SAFDN(**hp).eval()
    for p in model.parameters():  # the upsampler starts at zero; make outputs depend on all weights
        p.data.normal_(0, 0.05)
    save_weights(model, tmp_path / "m.safetensors", arch="safdn", extra={"training": {"iterations": 3}})
    loaded, meta = load_weights(tmp_path / "m.safetensors")
    assert loaded.hparams == model.hparams
    assert meta["arch"] == "safdn" and '"iterations": 3' in meta["training"]
    x = torch.rand(2, model.hparams["in_ch"], 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert loaded(x).shape == (2, model.hparams["in_ch"], 12 * model.scale, 10 * model.scale)


def test_detect_and_infer_foreign_state_dict(tmp_path: Path) -> None:
    model = SAFDN(feat=16, blocks=2, scale=3, esa=8)
    spec = REGISTRY.detect(model.state_dict())
    assert spec.id == "safdn"
    inferred = spec.infer(model.state_dict())
    assert {k: inferred[k] for k in ("feat", "blocks", "scale", "esa")} == {"feat": 16, "blocks": 2, "scale": 3, "esa": 8}
    # A bare .pth (no metadata) loads through detection, with weights_only.
    torch.save(model.state_dict(), tmp_path / "foreign.pth")
    loaded = load_model(tmp_path / "foreign.pth")
    assert loaded.scale == 3 and loaded.arch == "safdn"


def test_untrained_model_starts_as_bilinear() -> None:
    model = SAFDN(feat=8, blocks=1, esa=4, scale=2).eval()
    x = torch.rand(1, 3, 8, 8)
    expected = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(model(x), expected)


def test_channel_shift_moves_groups_and_zero_fills() -> None:
    x = torch.arange(8 * 4 * 4, dtype=torch.float32).reshape(1, 8, 4, 4)
    y = shift_channels(x, 0.125, pixels=1)
    torch.testing.assert_close(y[:, 0, :-1], x[:, 0, 1:])  # up
    assert (y[:, 0, -1] == 0).all()
    torch.testing.assert_close(y[:, 1, 1:], x[:, 1, :-1])  # down
    torch.testing.assert_close(y[:, 2, :, :-1], x[:, 2, :, 1:])  # left
    torch.testing.assert_close(y[:, 3, :, 1:], x[:, 3, :, :-1])  # right
    torch.testing.assert_close(y[:, 4:], x[:, 4:])  # the rest untouched


def test_attention_is_global_and_linear_in_pixels() -> None:
    """A change in one corner reaches the opposite corner in a single block (global attention)."""
    model = SAFDN(feat=8, blocks=1, esa=4, scale=2).eval()
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    x = torch.rand(1, 3, 48, 48)
    x2 = x.clone()
    x2[:, :, :4, :4] += 0.5
    with torch.no_grad():
        far = (model(x) - model(x2))[:, :, -8:, -8:].abs().max()
    assert far > 0


@pytest.mark.parametrize("pixels", [7, 16, 37])  # below one slice, whole slices, a padded last slice
def test_sliced_gram_equals_the_plain_product(pixels: int) -> None:
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 5, pixels, dtype=torch.float64), torch.randn(2, 3, 5, pixels, dtype=torch.float64)
    torch.testing.assert_close(gram(q, k, chunk=8), q @ k.transpose(-2, -1))


def _concatenating_forward(model: SAFDN, x: torch.Tensor) -> torch.Tensor:
    """SAFDN as DESIGN.md draws it: every fuse 1x1 applied to the concatenation of its inputs."""

    def block_forward(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        kept, y = [], x
        for distil, refine in zip(block.distil, block.refine, strict=True):
            kept.append(block.act(distil(y)))
            y = block.act(refine(y) + y)
        kept.append(block.act(block.last(y)))
        return x + block.spatial(block.attention(block.fuse(torch.cat(kept, dim=1))))

    shallow = model.head(x)
    outs, y = [], shallow
    for block in model.body:
        y = block_forward(block, y)
        outs.append(y)
    y = model.tail(model.fuse(torch.cat(outs, dim=1))) + shallow
    base = torch.nn.functional.interpolate(x, scale_factor=model.scale, mode="bilinear", align_corners=False)
    return model.upsample(y) + base


@pytest.mark.parametrize("part_by_part", [False, True])  # the CPU's way, the GPU's way
def test_model_fuses_the_concatenation_of_its_parts(monkeypatch: pytest.MonkeyPatch, part_by_part: bool) -> None:
    """Either way of fusing (the model picks by device) computes the network DESIGN.md draws."""
    def forced(fuse: torch.nn.Conv2d, parts: Iterable[torch.Tensor], **_: bool) -> torch.Tensor:
        return fuse_concatenation(fuse, parts, part_by_part=part_by_part)

    monkeypatch.setattr(safdn, "fuse_concatenation", forced)
    torch.manual_seed(0)
    model = SAFDN(feat=8, blocks=3, esa=4, scale=2).double().eval()
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    x = torch.rand(2, 3, 12, 10, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _concatenating_forward(model, x))


def test_part_by_part_fuse_has_the_concatenations_values_and_gradients() -> None:
    torch.manual_seed(0)
    fuse = torch.nn.Conv2d(12, 5, 1).double()
    parts = [torch.randn(2, 4, 6, 7, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    results = []
    for part_by_part in (False, True):
        out = fuse_concatenation(fuse, iter(parts), part_by_part=part_by_part)
        grads = torch.autograd.grad((out * out).sum(), [*parts, fuse.weight, fuse.bias])
        results.append((out, *grads))
    for whole, summed in zip(*results, strict=True):
        torch.testing.assert_close(summed, whole)


def test_complexity_reports_params_and_multiadds() -> None:
    model = SAFDN(feat=16, blocks=2, scale=4, esa=8)
    c = measure_complexity(model, scale=4, out_width=128, out_height=64)
    assert c.params == sum(p.numel() for p in model.parameters())
    # Doubling the output area doubles the Multi-Adds (everything runs per pixel).
    c2 = measure_complexity(model, scale=4, out_width=256, out_height=64)
    assert c2.multi_adds == pytest.approx(2 * c.multi_adds, rel=0.02)
