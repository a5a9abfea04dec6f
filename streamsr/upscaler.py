"""Upscaler: device and precision choice, uint<->float conversion, batching, tiling, clamping.

It reads only the model's descriptor (`models.ModelDescriptor`), whatever the architecture."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import BackendUnavailableError, DeviceOutOfMemoryError, UnsupportedModelError
from .frames import FrameBatch
from .models import ModelDescriptor, load_model
from .models.descriptor import Tiling
from .models.ensemble import SelfEnsemble
from .models.runtimes import resolve_runtime, with_runtime

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "fp16", "bf16"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated
    and slower than fp32, so "auto" precision must not pick it."""
    if sys.platform != "linux":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 2)[1].split("\n", 1)[0].split()
    except (OSError, IndexError):
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError("--device cuda was asked for, but CUDA is not available here")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_precision(precision: str, device: torch.device, model: ModelDescriptor | None = None) -> torch.dtype:
    """The compute dtype: as asked, or ("auto") the fastest the device and the model allow: on CUDA
    fp16, else bf16 for a model that is not fp16-safe, else fp32; on the CPU bf16 where the CPU
    computes it natively and the model allows it, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    allowed = model.precisions() if model is not None else ["fp16", "bf16", "fp32"]
    if precision == "auto":
        if device.type == "cuda":
            return _DTYPES[allowed[0]]
        return torch.bfloat16 if cpu_has_fast_bf16() and "bf16" in allowed else torch.float32
    if precision == "fp16" and device.type == "cpu":
        raise BackendUnavailableError("fp16 is for CUDA; on the CPU use --precision bf16 or fp32")
    if precision not in allowed:
        name = model.name if model is not None else "the model"
        raise BackendUnavailableError(f"{name} does not run in {precision}; it allows {', '.join(allowed)}")
    return _DTYPES[precision]


_LUMA = torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
"""BT.601 luma weights (adding the same difference to R, G and B changes luma by it and leaves chroma)."""

MAX_AUTO_BATCH = 16
# On the CPU, large frames run in tiles by default: once a frame's activations outgrow the caches
# SAFDN gets up to 2.6x slower per pixel. The knee follows pixels x feature channels, measured
# (docs/benchmarks.md): SAFDN (48 ch) 854x480 19.4 s whole vs 7.4 s in 240 px tiles, 640x360 2x,
# 480x270 1.07x; the 24-ch model 854x480 2.2x, 640x360 1x; the 16-ch model 1280x720 2x, 854x480 1x.
CPU_AUTO_TILE = 240
CPU_AUTO_TILE_MIN_ACTIVATIONS = 7_500_000
"""Tile when height x width x the model's feature channels exceeds this."""


def batch_for_memory(free_bytes: int, per_frame_bytes: int, *, share: float = 0.5, limit: int = MAX_AUTO_BATCH) -> int:
    """Frames per model call that fit in `share` of the free GPU memory (the rest is headroom
    for the frames in flight and the allocator's fragmentation); at least 1, at most `limit`."""
    if per_frame_bytes <= 0:
        return limit
    return max(1, min(limit, int(free_bytes * share) // per_frame_bytes))


class CUDAGraphRunner:
    """The model captured once as a CUDA graph for one input shape, then replayed.

    A small network at video resolution launches hundreds of short kernels per frame; replaying a
    graph launches them all at once, without Python and launch overhead between them.
    """

    def __init__(self, module: torch.nn.Module, example: Tensor) -> None:
        self.shape = tuple(example.shape)
        self._input = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up outside the capture: cuDNN picks its algorithms
            for _ in range(2):
                module(self._input)
        torch.cuda.current_stream().wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._output = module(self._input)

    def __call__(self, x: Tensor) -> Tensor:
        self._input.copy_(x)
        self._graph.replay()
        return self._output.clone()  # the next replay overwrites the graph's own buffer


def tile_spans(length: int, tile: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """Cover [0, length) with windows of at most `tile` + 2*`overlap`.

    Yields (window_start, window_end, core_start, core_end): the model sees the window, and only
    its core (where the window has `overlap` pixels of context on each side) is kept.
    """
    if tile <= 0 or tile >= length:
        yield 0, length, 0, length
        return
    for core_start in range(0, length, tile):
        core_end = min(core_start + tile, length)
        yield max(0, core_start - overlap), min(length, core_end + overlap), core_start, core_end


class Upscaler:
    """Runs an SR model on frames with a fixed device, precision, batch size and tiling.

    Call contract: (N, C, H, W) float in [0, 1] -> (N, C, H*scale, W*scale) float32 in [0, 1].
    `backend` picks what executes the model: torch, or its exported graph on ONNX Runtime or
    OpenVINO ("auto": the fastest installed for the device, `resolve_runtime`).
    `upscale_batch` does the same for a `FrameBatch` of uint8/uint16 frames, keeping the dtype.
    With `self_ensemble`, every frame (or tile) is the mean of the model's eight flips and
    rotations (`SelfEnsemble`): higher fidelity at eight times the compute. `tile_overlap` is the
    pixels of context around each tile; `stream_overlap` (CUDA) runs the uploads, compute and
    downloads of consecutive batches on their own CUDA streams.
    """

    def __init__(
        self,
        model: ModelDescriptor | str | Path,
        *,
        device: str = "auto",
        precision: str = "auto",
        batch: int = 1,
        tile: int | None = None,
        tile_overlap: int = 32,
        stream_overlap: bool = True,
        cuda_graphs: bool = False,
        self_ensemble: bool = False,
        backend: str = "torch",
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        if batch < 0:
            raise ValueError("batch must be >= 1, or 0 to choose it from the frame size and free memory")
        if (tile is not None and tile < 0) or tile_overlap < 0:
            raise ValueError("tile and tile_overlap must be >= 0 (tile None: automatic)")
        self.device = resolve_device(device)
        self.model = model if isinstance(model, ModelDescriptor) else load_model(model)
        if self.model.scale < 2:
            raise UnsupportedModelError(
                f"{self.model.name} is a x{self.model.scale} (restoration) model; upscaling needs a super-resolution model (x2 or more)")
        if self.model.runtime != "torch" and self.device.type == "cuda":
            raise BackendUnavailableError(f"{self.model.name} runs on {self.model.runtime}, on the CPU; use --device cpu")
        self.runtime = resolve_runtime(backend, self.model, self.device)
        if self.runtime != self.model.runtime:
            wanted = resolve_precision(precision, self.device, self.model)
            try:
                self.model = with_runtime(self.model, self.runtime, precision="bf16" if wanted == torch.bfloat16 else "fp32")
            except UnsupportedModelError as e:
                if backend != "auto":
                    raise
                (on_warning or (lambda _m: None))(f"{e}; running it on torch")
                self.runtime = "torch"
        self.dtype = resolve_precision(precision, self.device, self.model)
        self.scale = self.model.scale
        tiling = self.model.tiling
        # Discouraged tiling only where asked for; internal tiling never from outside.
        tileable = tiling is Tiling.SUPPORTED or (tiling is Tiling.DISCOURAGED and tile)
        self.batch, self.tile = batch, tile if tileable else 0
        self.tile_overlap = max(tile_overlap, self.model.tile_overlap) if tileable else tile_overlap
        self.stream_overlap = stream_overlap
        self.self_ensemble = self_ensemble
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self._graph: CUDAGraphRunner | None = None
        self._auto_batch: dict[tuple[int, int], int] = {}
        self._feat = self.model.activation_channels
        self.on_warning = on_warning or (lambda _message: None)
        module = self.model.inference_module().eval().to(self.device)
        if self.model.prepare is not None:
            self.model.prepare(module, self.device)
        if self.device.type == "cuda" and self.dtype == torch.float16:
            module = module.half()  # fp16 weights on CUDA; the attention keeps fp32 inside
        # channels_last suits the CPU's convolutions; on CUDA the forward ran slower in it (H200, x3
        # fp16 over 4 frames of 480x270: 80.0 ms against 62.4 contiguous; docs/benchmarks.md).
        channels_last = self.device.type == "cpu" and self.model.channels_last
        self._layout = torch.channels_last if channels_last else torch.contiguous_format
        module = module.to(memory_format=self._layout)
        self._module: torch.nn.Module = SelfEnsemble(module) if self_ensemble else module

    @property
    def precision_name(self) -> str:
        return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.dtype]

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.dtype == torch.bfloat16 and self.runtime == "torch":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def tile_for(self, height: int, width: int) -> int:
        """Tile side for frames of this size (0: whole frames): as set, or (tile=None) automatic:
        on the CPU tiles for frames whose activations outgrow the caches, on CUDA whole frames
        (tiles only after out-of-memory)."""
        if self.tile is not None:
            return self.tile
        if self.device.type == "cpu" and height * width * self._feat > CPU_AUTO_TILE_MIN_ACTIVATIONS:
            return CPU_AUTO_TILE
        return 0

    def _forward(self, x: Tensor) -> Tensor:
        if self.cuda_graphs:
            # One graph, for the steady-state shape (the first batch); a shorter last batch runs eagerly.
            if self._graph is None:
                self._graph = CUDAGraphRunner(self._module, x)
            if self._graph.shape == tuple(x.shape):
                return self._graph(x)
        return self._module(x)

    def _run(self, x: Tensor, *, graphs: bool = True) -> Tensor:
        """The model on one batch: padded to its size requirements, cropped back, clamped."""
        h, w = x.shape[-2:]
        pad_h, pad_w = self.model.size.padding(h, w)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x = x.to(self.device, self._module_dtype).contiguous(memory_format=self._layout)
        with self._autocast():
            y = (self._forward(x) if graphs else self._module(x)).float()
        s = self.scale
        return y[..., : h * s, : w * s].clamp_(0, 1)

    def batch_for(self, height: int, width: int) -> int:
        """Frames per model call for frames of this size: as set, or (batch=0) chosen once per
        size: on CUDA from the free memory and one frame's measured peak; on the CPU 1 (one
        frame already keeps every core busy)."""
        if self.batch:
            return self.batch
        if self.device.type != "cuda":
            return 1
        if (height, width) not in self._auto_batch:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            before = torch.cuda.memory_allocated(self.device)
            frame = torch.zeros(1, self.model.in_ch, height, width, device=self.device)
            with torch.inference_mode():
                # Not through the CUDA graph: it must be captured for the real batch shape.
                tile = self.tile_for(height, width)
                self._run_tiled(frame, tile) if tile else self._run(frame, graphs=False)
            per_frame = torch.cuda.max_memory_allocated(self.device) - before
            free, _total = torch.cuda.mem_get_info(self.device)
            self._auto_batch[(height, width)] = batch_for_memory(free, per_frame)
        return self._auto_batch[(height, width)]

    @property
    def _module_dtype(self) -> torch.dtype:
        return torch.float16 if self.device.type == "cuda" and self.dtype == torch.float16 else torch.float32

    def _run_tiled(self, x: Tensor, tile: int) -> Tensor:
        n, c, h, w = x.shape
        s = self.scale
        out = torch.empty(n, c, h * s, w * s, device=self.device)
        for y0, y1, cy0, cy1 in tile_spans(h, tile, self.tile_overlap):
            for x0, x1, cx0, cx1 in tile_spans(w, tile, self.tile_overlap):
                y = self._run(x[:, :, y0:y1, x0:x1], graphs=False)
                out[:, :, cy0 * s : cy1 * s, cx0 * s : cx1 * s] = y[
                    :, :, (cy0 - y0) * s : (cy1 - y0) * s, (cx0 - x0) * s : (cx1 - x0) * s
                ]
        return out

    @torch.inference_mode()
    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] not in (self.model.in_ch, 3):
            raise ValueError(f"expected (N, {self.model.in_ch}, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"expected a float tensor in [0, 1], got {x.dtype}; use upscale_batch for frames")
        if x.shape[1] == 3 and self.model.in_ch == 1:
            return self._luma_only(x)
        return self._upscale(x)

    def _luma_only(self, rgb: Tensor) -> Tensor:
        """A one-channel model on RGB: the model upscales luma (BT.601), bicubic the chroma."""
        luma = _LUMA.to(rgb.device)
        y = (rgb * luma).sum(1, keepdim=True)
        big = bicubic_upscale(rgb, self.scale)
        big_y = (big * luma).sum(1, keepdim=True)
        sr_y = self._upscale(y).to(big.device)
        return (big + (sr_y - big_y)).clamp_(0, 1)

    def _upscale(self, x: Tensor) -> Tensor:
        h, w = x.shape[2:]
        outs = []
        for chunk in x.split(self.batch_for(h, w)):
            tile = self.tile_for(h, w)
            try:
                outs.append(self._run_tiled(chunk, tile) if tile else self._run(chunk))
            except torch.OutOfMemoryError as e:
                if self.device.type != "cuda" or tile == 128:
                    raise DeviceOutOfMemoryError(
                        f"{self.device.type.upper()} out of memory while upscaling {w}x{h} frames; "
                        "use a smaller --batch or tile the frame, e.g. --tile 256"
                    ) from e
                # Fall back to tiles (halving down to 128 px) rather than failing a long job.
                self._graph = None
                torch.cuda.empty_cache()
                self.tile = max(128, (tile or 1024) // 2)
                self.on_warning(f"GPU out of memory: continuing in tiles of {self.tile} px")
                outs.append(self._run_tiled(chunk, self.tile))
        return torch.cat(outs)

    @torch.inference_mode()
    def upscale_frames(self, data: Tensor) -> Tensor:
        """uint8/uint16 (N, 3, H, W) frames on any device -> upscaled frames of the same dtype on
        `self.device` (quantised there, so only integers cross the bus)."""
        peak = 255.0 if data.dtype == torch.uint8 else 65535.0
        x = data.to(self.device, non_blocking=True).float().div_(peak)
        return self(x).mul_(peak).round_().to(data.dtype)

    def upscale_batch(self, frames: FrameBatch) -> FrameBatch:
        """Upscale decoded frames; the result (on the CPU) has the same dtype and pts."""
        return replace(frames, data=self.upscale_frames(frames.data).cpu())

    def stream(self, batches: Iterator[FrameBatch]) -> Iterator[FrameBatch]:
        """Upscale a stream of batches, in order. On CUDA, uploads, compute and downloads of
        consecutive batches overlap (`OverlapScheduler`); on the CPU batches run one by one."""
        if self.device.type == "cuda" and self.stream_overlap:
            from .overlap import OverlapScheduler

            scheduler = OverlapScheduler(self.upscale_frames, self.device, scale=self.scale)
            yield from scheduler.run(batches)
        else:
            for batch in batches:
                yield self.upscale_batch(batch)


def bicubic_upscale(x: Tensor, scale: int) -> Tensor:
    """Bicubic reference (float NCHW in [0, 1]), the baseline the benchmarks compare against."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp_(0, 1)
