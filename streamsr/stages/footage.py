"""The footage people upscale: what a run does to the picture before and after the model.

`plan_picture` decides, once per source, the filters on the decoded picture (deinterlacing or
inverse telecine, then cropping) and `Footage.shaped` the resampling after the model (a target
size, square pixels). A `Footage` is plain data, so a segment shipped to another process or
machine runs the same steps; it makes fresh filters for each decoder (`filters`) and the stages
after the model (`after`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import UpscaleConfig
from ..errors import ConfigError
from ..frames import FrameBatch, VideoInfo
from ..io.filters import FilterChain
from .crop import Crop, detect_borders
from .deinterlace import Deinterlace, Interlacing, InverseTelecine, detect_interlacing, idet
from .resize import Resize, Shape, Target, choose_scale, output_info, plan_shape

PictureStep = Deinterlace | InverseTelecine | Crop

def chain_for(steps: Sequence[PictureStep], info: VideoInfo) -> tuple[FilterChain | None, VideoInfo]:
    """The `FilterChain` of `steps` (in order) and the description of the frames it gives."""
    filters: list[str] = []
    out = info
    for step in steps:
        filters += step.filters
        out = step.reshape(out)
    if not filters:
        return None, info
    return FilterChain(filters, info, out.time_base), out


INTERLACED_HEIGHTS = (480, 1088)
"""Interlaced video comes as 480i, 576i or 1080i: under `auto`, only sources of these heights are
looked at with `idet`; others are judged by their flags (idet takes the steep vertical gradients
of small synthetic pictures for combing)."""


@dataclass(frozen=True)
class Footage:
    """The steps of one source's picture: `steps` on the decoded picture, the model at `scale`
    (set by `shaped`), then `shape`. `notes` say what was found and done, for the run's report."""

    source: VideoInfo
    steps: tuple[PictureStep, ...] = ()
    target: Target = field(default_factory=Target)
    notes: tuple[str, ...] = ()
    shape: Shape | None = None

    @property
    def picture(self) -> VideoInfo:
        """What the model gets: the source after the steps."""
        return chain_for(self.steps, self.source)[1]

    def filters(self) -> FilterChain | None:
        """A fresh chain for one decoder (a chain holds its filters' state); None: no step."""
        return chain_for(self.steps, self.source)[0]

    def scale_for(self, cfg: UpscaleConfig, scales: tuple[int, ...]) -> int | None:
        """The model scale a target size needs when the run names neither a model nor a scale."""
        if not self.target.sized or cfg.model or cfg.scale is not None:
            return cfg.scale
        return choose_scale(self.picture, self.target, scales)

    def shaped(self, scale: int) -> Footage:
        """This footage with its output shape for a model of `scale`."""
        picture = self.picture
        shape = plan_shape(picture, self.target, scale)
        notes = self.notes
        if shape.resized:
            notes += (shape.describe((picture.width * scale, picture.height * scale)),)
        return Footage(self.source, self.steps, self.target, notes, shape)

    def after(self) -> list[Callable[[Iterator[FrameBatch]], Iterator[FrameBatch]]]:
        """The stages after the model."""
        if self.shape is None or not self.shape.resized:
            return []
        return [Resize(self.shape)]

    def output(self, scale: int) -> VideoInfo:
        """The description of the frames the sink gets."""
        shape = self.shape or plan_shape(self.picture, self.target, scale)
        return output_info(self.picture, shape)


def _deinterlace_step(cfg: UpscaleConfig, info: VideoInfo, found: Interlacing | None,
                      warn: Callable[[str], None]) -> tuple[PictureStep | None, str | None]:
    """The step for interlacing (none for a progressive source under auto) and what was found."""
    order = found.order if found is not None and found.interlaced else info.field_order
    order = order if order in ("tff", "bff") else "tff"
    if cfg.ivtc:
        return InverseTelecine(order), found.describe() if found is not None else None
    if cfg.deinterlace == "off":
        return None, None
    if cfg.deinterlace == "auto":
        interlaced = found.interlaced if found is not None else info.field_order in ("tff", "bff")
        if not interlaced:
            return None, None
        if found is not None and found.telecined:
            warn(f"the video looks telecined ({found.describe()}): it is deinterlaced; "
                 "--ivtc gives back its film frames instead")
    method = "bwdif" if cfg.deinterlace == "auto" else cfg.deinterlace
    return Deinterlace(method, order, cfg.field_rate), found.describe() if found is not None else None


def plan_picture(src: str | Path | None, info: VideoInfo, cfg: UpscaleConfig, warn: Callable[[str], None],
                 first_frames: list | None = None) -> Footage:
    """The picture steps `cfg` asks for, on the source `src` (a file, looked at with `idet` and
    sampled for borders) or on a pipe or URL read once (`src` None: its `first_frames` only).

    Raises:
        ConfigError: a crop that does not fit, or `--crop auto` on a source that cannot be sampled.
    """
    found = None
    look = cfg.ivtc or cfg.deinterlace in ("bwdif", "yadif") or (
        cfg.deinterlace == "auto" and INTERLACED_HEIGHTS[0] <= info.height <= INTERLACED_HEIGHTS[1])
    if look and src is not None:
        found = detect_interlacing(src, info)
    elif look and first_frames:
        found = idet(iter(first_frames), info)
    if found is not None and not found.decided:
        found = None  # too few frames for a verdict: the declared field order decides
    steps: list[PictureStep] = []
    notes: list[str] = []
    step, finding = _deinterlace_step(cfg, info, found, warn)
    if step is not None:
        steps.append(step)
        notes.append(step.describe() + (f"; {finding}" if finding else ""))
    if cfg.crop:
        if cfg.crop == "auto":
            if src is None:
                raise ConfigError("--crop auto samples frames across a file; for a pipe or URL give W:H:X:Y")
            crop = detect_borders(src, info)
            if crop is None:
                notes.append("no black borders found")
        else:
            crop = Crop.parse(cfg.crop)
            crop.check(info)
        if crop is not None:
            steps.append(crop)
            notes.append(crop.describe())
    # A target size is what the viewer sees: for a picture shown turned a quarter, its sides swap.
    sideways = round(info.rotation_degrees / 90) % 2 == 1
    width, height = (cfg.height, cfg.width) if sideways else (cfg.width, cfg.height)
    target = Target(width, height, cfg.fit, cfg.square_pixels)  # type: ignore[arg-type]
    return Footage(info, tuple(steps), target, tuple(notes))


__all__ = ["Footage", "PictureStep", "plan_picture"]
