"""streamsr: video and stream super-resolution with the SAFDN model.

    >>> import streamsr
    >>> streamsr.upscale_file("video.mp4", config=streamsr.UpscaleConfig(scale=4))  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.2.0"

from .config import UpscaleConfig, UpscaleResult
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
from .frames import ColorInfo, FrameBatch, VideoInfo
from .io import EncodeConfig, open_decoder, probe
from .models import ModelDescriptor, list_models, load_model, measure_complexity
from .models.runtimes import export_onnx
from .run import upscale, upscale_file, upscale_stream, upscale_to_frames
from .upscaler import Upscaler

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
