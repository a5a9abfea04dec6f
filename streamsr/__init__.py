"""streamsr: video and stream super-resolution with the SAFDN model.

    >>> import streamsr
    >>> streamsr.upscale("video.mp4", config=streamsr.UpscaleConfig(scale=4))  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.2.0"

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    BackendUnavailableError,
    ConfigError,
    DecodeError,
    DiskFullError,
    EncodeError,
    InputError,
    OutputError,
    ScaleMismatchError,
    StreamSRError,
    UnsupportedModelError,
    WeightsMissingError,
)

# The rest loads torch and FFmpeg: imported on first use, so `import streamsr` (and the command's
# start, which handles signals from its first instant) stays light.
_LAZY = {
    "UpscaleConfig": "config", "UpscaleResult": "config",
    "ColorInfo": "frames", "FrameBatch": "frames", "VideoInfo": "frames",
    "EncodeConfig": "io", "open_decoder": "io", "probe": "io",
    "ModelDescriptor": "models", "list_models": "models", "load_model": "models", "measure_complexity": "models",
    "export_onnx": "models.runtimes",
    "upscale": "run", "upscale_file": "run", "upscale_stream": "run", "upscale_to_frames": "run",
    "Upscaler": "upscaler",
}

if TYPE_CHECKING:
    from .config import UpscaleConfig, UpscaleResult
    from .frames import ColorInfo, FrameBatch, VideoInfo
    from .io import EncodeConfig, open_decoder, probe
    from .models import ModelDescriptor, list_models, load_model, measure_complexity
    from .models.runtimes import export_onnx
    from .run import upscale, upscale_file, upscale_stream, upscale_to_frames
    from .upscaler import Upscaler


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'streamsr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BackendUnavailableError",
    "ColorInfo",
    "ConfigError",
    "DecodeError",
    "DiskFullError",
    "EncodeConfig",
    "EncodeError",
    "FrameBatch",
    "InputError",
    "ModelDescriptor",
    "OutputError",
    "ScaleMismatchError",
    "StreamSRError",
    "UnsupportedModelError",
    "UpscaleConfig",
    "UpscaleResult",
    "Upscaler",
    "VideoInfo",
    "WeightsMissingError",
    "__version__",
    "export_onnx",
    "list_models",
    "load_model",
    "measure_complexity",
    "open_decoder",
    "probe",
    "upscale",
    "upscale_file",
    "upscale_stream",
    "upscale_to_frames",
]
