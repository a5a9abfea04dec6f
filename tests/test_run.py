"""The run protocol: stages keep timing exact, every output is owned (nothing half-written is left
under any failure, for any kind of sink), one `upscale()` picks the run, and the package has no
import cycle."""

from __future__ import annotations

import ast
import errno
import signal
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import pytest
import torch
from conftest import make_clip, pattern
from PIL import Image

import streamsr
from streamsr.config import UpscaleConfig
from streamsr.errors import DiskFullError, Interrupted, OutputError
from streamsr.frames import FrameBatch, VideoInfo
from streamsr.io.atomic import AtomicOutput
from streamsr.io.encode import PyAVEncoder
from streamsr.io.probe import probe
from streamsr.io.sequence import FrameSequenceWriter
from streamsr.run import upscale
from streamsr.stages import chain, drive
from streamsr.upscaler import Upscaler

PACKAGE = Path(streamsr.__file__).parent


# -- stages ----------------------------------------------------------------------------------


def doubled(batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
    """A stage that shows every frame twice: the copy half-way to the next frame (20 ms later)."""
    for b in batches:
        yield FrameBatch(b.data.repeat_interleave(2, 0), torch.stack([b.pts, b.pts + 20], 1).flatten(), b.time_base)


def every_third_dropped(batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
    for b in batches:
        keep = torch.tensor([int(p) // 20 % 3 != 2 for p in b.pts])
        if keep.any():
            yield FrameBatch(b.data[keep], b.pts[keep], b.time_base)


class ListSource:
    """Twelve 32x24 frames, 40 ms apart (time base 1/1000), in batches of three."""

    def __iter__(self) -> Iterator[FrameBatch]:
        for start in range(0, 12, 3):
            frames = torch.stack([torch.from_numpy(pattern(32, 24, i)).permute(2, 0, 1) for i in range(start, start + 3)])
            yield FrameBatch(frames, torch.tensor([40 * i for i in range(start, start + 3)]), Fraction(1, 1000))


def expected_pts() -> list[int]:
    shown = [p for i in range(12) for p in (40 * i, 40 * i + 20)]
    return [p for p in shown if p // 20 % 3 != 2]


def test_stages_that_repeat_and_drop_frames_keep_the_sinks_timing_exact(tmp_path: Path) -> None:
    info = VideoInfo(width=32, height=24, fps=Fraction(25), time_base=Fraction(1, 1000), num_frames_estimate=12,
                     codec="ffv1", pix_fmt="yuv444p", bit_depth=8)
    out = tmp_path / "staged.mkv"
    encoder = PyAVEncoder(out, None, info, scale=1)
    drive(ListSource(), chain([doubled, every_third_dropped]), encoder, name="list", queue_size=2)
    with av.open(str(out)) as c:
        got = [f.pts for f in c.decode(video=0)]
    assert got == expected_pts() and len(got) == 16

    frames = tmp_path / "frames"
    frames.mkdir()
    writer = FrameSequenceWriter(frames)
    drive(ListSource(), chain([doubled, every_third_dropped]), writer, name="list", queue_size=2)
    times = (frames / "timestamps.txt").read_text().splitlines()[1:]
    assert [int(t) for t in times] == expected_pts() and len(list(frames.glob("*.png"))) == 16


def test_chain_of_no_stages_passes_batches_unchanged() -> None:
    batches = list(ListSource())
    assert list(chain([])(iter(batches))) == batches


# -- one owner of every output ----------------------------------------------------------------

FAILURES = {
    "error": lambda: RuntimeError("the model broke"),
    "sigterm": lambda: Interrupted(signal.SIGTERM),
    "disk-full": lambda: OSError(errno.ENOSPC, "No space left on device"),
}
RAISED = {"error": RuntimeError, "sigterm": Interrupted, "disk-full": DiskFullError}


def failing_after(frames: int, failure: str):  # noqa: ANN201
    """`Upscaler.upscale_frames` that raises `failure` once `frames` frames went through it."""
    original = Upscaler.upscale_frames
    seen = [0]

    def upscale_frames(self: Upscaler, data: torch.Tensor) -> torch.Tensor:
        seen[0] += len(data)
        if seen[0] > frames:
            raise FAILURES[failure]()
        return original(self, data)

    return upscale_frames


SINKS = ["video", "frames", "segments", "playlist", "image"]


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("sink", SINKS)
def test_a_failed_run_leaves_nothing_of_its_output(sink: str, failure: str, tmp_path: Path, tiny_weights: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src_dir, out_dir = tmp_path / "in", tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    if sink == "image":
        src = src_dir / "still.png"
        Image.fromarray(pattern(40, 30, 0)).save(src)
    else:
        src = make_clip(src_dir / "clip.mkv", frames=24, codec="libx264", audio=False,
                        options={"g": "6", "keyint_min": "6", "sc_threshold": "0"})
    before = src.read_bytes()
    dst = {"video": out_dir / "out.mkv", "frames": out_dir / "frames", "segments": out_dir / "out.mkv",
           "playlist": out_dir / "out.m3u8", "image": out_dir / "still.png"}[sink]
    kwargs = {"frames": {"frames_format": "png"}, "segments": {"segment_seconds": 0.5}}.get(sink, {})
    if sink == "image":  # one frame: the failure comes while the file is being written
        def half_written(_picture: object, path: Path, _fmt: str) -> None:
            path.write_bytes(b"half an image")
            raise FAILURES[failure]()

        monkeypatch.setattr("streamsr.images.write_picture", half_written)
    else:
        monkeypatch.setattr(Upscaler, "upscale_frames", failing_after(9, failure))
    cfg = UpscaleConfig(scale=2, model=str(tiny_weights), device="cpu", precision="fp32", backend="torch")
    with pytest.raises(RAISED[failure]):
        upscale(src, dst, cfg, **kwargs)
    assert list(out_dir.iterdir()) == []  # neither the output nor a temporary name, segment or media file
    assert src.read_bytes() == before and sorted(p.name for p in src_dir.iterdir()) == [src.name]


def test_atomic_output_renames_only_a_finished_output(tmp_path: Path) -> None:
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"earlier")
    with pytest.raises(RuntimeError), AtomicOutput(dst) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("stopped")
    assert dst.read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    with AtomicOutput(dst) as tmp:
        assert tmp != dst and tmp.parent == dst.parent and tmp.name.startswith(".")
        tmp.write_bytes(b"whole")
    assert dst.read_bytes() == b"whole" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_output_says_an_unwritable_folder_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"out\.bin: cannot be written \(Read-only file system\)"), \
            AtomicOutput(tmp_path / "out.bin"):
        raise OSError(errno.EROFS, "Read-only file system")
    assert list(tmp_path.iterdir()) == []


# -- one entry point --------------------------------------------------------------------------


def test_upscale_picks_the_run_from_its_arguments(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    cfg = UpscaleConfig(model=str(tiny_weights), device="cpu", precision="fp32", backend="torch")
    video = upscale(clip_mp4, tmp_path / "v.mkv", cfg)
    frames = upscale(clip_mp4, tmp_path / "f", cfg, frames_format="png")
    Image.fromarray(pattern(20, 16, 0)).save(tmp_path / "i.png")
    image = upscale(tmp_path / "i.png", None, cfg)
    assert probe(video.output).width == 128 and video.frames == 12 and len(probe(video.output).streams) == 2
    assert frames.frames == 12 and len(list(frames.output.glob("*.png"))) == 12
    assert image.output == tmp_path / "i_x2.png" and (image.width, image.height, image.bits) == (40, 32, 8)
    with pytest.raises(ValueError, match="segments"):
        upscale(clip_mp4, tmp_path / "x.mkv", cfg, frames_format="png", segment_seconds=1)
    assert streamsr.upscale is upscale


# -- the package's shape ----------------------------------------------------------------------


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in it, function-level imports too)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "streamsr.run" in graph and "streamsr.batch" in graph  # the walk found the package
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_a_cycle_is_seen_by_the_graph() -> None:
    """The walk reads function-level imports too (the kind a cycle hides in)."""
    assert "streamsr.segments" in import_graph()["streamsr.run"]
