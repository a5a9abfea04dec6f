"""The DALI decoder: one pipeline on the GPU (``mixed``) and on DALI's CPU backend, frame for frame
against PyAV. The CPU cases run wherever DALI is installed (CI installs it); CUDA is not needed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_clip

from streamsr.cli import cli
from streamsr.errors import BackendUnavailableError
from streamsr.io import PyAVDecoder, open_decoder

pytestmark = pytest.mark.needs_dali


def smooth(width: int, height: int, index: int) -> np.ndarray:
    """Gradients and a moving wave in colour, hard edges in luma only. The decoders upsample
    chroma differently, so colour edges would measure that rather than the pipeline."""
    y, x = np.mgrid[0:height, 0:width]
    r = 60 + 120 * x / (width - 1) + 3 * index
    g = 60 + 120 * y / (height - 1)
    b = 120 + 50 * np.sin((x + y + 4 * index) / 9)
    checker = ((x // 8 + y // 8 + index) % 2) * 50 - 25  # equal on every channel: no chroma edge
    return np.clip(np.stack([r, g, b], axis=-1) + checker[..., None], 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clip_vp9(media_dir: Path) -> Path:
    """21 frames of VP9 with Opus audio in WebM: sequences of 8 end in a partial one of 5."""
    return make_clip(media_dir / "dali-vp9.webm", width=96, height=64, frames=21, codec="libvpx-vp9",
                     audio_codec="libopus", painter=smooth)


def decode_both(clip: Path, device: str) -> tuple[list, list]:
    from streamsr.io.dali import DALIDecoder

    with PyAVDecoder(clip, batch=8) as reference, DALIDecoder(clip, batch=8, device=device) as dali:
        return list(dali), list(reference)


@pytest.mark.parametrize("device", ["cpu", pytest.param("mixed", marks=pytest.mark.needs_cuda)])
def test_dali_decodes_like_pyav(clip_vp9: Path, media_dir: Path, device: str) -> None:
    # NVDEC also takes H.264; DALI's CPU decoder takes VP8/VP9/MJPEG only.
    clip = clip_vp9 if device == "cpu" else make_clip(media_dir / "dali-h264.mp4", width=96, height=64, frames=21,
                                                       codec="libx264", painter=smooth)
    dali, reference = decode_both(clip, device)
    assert [len(b) for b in dali] == [8, 8, 5]
    assert [b.index_start for b in dali] == [0, 8, 16]
    assert torch.equal(torch.cat([b.pts for b in dali]), torch.cat([b.pts for b in reference]))
    assert all(b.time_base == reference[0].time_base for b in dali)
    assert all(b.data.is_cuda == (device == "mixed") and b.data.dtype == torch.uint8 for b in dali)
    got = torch.cat([b.data for b in dali]).cpu().float()
    want = torch.cat([b.data for b in reference]).float()
    assert got.shape == want.shape == (21, 3, 64, 96)
    diff = got - want
    # The YUV->RGB conversions differ by rounding: about one code value on average.
    assert diff.abs().mean() < 2.5 and diff.mean(dim=(0, 2, 3)).abs().max() < 2
    assert torch.quantile(diff.abs().flatten(), 0.99) <= 8
    # Frames pair with the right pts: each frame is nearest to its own reference frame.
    nearest = [int((want - f).abs().mean(dim=(1, 2, 3)).argmin()) for f in got]
    assert nearest == list(range(21))


def _streams(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name) for s in c.streams]


def _packets(path: Path, kind: str) -> list[tuple[bytes, int]]:
    with av.open(str(path)) as c:
        stream = next(s for s in c.streams if s.type == kind)
        return [(bytes(p), p.pts) for p in c.demux(stream) if p.size]


def _frames(path: Path) -> tuple[np.ndarray, list[float]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return np.stack([f.to_ndarray(format="rgb24") for f in frames]), [float(f.pts * f.time_base) for f in frames]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU backend that --decoder dali uses without CUDA")
def test_upscale_with_the_dali_decoder_on_the_cpu_writes_what_pyav_writes(clip_vp9: Path, tmp_path: Path,
                                                                           tiny_weights: Path) -> None:
    outputs = {}
    for decoder in ("dali", "pyav"):
        out = outputs[decoder] = tmp_path / f"{decoder}.webm"
        result = CliRunner().invoke(cli, ["upscale", str(clip_vp9), "-o", str(out), "-s", "2", "-m", str(tiny_weights),
                                          "--decoder", decoder, "--backend", "torch", "-q"])
        assert result.exit_code == 0, result.output
    assert _streams(outputs["dali"]) == _streams(outputs["pyav"]) == [("video", "vp9"), ("audio", "opus")]
    assert _packets(outputs["dali"], "audio") == _packets(outputs["pyav"], "audio") == _packets(clip_vp9, "audio")
    (dali, dali_times), (pyav, pyav_times) = _frames(outputs["dali"]), _frames(outputs["pyav"])
    assert dali.shape == pyav.shape == (21, 128, 192, 3)
    assert dali_times == pyav_times == pytest.approx([i / 12 for i in range(21)], abs=1e-3)
    assert np.abs(dali.astype(int) - pyav).mean() < 3


@pytest.mark.parametrize("case, reason", [
    ("h264", "DALI's CPU decoder takes only VP8, VP9 and MJPEG (this video is h264)"),
    ("vfr", "variable frame rate"),
    ("10-bit", "10-bit and DALI outputs 8-bit RGB"),
])
def test_dali_cpu_refusals_name_the_reason_and_auto_uses_pyav(media_dir: Path, case: str, reason: str) -> None:
    from streamsr.io.dali import DALIDecoder

    clip = {
        "h264": lambda: make_clip(media_dir / "refuse-h264.mp4", codec="libx264", audio=False),
        "vfr": lambda: make_clip(media_dir / "refuse-vfr.webm", codec="libvpx-vp9", audio=False, frames=5,
                                 pts=[0, 40, 130, 150, 260], time_base=Fraction(1, 1000)),
        # The depth is checked before the codec: an FFV1 clip shows the reason a 10-bit VP9 would get.
        "10-bit": lambda: make_clip(media_dir / "refuse-10bit.mkv", codec="ffv1", pix_fmt="yuv420p10le",
                                    audio=False, frames=4),
    }[case]()
    with pytest.raises(BackendUnavailableError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        DALIDecoder(clip, device="cpu")
    assert isinstance(open_decoder(clip, backend="auto"), PyAVDecoder)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_dali_refusal_is_one_line_with_exit_5(tmp_path: Path, tiny_weights: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", codec="libx264", audio=False)
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(cli, ["upscale", str(clip), "-o", str(out), "-s", "2", "-m", str(tiny_weights),
                                      "--decoder", "dali", "-q"])
    assert result.exit_code == 5
    assert result.output.strip().splitlines() == [
        "Error: DALI decoder unavailable: CUDA is not available and DALI's CPU decoder takes only VP8, VP9 "
        "and MJPEG (this video is h264)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
