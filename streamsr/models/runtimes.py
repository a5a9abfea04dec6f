"""Graph runtimes for inference: a torch model exported to ONNX, run by ONNX Runtime or OpenVINO.

`export_onnx` writes the graph (dynamic batch, height and width); `with_runtime` swaps a
descriptor's module for one that runs that graph, caching the export (and OpenVINO's compiled
models, one per input shape: a video has one) so a model is exported once per machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import BackendUnavailableError, UnsupportedModelError
from .descriptor import ModelDescriptor
from .foreign import ONNXModule

RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnxruntime", "openvino")
"""What may execute a model (`Upscaler(backend=...)`, ``--backend``)."""

_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
_EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}

AUTO_CPU_RUNTIME = "openvino"
"""What "auto" runs our models with on the CPU when it is installed: the fastest there
(docs/benchmarks.md, "Runtimes"); torch when it is not, and always on CUDA."""

EXPORT_SIDE = 64
"""Side of the example frame the graph is traced with; height and width stay dynamic."""


def runtime_available(runtime: str) -> bool:
    """True when `runtime`'s package is installed ("torch" always is)."""
    if runtime == "torch":
        return True
    return importlib.util.find_spec(_PACKAGES[runtime]) is not None


def cache_dir() -> Path:
    """Where exported graphs are kept: ``$STREAMSR_CACHE``, else ``~/.cache/streamsr``."""
    root = os.environ.get("STREAMSR_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "streamsr"


def export_onnx(model: ModelDescriptor, path: str | Path, *, opset: int = 17) -> Path:
    """Write `model`'s network as an ONNX graph with dynamic batch, height and width.

    The graph takes ``lr`` (N, C, H, W) float32 in [0, 1] and gives ``sr`` (N, C, H*s, W*s),
    unclamped; its metadata records the scale and the model's name. Written to a temporary
    name and renamed, so an interrupted export leaves no file.
    """
    if model.runtime != "torch":
        raise UnsupportedModelError(f"{model.name} is already a {model.runtime} graph; export needs a torch model")
    path = Path(path)
    module = model.inference_module().eval().float().to("cpu", memory_format=torch.contiguous_format)
    min_side = max(model.size.minimum, int(getattr(module, "graph_min_side", 0)))
    side = max(EXPORT_SIDE, min_side)
    side += -side % model.size.multiple_of
    example = torch.rand(1, model.in_ch, side, side)
    tmp = path.with_name(f".{path.name}.part")
    try:
        try:
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad(), _native_stderr_silenced():
                warnings.simplefilter("ignore")  # the tracer's notes on Python ints taken from shapes
                torch.onnx.export(module, (example,), str(tmp), dynamo=False, opset_version=opset,
                                  input_names=["lr"], output_names=["sr"],
                                  dynamic_axes={"lr": {0: "n", 2: "h", 3: "w"}, "sr": {0: "n", 2: "sh", 3: "sw"}})
        except (RuntimeError, torch.onnx.errors.OnnxExporterError) as e:
            reason = str(e).strip().splitlines()[0].split(". Please")[0][:200]
            raise UnsupportedModelError(f"{model.name}: cannot be exported to ONNX with a dynamic size ({reason})") from None
        _stamp(tmp, {"streamsr_model": model.name, "scale": str(model.scale), "arch": model.arch,
                     "min_side": str(min_side), "multiple_of": str(model.size.multiple_of)})
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Silence file descriptors 1 and 2 (the exporter's C++ side dumps the whole traced graph
    when an export fails; the failure itself is reported as one line)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def _stamp(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    graph = onnx.load(str(path))
    for key, value in metadata.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(path))


GRAPH_FORM = "reparameterized-1"
"""Changes whenever what `export_onnx` traces changes (fusions), so cached graphs are rebuilt."""


def model_digest(model: ModelDescriptor) -> str:
    """A hash of the network's tensors, hyperparameters, the exporter's version and the graph form
    (`GRAPH_FORM`): the key of its cached graph."""
    digest = hashlib.sha256(json.dumps([model.arch, model.hparams, torch.__version__, GRAPH_FORM],
                                       sort_keys=True).encode())
    for key, tensor in model.module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_onnx(model: ModelDescriptor, folder: Path | None = None) -> Path:
    """The model's ONNX graph from the cache, exported there first if missing."""
    if importlib.util.find_spec("onnx") is None:
        raise BackendUnavailableError('exporting to ONNX needs the onnx package (pip install "streamsr[onnx]")')
    folder = folder or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{Path(model.name).stem}-{model_digest(model)}.onnx"
    return path if path.is_file() else export_onnx(model, path)


class OpenVINOModule(nn.Module):
    """An ONNX graph compiled by OpenVINO for the CPU, once per input shape, behind the module
    call contract (float tensor in, float32 tensor out)."""

    def __init__(self, path: Path, *, precision: str = "fp32", threads: int = 0) -> None:
        super().__init__()
        import openvino as ov

        self._core = ov.Core()
        self._model = self._core.read_model(str(path))
        self._config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                                           "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = threads
        self._compiled: dict[tuple[int, ...], object] = {}

    def compiled_shapes(self) -> list[tuple[int, ...]]:
        return list(self._compiled)

    def _for_shape(self, shape: tuple[int, ...]) -> object:
        if shape not in self._compiled:
            model = self._model.clone()
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
            self._compiled[shape] = self._core.compile_model(model, "CPU", self._config)
        return self._compiled[shape]

    def forward(self, x: Tensor) -> Tensor:
        compiled = self._for_shape(tuple(x.shape))
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        result = compiled(array)  # type: ignore[operator]
        return torch.from_numpy(np.asarray(result[0], dtype=np.float32)).to(x.device)


def resolve_runtime(runtime: str, model: ModelDescriptor, device: torch.device) -> str:
    """The runtime that will execute `model`: as asked (refused with one line if unusable here),
    or ("auto") the fastest available for the device."""
    if runtime not in RUNTIMES:
        raise ValueError(f"backend must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if model.runtime != "torch":
        if runtime not in ("auto", model.runtime):
            raise BackendUnavailableError(f"{model.name} is an ONNX graph; it runs on {model.runtime}, not {runtime}")
        return model.runtime
    if runtime == "auto":
        if device.type == "cpu" and model.arch == "safdn" and runtime_available(AUTO_CPU_RUNTIME):
            return AUTO_CPU_RUNTIME
        return "torch"
    if runtime != "torch":
        if not runtime_available(runtime):
            raise BackendUnavailableError(f'--backend {runtime}: {runtime} is not installed (pip install "streamsr[{_EXTRAS[runtime]}]")')
        if device.type != "cpu":
            raise BackendUnavailableError(f"--backend {runtime} runs on the CPU here; use --device cpu or --backend torch")
    return runtime


def with_runtime(model: ModelDescriptor, runtime: str, *, precision: str = "fp32", threads: int = 0) -> ModelDescriptor:
    """`model` executed by `runtime` ("torch": unchanged). The graph computes in fp32 on ONNX
    Runtime; on OpenVINO in `precision` ("bf16" or "fp32")."""
    if runtime == "torch" or runtime == model.runtime:
        return model
    graph = cached_onnx(model)
    module: nn.Module
    if runtime == "onnxruntime":
        module = ONNXModule(graph, threads=threads)
    else:
        module = OpenVINOModule(graph, precision=precision, threads=threads)
    min_side = max(model.size.minimum, int(getattr(model.module, "graph_min_side", 0)))
    return replace(model, module=module, runtime=runtime, prepare=None, supports_half=False, supports_bfloat16=runtime == "openvino",
                   channels_last=False, size=replace(model.size, minimum=min_side))
