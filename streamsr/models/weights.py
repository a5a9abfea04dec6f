"""Self-describing weight files: safetensors with arch, hyperparameters and training record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file
from torch import nn

from ..errors import UnsupportedModelError
from ..io.probe import file_digest
from .registry import REGISTRY

FORMAT = "streamsr/1"
WRITTEN_BY_SAVE = ("format", "arch", "hparams", "scale")
"""Metadata keys `save_weights` derives from the model itself (never taken from `extra`)."""


def save_weights(
    model: nn.Module, path: str | Path, *, arch: str, extra: Mapping[str, Any] | None = None
) -> None:
    """Write `model`'s weights with the metadata needed to rebuild it.

    `extra` values that are not strings are stored as JSON (safetensors metadata is str -> str).
    The file is written to a temporary name and renamed, so a crash leaves no truncated file.
    """
    hparams = getattr(model, "hparams", None)
    if hparams is None:
        raise TypeError("model has no .hparams; every streamsr arch records its constructor arguments")
    meta = {"format": FORMAT, "arch": arch, "hparams": json.dumps(hparams), "scale": str(hparams["scale"])}
    for key, value in (extra or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)


def carried_metadata(meta: Mapping[str, str], *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The part of a file's metadata to pass on as `extra` when its weights are saved again
    (changed or not): all but what `save_weights` writes itself, and less the `drop` keys."""
    return {k: v for k, v in meta.items() if k not in WRITTEN_BY_SAVE + drop}


def derived_metadata(meta: Mapping[str, str], training_update: Mapping[str, Any]) -> dict[str, str]:
    """`extra` for weights made from a trained file without training them (averaged, refitted): its
    metadata carried over, less what measured that file alone (its quality and validation figure),
    with `training_update` merged into its training record to say what was done."""
    training = json.loads(meta.get("training", "{}"))
    training.pop("val_psnr", None)
    training.update(training_update)
    extra = carried_metadata(meta, drop=("quality",))
    extra["training"] = json.dumps(training)
    return extra


def weights_digest(path: str | Path) -> str:
    """The first 16 hex digits of a file's sha256: the name weights/README.md's table and the
    training records give a weights file, which outlives its path once a newer file replaces it."""
    return file_digest(path)[:16]


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata header of a safetensors file, without loading the tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise UnsupportedModelError(f"{path}: not a readable safetensors file ({e})") from e


def check_finite(state: Mapping[str, torch.Tensor], where: str | Path) -> None:
    """Refuse weights holding NaN or infinity: they load silently and upscale to black frames."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UnsupportedModelError(f"{where}: tensor {key!r} holds NaN or infinite values; the file is damaged")


def unwrap_state(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a training checkpoint's usual wrappers (``params_ema``, ``params``,
    ``state_dict``, ``model``), with a ``module.`` prefix (DataParallel) removed."""
    for key in ("params_ema", "params", "state_dict", "model"):
        if isinstance(state.get(key), Mapping):
            state = state[key]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def model_from_state(state: Mapping[str, torch.Tensor], meta: Mapping[str, str], where: str | Path) -> tuple[nn.Module, dict[str, str]]:
    """Rebuild one of streamsr's architectures from its tensors and (if present) its metadata."""
    check_finite(state, where)
    spec = REGISTRY[meta["arch"]] if "arch" in meta else REGISTRY.detect(state)
    try:
        hparams = json.loads(meta["hparams"]) if "hparams" in meta else spec.infer(state)
        if not isinstance(hparams, dict):
            raise TypeError(f"hyperparameters must be a JSON object, not {type(hparams).__name__}")
        model = spec.cls(**hparams)
    except (ValueError, TypeError, KeyError, RuntimeError) as e:  # not JSON, an unknown key, a wrong type or size
        raise UnsupportedModelError(f"{where}: its metadata does not describe a {spec.id} network ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UnsupportedModelError(f"{where}: weights do not fit {spec.id} {hparams}: {e}") from e
    full = dict(meta)
    full.setdefault("arch", spec.id)
    full.setdefault("hparams", json.dumps(hparams))
    return model.eval(), full


def load_weights(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, str]]:
    """Rebuild the model stored in `path`; returns (module in eval mode, metadata).

    Our own files carry arch and hparams; foreign ``.safetensors``/``.pth`` files of our
    architectures are detected from their keys. Pickles are opened with ``weights_only=True``.
    """
    from .foreign import read_state_dict

    path = Path(path)
    if not path.is_file():
        raise UnsupportedModelError(f"{path}: weight file not found")
    meta = read_metadata(path) if path.suffix == ".safetensors" else {}
    state = unwrap_state(read_state_dict(path))
    model, meta = model_from_state(state, meta, path)
    return model.to(device), meta
