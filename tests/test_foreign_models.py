"""Community model files (spandrel architectures, ONNX graphs) through the whole pipeline.

Every model is built here with small hyperparameters and random weights, saved in the key layout
its project publishes, and loaded the way a user's file would be: nothing is downloaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import av
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from streamsr.cli import cli
from streamsr.errors import UnsupportedModelError
from streamsr.models import ModelDescriptor, load_model
from streamsr.models.archs.safdn import SAFDN
from streamsr.upscaler import Upscaler, resolve_precision

spandrel = pytest.importorskip("spandrel")
from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402
from spandrel.architectures.SAFMN import SAFMN  # noqa: E402
from spandrel.architectures.SPAN import SPAN  # noqa: E402


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def save(module: torch.nn.Module, path: Path, wrapper: str | None) -> Path:
    """Save `module`'s weights as its project publishes them: plain, or under ``params``/``params_ema``."""
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({wrapper: state} if wrapper else state, path)
    return path


# (name, network, published wrapper key, suffix, scale)
ARCHS = [
    ("realesr-compact", lambda: Compact(num_feat=8, num_conv=2, upscale=4), "params", ".pth", 4),
    ("esrgan", lambda: ESRGAN(num_filters=8, num_blocks=1, scale=2), None, ".pth", 2),
    ("span", lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2), "params_ema", ".safetensors", 2),
    ("safmn", lambda: SAFMN(dim=8, n_blocks=1, upscaling_factor=4), "params", ".pth", 4),
]


def frames_and_pts(path: Path) -> tuple[tuple[int, int], list[int]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return (frames[0].width, frames[0].height), [f.pts for f in frames]


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


@pytest.mark.parametrize(("name", "build", "wrapper", "suffix", "scale"), ARCHS, ids=[a[0] for a in ARCHS])
def test_community_model_upscales_a_clip_end_to_end(clip_mp4: Path, tmp_path: Path, name: str, build, wrapper: str | None,
                                                    suffix: str, scale: int) -> None:
    model_file = save(build().eval(), tmp_path / f"{name}{suffix}", wrapper)
    out = tmp_path / "out.mp4"
    code, text = run("upscale", str(clip_mp4), "-o", str(out), "-m", str(model_file), "-q")  # no -s: the model's scale
    assert code == 0, text
    (width, height), pts = frames_and_pts(out)
    (src_w, src_h), src_pts = frames_and_pts(clip_mp4)
    assert (width, height) == (src_w * scale, src_h * scale)
    assert len(pts) == len(src_pts)
    with av.open(str(out)) as o, av.open(str(clip_mp4)) as s:
        out_tb, src_tb = o.streams.video[0].time_base, s.streams.video[0].time_base
    assert [p * out_tb for p in pts] == [p * src_tb for p in src_pts]
    assert audio_packets(out) == audio_packets(clip_mp4)


def test_models_describes_a_community_file(tmp_path: Path) -> None:
    model_file = save(SAFMN(dim=8, n_blocks=1, upscaling_factor=4).eval(), tmp_path / "4x-safmn.pth", "params")
    code, text = run("models", str(model_file))
    assert code == 0, text
    assert "SAFMN" in text and "x4" in text and "multiple of 8" in text and "bf16, fp32" in text


def test_models_archs_lists_spandrel_architectures() -> None:
    code, text = run("models", "--archs")
    assert code == 0 and "SAFDN" in text and "ESRGAN" in text and "SPAN" in text


def test_size_requirements_are_padded_and_cropped(tmp_path: Path) -> None:
    model = load_model(save(SAFMN(dim=8, n_blocks=1, upscaling_factor=2).eval(), tmp_path / "m.pth", None))
    assert model.size.multiple_of == 8
    y = Upscaler(model, device="cpu", precision="fp32", tile=0)(torch.rand(1, 3, 13, 19))
    assert y.shape == (1, 3, 26, 38)


def test_scale_follows_the_model_and_a_mismatch_is_a_model_error(clip_mp4: Path, tmp_path: Path) -> None:
    x2 = save(ESRGAN(num_filters=8, num_blocks=1, scale=2).eval(), tmp_path / "x2.pth", None)
    code, text = run("upscale", str(clip_mp4), "-m", str(x2), "-s", "4", "-o", str(tmp_path / "o.mkv"), "-q")
    assert code == 4 and "x2" in text and "--scale 4" in text and "Traceback" not in text
    assert not (tmp_path / "o.mkv").exists()


class _Marker:
    """Unpickling this object writes a file: a model file that runs code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.write_text, (self.path, "ran"))


def test_a_pickle_that_runs_code_is_refused(clip_mp4: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as f:
        pickle.dump({"params": _Marker(marker)}, f)
    code, text = run("upscale", str(clip_mp4), "-m", str(evil), "-o", str(tmp_path / "o.mkv"), "-q")
    assert code == 4 and not marker.exists()
    assert text.strip().splitlines() == [f"Error: {evil}: not a plain weight file (its pickle needs code to load, "
                                         "which streamsr never runs)"]
    assert "weights_only" not in text


def test_unknown_weights_name_the_file_and_what_loads(tmp_path: Path) -> None:
    odd = tmp_path / "odd.safetensors"
    save_file({"something.weight": torch.zeros(3, 3)}, str(odd))
    code, text = run("models", str(odd))
    assert code == 4 and str(odd) in text and "streamsr models --archs" in text


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    net = Compact(num_feat=8, num_conv=2, upscale=2)
    with torch.no_grad():
        net.body[0].weight.fill_(float("nan"))
    path = save(net, tmp_path / "nan.pth", "params")
    with pytest.raises(UnsupportedModelError, match="NaN"):
        load_model(path)


def test_an_fp16_unsafe_model_never_runs_in_fp16() -> None:
    model = ModelDescriptor(torch.nn.Identity(), "m", "x", 2, 3, supports_half=False)
    cuda = torch.device("cuda")  # the choice itself touches no GPU
    assert resolve_precision("auto", cuda, model) == torch.bfloat16
    fp32_only = ModelDescriptor(torch.nn.Identity(), "m", "x", 2, 3, supports_half=False, supports_bfloat16=False)
    assert resolve_precision("auto", cuda, fp32_only) == torch.float32
    with pytest.raises(Exception, match="does not run in fp16"):
        resolve_precision("fp16", cuda, model)


def test_a_grayscale_model_upscales_luma_and_leaves_chroma_to_bicubic(tmp_path: Path) -> None:
    from streamsr.upscaler import bicubic_upscale

    model = load_model(save(Compact(num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=2, upscale=2).eval(),
                            tmp_path / "gray.pth", "params"))
    assert model.in_ch == 1
    x = torch.rand(1, 3, 16, 20) * 0.5 + 0.25  # away from the clamp
    y = Upscaler(model, device="cpu", precision="fp32", tile=0)(x)
    big = bicubic_upscale(x, 2)

    def chroma(t: torch.Tensor) -> torch.Tensor:  # BT.601 Cb, Cr (unscaled)
        luma = 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]
        return torch.stack([t[:, 2] - luma, t[:, 0] - luma])

    assert y.shape == (1, 3, 32, 40)
    torch.testing.assert_close(chroma(y), chroma(big), atol=1e-5, rtol=0)
    assert (y - big).abs().max() > 1e-3  # the luma is the model's, not bicubic's


def test_onnx_model_matches_torch_and_upscales_a_clip(clip_mp4: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    net = SAFDN(feat=8, blocks=1, esa=4, scale=2, window=8).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # not the bilinear start: a real network's output
    from streamsr.models import save_weights

    weights = tmp_path / "net.safetensors"
    save_weights(net, weights, arch="safdn")
    graph = tmp_path / "net.onnx"
    code, text = run("export", str(weights), "-o", str(graph))
    assert code == 0, text
    model = load_model(graph)
    assert (model.scale, model.runtime) == (2, "onnxruntime")
    for shape in ((1, 3, 24, 40), (2, 3, 37, 29)):
        x = torch.rand(*shape)
        with torch.no_grad():
            torch.testing.assert_close(model.module(x), net(x), atol=1e-4, rtol=0)
    out = tmp_path / "out.mp4"
    code, text = run("upscale", str(clip_mp4), "-o", str(out), "-m", str(graph), "-q")
    assert code == 0, text
    assert frames_and_pts(out)[0] == (128, 96)
    assert audio_packets(out) == audio_packets(clip_mp4)


def test_a_model_that_does_not_export_says_so_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    model_file = save(SAFMN(dim=8, n_blocks=1, upscaling_factor=4).eval(), tmp_path / "safmn.pth", "params")
    out = tmp_path / "safmn.onnx"
    code, text = run("export", str(model_file), "-o", str(out))
    assert code == 4 and not out.exists() and not list(tmp_path.glob(".*part"))
    assert text.strip().splitlines() == [text.strip()] and "cannot be exported to ONNX" in text
