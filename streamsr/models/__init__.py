"""Model registry, named pretrained models and loading.

A *name* (``safdn-x4``) refers to a weight file shipped in ``weights/``; a *path* refers to a
model file: ours, a community one spandrel recognises, or an ONNX graph. All load through `load_model`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UnsupportedModelError, WeightsMissingError
from . import archs  # noqa: F401  (registers the architectures)
from .complexity import Complexity, count_params, measure_complexity
from .descriptor import ModelDescriptor
from .foreign import ONNX_SUFFIX, WEIGHT_SUFFIXES, load_onnx, load_spandrel, read_state_dict, supported_architectures
from .registry import REGISTRY, ArchSpec, register_arch
from .weights import check_finite, load_weights, model_from_state, read_metadata, save_weights, unwrap_state


@dataclass(frozen=True)
class NamedModel:
    """A model streamsr ships weights for."""

    name: str
    arch: str
    scale: int
    hparams: dict[str, int | float]
    summary: str

    @property
    def filename(self) -> str:
        return f"{self.name}.safetensors"


SCALES = (2, 3, 4)
"""The scales the shipped SAFDN models cover."""
SCALE_RANGE = (2, 8)
"""The upscaling factors any model may have (SAFDN's are `SCALES`; other architectures reach x8)."""
DEFAULT_SCALE = 4
"""The scale `upscale` uses when neither a scale nor a model is given."""

# The default SAFDN (~250K params), a small variant (~35K) and a tiny one (~9K) that keeps up
# with a live 320x240 camera and 320x180 -> 720p x4 on two AVX2 cores (docs/benchmarks.md).
_DEFAULT = {"feat": 48, "blocks": 8}
_REALTIME = {"feat": 24, "blocks": 3, "esa": 8}
_TINY = {"feat": 16, "blocks": 1, "esa": 8}
CATALOG: dict[str, NamedModel] = {
    m.name: m
    for m in [
        *(NamedModel(f"safdn-x{s}", "safdn", s, {**_DEFAULT, "scale": s}, f"SAFDN x{s}, quality") for s in SCALES),
        *(NamedModel(f"safdn-x{s}-video", "safdn", s, {**_DEFAULT, "scale": s},
                     f"SAFDN x{s} for compressed video (trained on x264/x265 LR)") for s in (2, 4)),
        *(NamedModel(f"safdn-rt-x{s}", "safdn", s, {**_REALTIME, "scale": s}, f"small SAFDN x{s}, fast on CPU") for s in (2, 4)),
        *(NamedModel(f"safdn-tiny-x{s}", "safdn", s, {**_TINY, "scale": s}, f"tiny SAFDN x{s}, real time on CPU") for s in (2, 4)),
    ]
}


def default_model_name(scale: int) -> str:
    """The model `streamsr upscale --scale N` uses when none is named."""
    name = f"safdn-x{scale}"
    if name not in CATALOG:
        scales = sorted({m.scale for m in CATALOG.values()})
        raise UnsupportedModelError(f"no model for scale {scale}; available scales: {scales}")
    return name


def family_member(name: str, scale: int) -> str:
    """The catalog model of `name`'s family at `scale` (``safdn-rt-x2`` at 4: ``safdn-rt-x4``); a
    name outside the catalog is returned as it is (its scale is checked when it loads)."""
    if name not in CATALOG:
        return name
    entry = CATALOG[name]
    stem, _, tag = name.partition(f"-x{entry.scale}")
    return f"{stem}-x{scale}{tag}"


def weights_dirs() -> list[Path]:
    """Where named weights are looked up, in order.

    ``$STREAMSR_WEIGHTS`` (if set), the copy inside an installed wheel, then the source
    checkout's top-level ``weights/`` (editable installs).
    """
    here = Path(__file__).resolve().parent.parent
    dirs = [here / "weights", here.parent / "weights"]
    env = os.environ.get("STREAMSR_WEIGHTS")
    return [Path(env), *dirs] if env else dirs


def find_weights(name: str) -> Path | None:
    entry = CATALOG[name]
    for d in weights_dirs():
        if (d / entry.filename).is_file():
            return d / entry.filename
    return None


def load_model(name_or_path: str | Path, *, device: str | torch.device = "cpu") -> ModelDescriptor:
    """Load a named model (``safdn-x4``) or a model file.

    Files: our ``.safetensors``; any ``.pth``/``.pt``/``.ckpt``/``.safetensors`` whose
    architecture spandrel recognises (read without running code); ``.onnx`` graphs (ONNX Runtime).

    Raises:
        WeightsMissingError: the name is known but its weight file is not installed.
        UnsupportedModelError: unknown name, unreadable or unsafe file, or an unknown architecture.
        BackendUnavailableError: the file needs an optional package that is not installed.
    """
    key = str(name_or_path)
    if key in CATALOG:
        path = find_weights(key)
        if path is None:
            where = ", ".join(str(d) for d in weights_dirs())
            raise WeightsMissingError(
                f"weights for {key!r} are not installed (looked in {where}); "
                f"pass a model file with --model, or train one with `streamsr train`"
            )
        module, meta = load_weights(path, device=device)
        return ModelDescriptor.from_module(module, name=key, arch=meta["arch"], metadata=meta)
    path = Path(key)
    suffix = path.suffix.lower()
    if suffix not in (*WEIGHT_SUFFIXES, ONNX_SUFFIX):
        raise UnsupportedModelError(
            f"{key}: not a model name or model file; give a name from `streamsr models`, or a "
            f".safetensors, .pth, .pt, .ckpt or .onnx file (`streamsr models --archs` lists what loads)"
        )
    if not path.is_file():
        raise UnsupportedModelError(f"{path}: model file not found")
    if suffix == ONNX_SUFFIX:
        return load_onnx(path)
    meta = read_metadata(path) if suffix == ".safetensors" else {}
    state = unwrap_state(read_state_dict(path))
    if "arch" in meta or any(spec.detect(state) for spec in REGISTRY):
        module, meta = model_from_state(state, meta, path)
        return ModelDescriptor.from_module(module.to(device), name=key, arch=meta["arch"], metadata=meta)
    check_finite(state, path)
    descriptor = load_spandrel(path, state)
    descriptor.module.to(device)
    return descriptor


def list_models() -> list[NamedModel]:
    """The catalog, in order (installed or not; see `find_weights`)."""
    return list(CATALOG.values())


def build_model(name: str, **overrides: int | float) -> torch.nn.Module:
    """A randomly initialised network with a catalog entry's hyperparameters (for training),
    any of which `overrides` replaces (e.g. ``blocks=10``)."""
    entry = CATALOG[name]
    return REGISTRY[entry.arch].cls(**{**entry.hparams, **overrides})


__all__ = [
    "CATALOG",
    "DEFAULT_SCALE",
    "SCALES",
    "SCALE_RANGE",
    "REGISTRY",
    "ArchSpec",
    "Complexity",
    "ModelDescriptor",
    "NamedModel",
    "build_model",
    "count_params",
    "default_model_name",
    "family_member",
    "find_weights",
    "list_models",
    "load_model",
    "load_weights",
    "measure_complexity",
    "read_metadata",
    "register_arch",
    "supported_architectures",
    "save_weights",
]
