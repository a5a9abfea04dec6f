from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from streamsr.models import REGISTRY, load_model, load_weights, measure_complexity, save_weights
from streamsr.models.archs import safdn
from streamsr.models.archs.safdn import (
    SAFDN,
    TRAINING_PATCH,
    ACSelfAttention,
    fuse_concatenation,
    gram,
    shift_channels,
    windowed_attention,
)
from streamsr.models.descriptor import ModelDescriptor
from streamsr.models.weights import read_metadata


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


def _window_attention_by_hand(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, t: torch.Tensor, window: int) -> torch.Tensor:
    """The windowed attention written out window by window, for one image and one head: the
    window at each corner of the grid of window/2 cells covers the 2 x 2 cells around it (shifted
    inwards at the borders), and each pixel blends its cell's four corners bilinearly."""
    d, h, w = q.shape
    cell = window // 2

    def axis(length: int) -> tuple[list[tuple[int, int]], list[float]]:
        cells = -(-length // cell)
        spans = []
        for vertex in range(cells + 1):
            first = min(max(vertex - 1, 0), max(cells - 2, 0))
            spans.append((first * cell, min((first + 2) * cell, length)))
        return spans, [((x % cell) + 0.5) / cell for x in range(length)]

    rows, after_y = axis(h)
    cols, after_x = axis(w)
    out = torch.zeros(d, h, w, dtype=torch.float64)
    for y in range(h):
        for x in range(w):
            for vy, wy in ((y // cell, 1 - after_y[y]), (y // cell + 1, after_y[y])):
                for vx, wx in ((x // cell, 1 - after_x[x]), (x // cell + 1, after_x[x])):
                    (y0, y1), (x0, x1) = rows[vy], cols[vx]
                    qw = torch.nn.functional.normalize(q[:, y0:y1, x0:x1].reshape(d, -1), dim=-1)
                    kw = torch.nn.functional.normalize(k[:, y0:y1, x0:x1].reshape(d, -1), dim=-1)
                    attn = torch.softmax(qw @ kw.T * t, dim=-1)
                    out[:, y, x] += wy * wx * (attn @ v[:, y, x])
    return out


@pytest.mark.parametrize(("h", "w"), [(20, 28), (13, 9), (8, 30)])  # whole cells, padded cells, one short axis
def test_windowed_attention_is_the_blend_of_its_windows(h: int, w: int) -> None:
    """Values and gradients (a training patch larger than the window trains through it)."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 1, 3, h, w, dtype=torch.float64, requires_grad=True) for _ in range(3))
    t = torch.tensor([[[2.5]]], dtype=torch.float64)
    weights = torch.randn(3, h, w, dtype=torch.float64)
    out = windowed_attention(q, k, v, t, window=8)[0]
    expected = _window_attention_by_hand(q[0, 0], k[0, 0], v[0, 0], 2.5, window=8)
    torch.testing.assert_close(out, expected)  # q and k are summed in fp32, as on the GPU
    grads = torch.autograd.grad((out * weights).sum(), (q, k, v))
    for got, want in zip(grads, torch.autograd.grad((expected * weights).sum(), (q, k, v)), strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_attention_window_leaves_inputs_that_fit_in_it_global() -> None:
    """Training patches fit in one window: there the windowed model computes the global one."""
    model = SAFDN(feat=8, blocks=2, esa=4, scale=2).eval()
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    x = torch.rand(2, 3, TRAINING_PATCH, TRAINING_PATCH - 5)
    with torch.no_grad():
        windowed = model(x)
        model.set_attention_window(0)
        torch.testing.assert_close(windowed, model(x), atol=0, rtol=0)


def test_windowed_attention_ignores_content_beyond_its_windows() -> None:
    """With a window, what happens far away no longer changes a pixel's attention (globally it
    does: test_attention_is_global_and_linear_in_pixels); near it, it still does."""
    torch.manual_seed(0)
    attention = ACSelfAttention(16, compress=2, kernel=3, heads=1, window=8).eval()
    for p in attention.parameters():
        p.data.normal_(0, 0.3)
    x = torch.rand(1, 16, 40, 40)
    changed = x.clone()
    changed[:, :, 32:, 32:] += 1.0
    with torch.no_grad():
        diff = (attention(x) - attention(changed)).abs().amax(dim=1)[0]
    # A pixel reads the windows at its cell's corners (2 cells of 4 around them), plus the
    # asymmetric convolutions' one pixel: nothing of rows and columns 32+ reaches [0, 20).
    assert diff[:20, :20].max() == 0
    assert diff[24:32, 24:32].max() > 0


def test_weights_without_a_window_get_the_training_patch(tmp_path: Path) -> None:
    """Files written before the window existed (the shipped ones among them) run with it."""
    model = SAFDN(feat=8, blocks=1, esa=4, scale=2)
    save_weights(model, tmp_path / "m.safetensors", arch="safdn")
    meta = read_metadata(tmp_path / "m.safetensors")
    hparams = json.loads(meta["hparams"])
    del hparams["window"]
    save_file(load_file(tmp_path / "m.safetensors"), tmp_path / "old.safetensors", {**meta, "hparams": json.dumps(hparams)})
    loaded, _ = load_weights(tmp_path / "old.safetensors")
    assert loaded.hparams["window"] == TRAINING_PATCH
    assert all(block.attention.window == TRAINING_PATCH for block in loaded.body)
    with pytest.raises(ValueError, match="even"):
        loaded.set_attention_window(7)


@pytest.mark.parametrize("pixels", [7, 16, 37])  # below one slice, whole slices, a padded last slice
def test_sliced_gram_equals_the_plain_product(pixels: int) -> None:
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 5, pixels, dtype=torch.float64), torch.randn(2, 3, 5, pixels, dtype=torch.float64)
    torch.testing.assert_close(gram(q, k, chunk=8), q @ k.transpose(-2, -1))


def _concatenating_forward(model: SAFDN, x: torch.Tensor) -> torch.Tensor:
    """SAFDN as its module docstring draws it: every fuse 1x1 applied to the concatenation of its inputs."""

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
    """Either way of fusing (the engine picks by device) computes the network its docstring draws."""
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
    c = measure_complexity(model, scale=4, out_width=384, out_height=384)
    assert c.params == sum(p.numel() for p in model.parameters())
    # Doubling the output area doubles the Multi-Adds (everything runs per pixel, the attention
    # window by window: both inputs here are whole numbers of its cells).
    c2 = measure_complexity(model, scale=4, out_width=768, out_height=384)
    assert c2.multi_adds == pytest.approx(2 * c.multi_adds, rel=0.02)


@pytest.mark.parametrize("side", [12, 40])
def test_reparameterized_network_gives_the_unfused_outputs(side: int) -> None:
    torch.manual_seed(0)
    model = SAFDN(feat=16, blocks=2, scale=2, esa=8, window=16).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)  # also the zero-initialised upsampler: every path reaches the output
    descriptor = ModelDescriptor.from_module(model, name="safdn-test", arch="safdn")
    fused = descriptor.inference_module()
    x = torch.rand(1, 3, side, side + 4)  # below and above the attention window
    with torch.no_grad():
        expected, got = model(x), fused(x)
    assert fused is not model and isinstance(fused.body[0].attention.qkv, torch.nn.Identity)
    assert isinstance(model.body[0].attention.qkv, torch.nn.Conv2d)  # the trainable network is untouched
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)
