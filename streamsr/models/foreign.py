"""Model files streamsr did not write: community weights through spandrel, ONNX graphs through
ONNX Runtime. Both are optional (``pip install "streamsr[models]"``, ``"streamsr[onnx]"``)."""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import BackendUnavailableError, UnsupportedModelError
from .descriptor import ModelDescriptor, SizeRequirements, Tiling

WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")
ONNX_SUFFIX = ".onnx"


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The tensors of a weight file, without running code: safetensors as they are, pickles with
    torch's tensor-only unpickler (a pickle that needs any other object is refused)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise UnsupportedModelError(f"{path}: not a readable safetensors file ({e})") from e
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; the refusal below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UnsupportedModelError(
            f"{path}: not a plain weight file (its pickle needs code to load, which streamsr never runs)"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise UnsupportedModelError(f"{path}: cannot read as a weight file ({str(e).splitlines()[0]})") from None
    if not isinstance(state, Mapping):
        raise UnsupportedModelError(f"{path}: holds a {type(state).__name__}, not a dictionary of tensors")
    return dict(state)


def spandrel_available() -> bool:
    try:
        import spandrel  # noqa: F401
    except ImportError:
        return False
    return True


def supported_architectures() -> list[str]:
    """Names of the foreign architectures spandrel can load here (empty without spandrel)."""
    if not spandrel_available():
        return []
    from spandrel import MAIN_REGISTRY

    return sorted({entry.architecture.name for entry in MAIN_REGISTRY})


def load_spandrel(path: Path, state: Mapping[str, Tensor]) -> ModelDescriptor:
    """A foreign state dict as a descriptor, its architecture recognised by spandrel."""
    if not spandrel_available():
        raise BackendUnavailableError(
            f"{path}: not a streamsr weight file; loading other architectures needs spandrel "
            f'(pip install "streamsr[models]")'
        )
    import spandrel

    try:
        loaded = spandrel.ModelLoader().load_from_state_dict(spandrel.canonicalize_state_dict(dict(state)))
    except spandrel.UnsupportedModelError:
        raise UnsupportedModelError(
            f"{path}: the weights match no known architecture (streamsr's SAFDN, or the ones "
            f"`streamsr models --archs` lists)"
        ) from None
    except (RuntimeError, KeyError, ValueError, AssertionError) as e:
        raise UnsupportedModelError(f"{path}: looks like a known architecture but does not load ({e})") from None
    if not isinstance(loaded, spandrel.ImageModelDescriptor):
        raise UnsupportedModelError(f"{path}: {loaded.architecture.name} needs a mask (inpainting); it cannot upscale video")
    req = loaded.size_requirements
    multiple = req.multiple_of
    return ModelDescriptor(
        loaded.model.eval(),
        str(path),
        f"spandrel:{loaded.architecture.id}",
        int(loaded.scale),
        int(loaded.input_channels),
        out_ch=int(loaded.output_channels),
        supports_half=bool(loaded.supports_half),
        supports_bfloat16=bool(loaded.supports_bfloat16),
        size=SizeRequirements(minimum=max(req.minimum, multiple if req.square else 0), multiple_of=multiple),
        tiling=Tiling(loaded.tiling.name.lower()),
        tile_overlap=max(32, multiple),
        metadata={"architecture": loaded.architecture.name, "purpose": str(loaded.purpose), **_hparams_meta(loaded)},
    )


def _hparams_meta(loaded: Any) -> dict[str, str]:
    hp = {k: v for k, v in dict(getattr(loaded, "hyperparameters", {}) or {}).items()
          if isinstance(v, int | float | str | bool)}
    return {"hparams": json.dumps(hp)} if hp else {}


# -- ONNX --------------------------------------------------------------------------------------


class ONNXModule(nn.Module):
    """An ONNX super-resolution graph run by ONNX Runtime behind the module call contract:
    (N, C, H, W) float tensor in -> (N, C', H*s, W*s) float32 tensor out, on the CPU."""

    def __init__(self, path: Path, *, providers: list[str] | None = None, threads: int = 0) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError(f'{path}: running .onnx models needs ONNX Runtime (pip install "streamsr[onnx]")') from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        available = ort.get_available_providers()
        chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in available] or ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=chosen)
        except Exception as e:  # onnxruntime raises its own unexported exception types
            raise UnsupportedModelError(f"{path}: ONNX Runtime cannot load it ({str(e).splitlines()[0]})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise UnsupportedModelError(f"{path}: expected one NCHW image input, found {[i.shape for i in inputs]}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.input_dtype = np.float16 if "float16" in inputs[0].type else np.float32
        declared = inputs[0].shape[1]
        self.in_ch = declared if isinstance(declared, int) else 3
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def forward(self, x: Tensor) -> Tensor:
        array = x.detach().to("cpu", torch.float32).contiguous().numpy().astype(self.input_dtype, copy=False)
        (y,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(np.asarray(y, dtype=np.float32)).to(x.device)


def load_onnx(path: Path, *, providers: list[str] | None = None, threads: int = 0) -> ModelDescriptor:
    """An ``.onnx`` SR model; its scale and channels are read by running it once on a small input."""
    module = ONNXModule(path, providers=providers, threads=threads)
    size = SizeRequirements(minimum=int(module.metadata.get("min_side", 0)), multiple_of=int(module.metadata.get("multiple_of", 1)))
    probe_side = max(32, size.minimum + (-size.minimum % size.multiple_of))
    try:
        y = module(torch.rand(1, module.in_ch, probe_side, probe_side))
    except Exception as e:  # a graph with fixed sizes or unsupported ops fails only when run
        raise UnsupportedModelError(f"{path}: the graph does not run on a {probe_side}x{probe_side} input ({str(e).splitlines()[0]})") from None
    if y.ndim != 4 or y.shape[-1] % probe_side or y.shape[-1] != y.shape[-2]:
        raise UnsupportedModelError(f"{path}: output {tuple(y.shape)} is not an upscaled image")
    scale = y.shape[-1] // probe_side
    return ModelDescriptor(module, str(path), "onnx", scale, module.in_ch, out_ch=int(y.shape[1]), size=size,
                           supports_half=False, supports_bfloat16=False, channels_last=False, runtime="onnxruntime",
                           metadata=module.metadata)
