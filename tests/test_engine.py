from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from streamsr.errors import BackendUnavailableError
from streamsr.frames import FrameBatch
from streamsr.models import ModelDescriptor, load_model
from streamsr.models.archs.safdn import SAFDN
from streamsr.models.ensemble import SelfEnsemble, dihedral
from streamsr.upscaler import (
    CPU_AUTO_TILE,
    MAX_AUTO_BATCH,
    Upscaler,
    batch_for_memory,
    cpu_has_fast_bf16,
    resolve_precision,
    tile_spans,
)


def _descriptor(scale: int = 2) -> ModelDescriptor:
    model = SAFDN(feat=16, blocks=2, esa=8, scale=scale).eval()
    for name, p in model.named_parameters():
        p.data.normal_(0, 0.1) if "temperature" not in name else p.data.fill_(10.0)
    return ModelDescriptor.from_module(model, name="test", arch="safdn")


def test_tile_spans_cover_every_pixel_once() -> None:
    spans = list(tile_spans(100, 32, 8))
    covered = [i for _, _, c0, c1 in spans for i in range(c0, c1)]
    assert covered == list(range(100))
    for w0, w1, c0, c1 in spans:
        assert w0 <= c0 < c1 <= w1 and w1 - w0 <= 32 + 16


def test_tiled_output_matches_untiled() -> None:
    desc = _descriptor()
    x = torch.rand(2, 3, 70, 90)
    calls = []
    desc.module.register_forward_hook(lambda *_: calls.append(1))
    full = Upscaler(desc, device="cpu", precision="fp32")(x)
    calls.clear()
    tiled = Upscaler(desc, device="cpu", precision="fp32", tile=32, tile_overlap=16)(x)
    assert len(calls) == 2 * 9  # 3 x 3 tiles per frame really ran
    assert tiled.shape == full.shape == (2, 3, 140, 180)
    diff = (tiled - full).abs()
    assert diff.max() < 0.5 / 255 and diff.mean() < 1e-4


def test_large_frames_run_in_tiles_on_cpu_by_default() -> None:
    desc = _descriptor()  # 16 feature channels: tiles above ~470K pixels
    calls = []
    desc.module.register_forward_hook(lambda *_: calls.append(1))
    up = Upscaler(desc, device="cpu", precision="fp32")
    assert up.tile_for(480, 854) == 0 and up.tile_for(720, 1280) == CPU_AUTO_TILE
    assert Upscaler(load_model("safdn-x2"), device="cpu").tile_for(480, 854) == CPU_AUTO_TILE  # 48 channels: sooner
    assert Upscaler(desc, device="cpu", precision="fp32", tile=0).tile_for(720, 1280) == 0  # asked: whole frames
    out = up(torch.rand(1, 3, 720, 660))
    assert out.shape == (1, 3, 1440, 1320) and len(calls) == 3 * 3


def test_upscale_batch_keeps_dtype_pts_and_range() -> None:
    up = Upscaler(_descriptor(), device="cpu", precision="fp32", batch=2)
    for dtype, peak in ((torch.uint8, 255), (torch.uint16, 65535)):
        data = torch.randint(0, peak + 1, (3, 3, 10, 12), dtype=torch.int64).to(dtype)
        batch = FrameBatch(data=data, pts=torch.tensor([5, 9, 20]), time_base=Fraction(1, 90000), index_start=7)
        out = up.upscale_batch(batch)
        assert out.data.dtype == dtype and out.data.shape == (3, 3, 20, 24)
        assert out.pts.tolist() == [5, 9, 20] and out.index_start == 7


def test_batching_does_not_change_results() -> None:
    desc = _descriptor()
    x = torch.rand(5, 3, 16, 16)
    one = Upscaler(desc, device="cpu", precision="fp32", batch=1)(x)
    many = Upscaler(desc, device="cpu", precision="fp32", batch=4)(x)
    torch.testing.assert_close(one, many, atol=1e-5, rtol=0)


def test_auto_batch_fits_the_free_memory() -> None:
    gib = 2**30
    assert batch_for_memory(8 * gib, gib) == 4  # half the free memory, the rest is headroom
    assert batch_for_memory(gib, 3 * gib) == 1  # never 0: tiles take over if one frame fails
    assert batch_for_memory(80 * gib, 10 * 2**20) == MAX_AUTO_BATCH


def test_auto_batch_on_cpu_is_one_frame_per_call() -> None:
    desc = _descriptor()
    calls = []
    desc.module.register_forward_hook(lambda _m, args, _out: calls.append(args[0].shape[0]))
    up = Upscaler(desc, device="cpu", precision="fp32", batch=0)
    assert up.batch_for(16, 16) == 1
    out = up(torch.rand(3, 3, 16, 16))
    assert out.shape == (3, 3, 32, 32) and calls == [1, 1, 1]


def test_output_is_clamped() -> None:
    desc = _descriptor()
    y = Upscaler(desc, device="cpu", precision="fp32")(torch.ones(1, 3, 8, 8))
    assert y.min() >= 0 and y.max() <= 1


def test_precision_choice() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == torch.float32
    assert resolve_precision("auto", cpu) == (torch.bfloat16 if cpu_has_fast_bf16() else torch.float32)
    with pytest.raises(BackendUnavailableError):
        resolve_precision("fp16", cpu)


def test_bf16_stays_close_to_fp32() -> None:
    desc = _descriptor()
    x = torch.rand(1, 3, 24, 24)
    ref = Upscaler(desc, device="cpu", precision="fp32")(x)
    bf = Upscaler(desc, device="cpu", precision="bf16")(x)
    mse = torch.mean((bf - ref) ** 2).item()
    assert 10 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12))) > 40  # dB between the two


def test_input_contract_is_checked() -> None:
    up = Upscaler(_descriptor(), device="cpu", precision="fp32")
    with pytest.raises(ValueError, match="4-D|expected"):
        up(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="float"):
        up(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


@pytest.mark.needs_cuda
def test_fp16_cuda_close_to_fp32() -> None:
    desc = _descriptor()
    x = torch.rand(2, 3, 64, 64)
    ref = Upscaler(desc, device="cpu", precision="fp32")(x)
    half = Upscaler(desc, device="cuda", precision="fp16")(x.cuda()).cpu()
    mse = torch.mean((half - ref) ** 2).item()
    assert 10 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12))) > 45


@pytest.mark.needs_cuda
def test_cuda_graph_replay_matches_eager() -> None:
    desc = _descriptor()
    x = torch.rand(5, 3, 48, 64, device="cuda")
    eager = Upscaler(desc, device="cuda", precision="fp16", batch=2)(x)
    graphed = Upscaler(desc, device="cuda", precision="fp16", batch=2, cuda_graphs=True)
    first, second = graphed(x), graphed(x)  # batches of 2, 2 (replayed) and 1 (eager)
    assert graphed._graph is not None and graphed._graph.shape[0] == 2
    torch.testing.assert_close(first, eager, atol=1e-3, rtol=0)
    torch.testing.assert_close(second, first, atol=0, rtol=0)


@pytest.mark.needs_cuda
def test_self_ensemble_in_fp16_with_cuda_graphs_matches_fp32_on_the_cpu() -> None:
    desc = _descriptor()
    x = torch.rand(3, 3, 40, 56)
    ref = Upscaler(desc, device="cpu", precision="fp32", self_ensemble=True)(x)
    fast = Upscaler(desc, device="cuda", precision="fp16", batch=2, cuda_graphs=True, self_ensemble=True)
    torch.testing.assert_close(fast(x.cuda()).cpu(), ref, atol=2e-3, rtol=0)


@pytest.mark.needs_cuda
def test_auto_batch_on_cuda_uses_free_memory() -> None:
    up = Upscaler(_descriptor(), device="cuda", precision="fp16", batch=0)
    n = up.batch_for(270, 480)
    assert 1 <= n <= MAX_AUTO_BATCH
    assert up(torch.rand(n + 1, 3, 270, 480, device="cuda")).shape == (n + 1, 3, 540, 960)


@pytest.mark.parametrize(("name", "tile"), [("safdn-x2", 128), ("safdn-x4", 64)])
def test_tiles_keep_the_quality_of_full_frames_with_trained_weights(name: str, tile: int) -> None:
    """The channel attention sees only its tile (and its windows sit on the tile's grid), so tiles
    are not exact: with trained weights a few pixels move by up to tens of 8-bit code values
    (`benchmarks/tile_quality.py`). What a user relies on: the picture is no worse than the
    untiled one (PSNR against the ground truth) and the average change stays far below one code value."""
    from streamsr.io.images import read_image
    from streamsr.models import find_weights
    from streamsr.train.degrade import bicubic_lr, modcrop
    from streamsr.train.metrics import psnr

    if find_weights(name) is None:
        pytest.skip(f"{name} weights not installed")
    path = Path(os.environ.get("STREAMSR_DATA", "/nonexistent")) / "bench" / "B100" / "3096.png"
    if not path.is_file():
        pytest.skip("benchmark data not present (set STREAMSR_DATA)")
    up_full = Upscaler(name, device="cpu", precision="fp32")
    scale = up_full.scale
    hr = modcrop(read_image(path), scale)
    lr = bicubic_lr(hr, scale)[None]  # 2 x 2 tiles or more
    full = up_full.upscale_frames(lr)[0]
    tiled = Upscaler(name, device="cpu", precision="fp32", tile=tile, tile_overlap=32).upscale_frames(lr)[0]
    assert psnr(tiled, hr, crop_border=scale) > psnr(full, hr, crop_border=scale) - 0.05
    assert (tiled.float() - full.float()).abs().mean() < 0.1  # code values


def _real_frame() -> torch.Tensor:
    """The first frame of the shipped sample clip (Big Buck Bunny) as uint8 (3, H, W)."""
    import av

    path = Path(__file__).resolve().parent.parent / "examples" / "media" / "sample.mp4"
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    return torch.from_numpy(frame).permute(2, 0, 1).contiguous()


def test_speedups_keep_psnr_of_fp32_eager_on_real_frames() -> None:
    """Every speed-up stays within 0.05 dB of the plain fp32 eager model."""
    from streamsr.train.degrade import bicubic_lr, modcrop
    from streamsr.train.metrics import psnr

    hr = modcrop(_real_frame(), 2)
    lr = bicubic_lr(hr, 2)
    desc = load_model("safdn-x2")
    with torch.inference_mode():
        eager = desc.module.eval()(lr[None].float() / 255).clamp(0, 1)
    reference = psnr((eager[0] * 255).round().to(torch.uint8), hr, crop_border=2)
    variants = {"channels_last engine": Upscaler(desc, device="cpu", precision="fp32"),
                "tiles of 48": Upscaler(desc, device="cpu", precision="fp32", tile=48),
                "bf16": Upscaler(desc, device="cpu", precision="bf16")}
    for name, up in variants.items():
        out = up.upscale_frames(lr[None])[0]
        assert abs(psnr(out, hr, crop_border=2) - reference) < 0.05, name


def test_self_ensemble_is_equivariant_to_flips_and_rotations() -> None:
    """The mean over the eight orientations commutes with each of them (the plain model does not),
    and the engine runs the model eight times per frame for it."""
    desc = _descriptor()
    x = torch.rand(1, 3, 12, 20)  # not square: rotations change the shape
    plain = desc.module
    ensemble = SelfEnsemble(plain)
    with torch.no_grad():
        for index in range(1, 8):
            turned = dihedral(x, index)
            torch.testing.assert_close(ensemble(turned), dihedral(ensemble(x), index), atol=1e-5, rtol=0)
            assert not torch.allclose(plain(turned), dihedral(plain(x), index), atol=1e-3)
        calls = []
        plain.register_forward_hook(lambda *_: calls.append(1))
        out = Upscaler(desc, device="cpu", precision="fp32", self_ensemble=True)(torch.rand(2, 3, 12, 20))
    assert out.shape == (2, 3, 24, 40) and len(calls) == 2 * 8  # one frame per call on the CPU, 8 orientations


def test_self_ensemble_raises_fidelity_on_a_real_frame() -> None:
    """What the flag is for: the shipped x4 model's picture comes closer to the original."""
    from streamsr.models import find_weights
    from streamsr.train.degrade import bicubic_lr, modcrop
    from streamsr.train.metrics import psnr

    if find_weights("safdn-x4") is None:
        pytest.skip("safdn-x4 weights not installed")
    hr = modcrop(_real_frame(), 4)
    lr = bicubic_lr(hr, 4)[None]
    plain = Upscaler("safdn-x4", device="cpu", precision="fp32").upscale_frames(lr)[0]
    ensemble = Upscaler("safdn-x4", device="cpu", precision="fp32", self_ensemble=True).upscale_frames(lr)[0]
    assert psnr(ensemble, hr, crop_border=4) > psnr(plain, hr, crop_border=4) + 0.02  # measured +0.05 dB


def test_out_of_memory_is_a_typed_one_line_error(monkeypatch: pytest.MonkeyPatch, tiny_weights: Path) -> None:
    from streamsr.errors import DeviceOutOfMemoryError

    engine = Upscaler(str(tiny_weights), device="cpu", precision="fp32", tile=0)

    def exhausted(x: torch.Tensor, **_: object) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(engine, "_run", exhausted)
    with pytest.raises(DeviceOutOfMemoryError, match="out of memory while upscaling 40x30 frames") as err:
        engine(torch.rand(1, 3, 30, 40))
    assert isinstance(err.value, BackendUnavailableError) and err.value.exit_code == 5
    assert "\n" not in str(err.value)


def test_the_architecture_declares_its_contract_and_the_engine_reads_only_that() -> None:
    from dataclasses import replace

    from streamsr.models.descriptor import Tiling

    shipped = load_model("safdn-x2")
    assert shipped.activation_channels == shipped.hparams["feat"] and shipped.prepare is not None
    assert shipped.tiling is Tiling.SUPPORTED
    prepared = []
    desc = replace(_descriptor(), activation_channels=1000, prepare=lambda module, device: prepared.append(device.type))
    up = Upscaler(desc, device="cpu", precision="fp32")
    assert prepared == ["cpu"]
    assert up.tile_for(180, 320) == CPU_AUTO_TILE  # 57.6M activations: tiled, by the declared width alone
    internal = Upscaler(replace(_descriptor(), tiling=Tiling.INTERNAL), device="cpu", tile=64)
    discouraged = replace(_descriptor(), tiling=Tiling.DISCOURAGED)
    assert internal.tile_for(720, 1280) == 0  # never from outside, even when asked
    assert Upscaler(discouraged, device="cpu", tile=64).tile_for(720, 1280) == 64  # asked: tiles
    assert Upscaler(discouraged, device="cpu", precision="fp32").tile_for(2160, 3840) == 0  # never automatically
