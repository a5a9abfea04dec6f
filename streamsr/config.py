"""Frozen, validated configuration dataclasses, loadable from TOML (pipelines/*.toml)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .errors import ConfigError
from .io.codecs import EncodeConfig

if TYPE_CHECKING:
    from .upscaler import Upscaler

T = TypeVar("T")

PixelLoss = Literal["l1", "l2"]
PIXEL_LOSSES: tuple[str, ...] = typing.get_args(PixelLoss)
Sampling = Literal["area", "folder"]
SAMPLINGS: tuple[str, ...] = typing.get_args(Sampling)


def _check_type(name: str, value: Any, annotation: Any) -> Any:
    """Validate (and lightly coerce: int -> float, list -> tuple) one value against a type."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(name, value, option)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: {value!r} is not a valid {annotation}")
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name}: expected a list, got {type(value).__name__}")
        (item_type, *_) = typing.get_args(annotation)
        return tuple(_check_type(f"{name}[]", v, item_type) for v in value)
    if annotation is type(None):
        if value is not None:
            raise ConfigError(f"{name}: expected nothing, got {value!r}")
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool):
        if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
            raise ConfigError(f"{name}: expected {annotation.__name__}, got {type(value).__name__} {value!r}")
        return value
    return value


def from_mapping(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build dataclass `cls` from `data`, naming any unknown key or wrongly typed value."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    prefix = f"{where}: " if where else ""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{prefix}unknown key {unknown[0]!r} (allowed: {', '.join(sorted(fields))})")
    values = {k: _check_type(f"{prefix}{k}", v, hints[k]) for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix}{e}") from e


def read_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from e


DATA_ENV = "STREAMSR_DATA"
"""Environment variable naming the data folder that relative training and evaluation paths are read from."""


def data_path(path: str | Path) -> Path:
    """`path` itself when absolute or ./-relative and present, else `$STREAMSR_DATA/path`.

    Raises:
        ConfigError: a relative path that does not exist here while STREAMSR_DATA is unset.
    """
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    root = os.environ.get(DATA_ENV)
    if not root:
        raise ConfigError(f"{path}: not found; set {DATA_ENV} to the folder that holds it, or give a full path")
    return Path(root) / p


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training recipe (pipelines/train-*.toml). Data paths that are not found as given are read
    below $STREAMSR_DATA (`data_path`); `out` and weight paths are relative to the working directory."""

    model: str = "safdn-x2"
    """Catalog name whose architecture is trained (its scale is the training scale)."""
    data: tuple[str, ...] = ("train",)
    """Folders of HR training images (searched recursively)."""
    data_weights: tuple[float, ...] = ()
    """One weight per `data` folder: its share of the samples (its images share it by area);
    empty: the `sampling` rule over all images."""
    degradation: str = ""
    """LR compression for training, e.g. "x264+x265:crf=18-35,noise=2" (`Compression`); "": clean
    bicubic LR only."""
    variants: int = 4
    """With a degradation: compressed LR versions drawn per image at load (samples take the clean
    LR or one of these with equal chance)."""
    val: str | tuple[str, ...] = "val/DIV2K256"
    """Folder(s) of HR validation images, evaluated with the EMA weights; the mean of their PSNRs
    picks the best weights. Never a set that is reported (Set5, Set14, B100, Vid4)."""
    val_degradation: str = ""
    """Compression applied to the validation LR (e.g. "x264:crf=28"); "": clean."""
    blocks: int = 0
    """SAFD blocks in the trained network; 0 keeps the catalog model's. More than `init` has grows
    it without changing its output: new blocks start as copies of its last, weighted zero by the fuse."""
    init: str = ""
    """Weights to start from; tensors whose shapes differ (the upsampler, across scales) are skipped."""
    out: str = "runs/safdn-x2"
    iterations: int = 20000
    minutes: float = 0.0
    """Training-time budget (time spent in training steps, so it carries across --resume); 0: none.
    When set, the cosine schedule follows the time as well, and training ends at whichever of
    `iterations` and `minutes` comes first, so a run fits a fixed amount of machine time."""
    batch: int = 16
    patch: int = 48
    """LR patch side in pixels (HR patch = patch * scale)."""
    crop_draws: int = 1
    """Crop positions drawn per sample, keeping the most detailed (1: uniform crops)."""
    sampling: Sampling = "area"
    """How training images are drawn: "area", in proportion to their area (every pixel equally
    likely); "folder", each folder of images an equal share, its images by area within it, so one
    folder of large photographs does not outweigh the rest (RealSR's 16 images hold half the pixels)."""
    lr: float = 2e-3
    lr_min: float = 1e-5
    warmup: int = 200
    ema: float = 0.999
    fft_weight: float = 0.0
    """Weight of the L1 loss on FFT amplitudes/phases added to the pixel loss (0 disables)."""
    luma_weight: float = 0.0
    """Weight of the same pixel loss on the BT.601 luma difference, added to the RGB one (0 disables)."""
    pixel_loss: PixelLoss = "l1"
    """"l1", or "l2" (mean squared error, what PSNR measures). An L2 fine-tune of the shipped x3/x4
    scored below L1 + FFT on every set (docs/benchmarks.md), so the recipes use L1."""
    teacher: str = ""
    """Weights whose self-ensemble (mean over 8 flips/rotations) is blended into the target; "": none.
    It runs once per training set, cached in `teacher-cache/` beside the `out` folder."""
    teacher_weight: float = 0.5
    """With a teacher, the target is (1 - w) * HR + w * the teacher's ensemble output (0 < w <= 1)."""
    val_every: int = 500
    checkpoint_every: int = 250
    threads: int = 0
    """torch intra-op threads; 0 keeps torch's default (all cores)."""
    device: str = "auto"
    """"auto" (CUDA if present), "cpu" or "cuda"."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "batch", "patch", "crop_draws", "val_every", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.blocks < 0:
            raise ValueError("blocks must be 0 (the catalog model's) or positive")
        if self.minutes < 0:
            raise ValueError("minutes must be 0 (no budget) or positive")
        if self.fft_weight < 0 or self.luma_weight < 0:
            raise ValueError("fft_weight and luma_weight must not be negative")
        if not 0 < self.teacher_weight <= 1:
            raise ValueError("teacher_weight must be in (0, 1]")
        if not 0 <= self.ema < 1:
            raise ValueError("ema must be in [0, 1)")
        if not self.val_folders:
            raise ValueError("val needs at least one folder")
        if self.data_weights and (len(self.data_weights) != len(self.data) or min(self.data_weights) <= 0):
            raise ValueError("data_weights needs one positive weight per data folder")
        if self.variants <= 0:
            raise ValueError("variants must be positive")

    @property
    def val_folders(self) -> tuple[str, ...]:
        return (self.val,) if isinstance(self.val, str) else self.val

    @property
    def val_name(self) -> str:
        """The validation sets by folder name, e.g. "Set5" or "Set5+Set14"."""
        return "+".join(Path(v).name for v in self.val_folders)


@dataclasses.dataclass(frozen=True)
class UpscaleConfig:
    """Everything a run needs besides its source and destination."""

    scale: int | None = None
    """Upscaling factor. With a model it is only checked against the model's (None: the model's);
    without one it picks ``safdn-x{scale}`` (None: x4)."""
    model: str = ""
    """Registered name or model file; empty picks ``safdn-x{scale}``."""
    device: str = "auto"
    precision: str = "auto"
    batch: int = 0
    """Frames per model call; 0: chosen from the frame size and free GPU memory (1 on the CPU)."""
    tile: int | None = None
    """Tile side in input pixels; 0: whole frames; None: automatic (tiles for large frames on the CPU)."""
    decoder: str = "auto"
    backend: str = "auto"
    """What executes the model: torch, onnxruntime, openvino; auto: the fastest installed for the device."""
    cuda_graphs: bool = False
    """Replay the model as a CUDA graph (CUDA only; ignored on the CPU)."""
    self_ensemble: bool = False
    """Average the model over the eight flips and rotations of each frame: ~0.1 dB more, 8x the compute."""
    encode: EncodeConfig = dataclasses.field(default_factory=EncodeConfig)
    overwrite: bool = False
    queue_size: int = 4
    deinterlace: str = "auto"
    """"auto": deinterlace (bwdif) what FFmpeg's idet finds interlaced; "off"; "bwdif" or "yadif": always."""
    field_rate: bool = False
    """Deinterlace to one frame per field (50i to 50p) instead of one per frame."""
    ivtc: bool = False
    """Undo 3:2 pulldown (fieldmatch + decimate): telecined 29.97 fps video back to its 23.976 film frames."""
    crop: str = ""
    """"" keeps the whole picture; "auto" cuts the black borders found across the file; "W:H:X:Y" cuts as given."""
    width: int | None = None
    """Output width; with `height` unset it follows the display aspect. Either makes square pixels."""
    height: int | None = None
    fit: str = "pad"
    """With both `width` and `height`: "pad" (black bars), "crop" (cut the overflow) or "stretch"."""
    square_pixels: bool = False
    """Resample a non-square-pixel (anamorphic) source to square pixels; otherwise its pixel aspect is kept."""
    reuse: str = "auto"
    """A frame that repeats the one last upscaled reuses its result: "exact" (bit-identical frames only),
    "auto" (also frames that differ from it by codec noise alone), "off"."""

    def __post_init__(self) -> None:
        from .io import DECODERS
        from .models import SCALE_RANGE
        from .models.runtimes import RUNTIMES
        from .upscaler import DEVICES, PRECISIONS

        low, high = SCALE_RANGE
        if self.scale is not None and not low <= self.scale <= high:
            raise ValueError(f"scale must be from {low} to {high}, got {self.scale}")
        for name, value, allowed in (("device", self.device, DEVICES), ("precision", self.precision, PRECISIONS),
                                     ("decoder", self.decoder, DECODERS), ("backend", self.backend, RUNTIMES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.batch < 0 or (self.tile is not None and self.tile < 0) or self.queue_size < 1:
            raise ValueError("queue_size must be >= 1, batch and tile >= 0")
        from .stages.deinterlace import DEINTERLACE_MODES
        from .stages.resize import Target

        if self.deinterlace not in DEINTERLACE_MODES:
            raise ValueError(f"deinterlace must be one of {', '.join(DEINTERLACE_MODES)}, got {self.deinterlace!r}")
        from .stages.reuse import REUSE_MODES

        if self.reuse not in REUSE_MODES:
            raise ValueError(f"reuse must be one of {', '.join(REUSE_MODES)}, got {self.reuse!r}")
        if self.ivtc and self.deinterlace in ("bwdif", "yadif"):
            raise ValueError("ivtc makes film frames progressive: it takes no deinterlacing method")
        Target(self.width, self.height, self.fit, self.square_pixels)  # type: ignore[arg-type]

    @property
    def model_name(self) -> str:
        from .models import DEFAULT_SCALE, default_model_name

        return self.model or default_model_name(self.scale or DEFAULT_SCALE)


@dataclasses.dataclass(frozen=True)
class UpscaleResult:
    """What one run did, with per-stage busy times (seconds spent working, not waiting)."""

    output: Path
    frames: int
    seconds: float
    decode_seconds: float
    upscale_seconds: float
    encode_seconds: float
    warnings: tuple[str, ...] = ()
    codec: str = ""
    """The video encoder used (what "auto" chose), or the image format written."""
    width: int = 0
    height: int = 0
    """The output's picture size, where the run reports it (images); 0 where it does not."""
    bits: int = 0
    """Bits per channel of an image output; 0 for videos."""
    picture: tuple[str, ...] = ()
    """What was found in and done to the picture besides the model (deinterlacing, cropping, resampling)."""
    reused: int = 0
    """Frames that repeated the one last upscaled and reused its result (`UpscaleConfig.reuse`)."""
    partial: int = 0
    """Frames that changed in part: only the box around the change was upscaled, the rest reused."""
    resumed: int = 0
    """Frames in segments an earlier, stopped run finished (`upscale(..., resume=True)`), kept as they were."""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def upscale_fps(self) -> float:
        return self.frames / self.upscale_seconds if self.upscale_seconds else 0.0


def settings_fingerprint(cfg: UpscaleConfig, upscaler: Upscaler | None = None) -> str:
    """What makes two outputs of one input differ: model, scale, encoder, tiling, precision."""
    fields = dataclasses.asdict(cfg)
    for volatile in ("overwrite", "queue_size", "batch", "device", "decoder", "cuda_graphs"):
        fields.pop(volatile)
    if upscaler is not None:
        fields["model_identity"] = upscaler.model.name
        fields["model_weights"] = upscaler.model.metadata.get("training", "")
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
