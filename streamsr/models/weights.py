"""Self-describing weight files: safetensors with arch, hyperparameters and training record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file
from torch import nn

from ..errors import UnsupportedModelError
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
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata header of a safetensors file, without loading the tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise UnsupportedModelError(f"{path}: not a readable safetensors file ({e})") from e


def load_weights(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, str]]:
    """Rebuild the model stored in `path`; returns (module in eval mode, metadata).

    Our own files carry arch and hparams; foreign ``.safetensors``/``.pth`` files are detected
    from their keys. Pickles are opened with ``weights_only=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise UnsupportedModelError(f"{path}: weight file not found")
    if path.suffix in (".pth", ".pt"):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for a bad pickle
            raise UnsupportedModelError(f"{path}: cannot load ({e})") from e
        state = state.get("params_ema", state.get("params", state)) if isinstance(state, dict) else state
        meta: dict[str, str] = {}
    else:
        meta = read_metadata(path)
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open is not a dict)
    spec = REGISTRY[meta["arch"]] if "arch" in meta else REGISTRY.detect(state)
    hparams = json.loads(meta["hparams"]) if "hparams" in meta else spec.infer(state)
    model = spec.cls(**hparams)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UnsupportedModelError(f"{path}: weights do not fit {spec.id} {hparams}: {e}") from e
    meta.setdefault("arch", spec.id)
    meta.setdefault("hparams", json.dumps(hparams))
    return model.eval().to(device), meta
