"""Pipeline presets: declarative TOML files in pipelines/ that fill an `UpscaleConfig`.

A preset is the top-level `UpscaleConfig` fields plus an ``[encode]`` table of `EncodeConfig`
fields, and a one-line ``description``. Unknown keys and wrong types are errors naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import UpscaleConfig, from_mapping, read_toml
from .errors import ConfigError
from .io.codecs import EncodeConfig

PIPELINES_DIR = Path(__file__).resolve().parent.parent / "pipelines"


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    config: UpscaleConfig
    path: Path


def preset_dirs() -> list[Path]:
    """The shipped presets: inside an installed wheel, else the checkout's pipelines/."""
    inside = Path(__file__).resolve().parent / "pipelines"
    return [d for d in (inside, PIPELINES_DIR) if d.is_dir()]


def list_presets() -> list[Preset]:
    """Every shipped upscaling preset (training recipes, ``train-*.toml``, are not presets)."""
    found: dict[str, Preset] = {}
    for d in preset_dirs():
        for path in sorted(d.glob("*.toml")):
            if not path.stem.startswith("train-") and path.stem not in found:
                found[path.stem] = load_preset(path)
    return list(found.values())


def config_from_mapping(data: dict[str, Any], *, where: str, base: UpscaleConfig | None = None) -> UpscaleConfig:
    """Overlay `data` (preset keys) on `base` and validate the result."""
    base = base or UpscaleConfig()
    data = dict(data)
    encode_data = data.pop("encode", {})
    if not isinstance(encode_data, dict):
        raise ConfigError(f"{where}: encode must be a table")
    encode = from_mapping(EncodeConfig, {**dataclasses.asdict(base.encode), **encode_data}, where=f"{where} [encode]")
    fields = {k: v for k, v in dataclasses.asdict(base).items() if k != "encode"}
    return dataclasses.replace(from_mapping(UpscaleConfig, {**fields, **data}, where=where), encode=encode)


def layered_config(preset: Preset, data: dict[str, Any], *, where: str) -> UpscaleConfig:
    """`preset`'s config with `data` (`UpscaleConfig` fields and an ``encode`` mapping) laid over it.

    A model given without a scale keeps the model's own scale; a scale given without a model takes
    the preset model's member of that scale (``safdn-tiny-x4`` with scale 2: ``safdn-tiny-x2``).
    """
    from .models import family_member

    data = dict(data)
    if "model" in data and "scale" not in data:
        data["scale"] = None
    if "scale" in data and "model" not in data and preset.config.model:
        data["model"] = family_member(preset.config.model, data["scale"])
    return config_from_mapping(data, where=where, base=preset.config)


def load_preset(name_or_path: str | Path) -> Preset:
    """Load a shipped preset by name (``fast``) or any preset file by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        candidates = [d / f"{name_or_path}.toml" for d in preset_dirs()]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            names = ", ".join(p.name for p in list_presets()) if preset_dirs() else "none"
            raise ConfigError(f"unknown pipeline {name_or_path!r} (shipped: {names}); or give a .toml path")
        path = found
    data = read_toml(path)
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{path}: description must be a string")
    return Preset(path.stem, description, config_from_mapping(data, where=path.name), path)
