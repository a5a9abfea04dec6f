"""Media types: small validated dataclasses with units in their names (torchcodec style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import torch
from torch import Tensor


@dataclass(frozen=True)
class MasteringDisplay:
    """SMPTE ST 2086 mastering display colour volume (HDR10 static metadata).

    Chromaticities are CIE 1931 (x, y); luminances are in cd/m2.
    """

    red: tuple[float, float]
    green: tuple[float, float]
    blue: tuple[float, float]
    white_point: tuple[float, float]
    min_luminance: float
    max_luminance: float


@dataclass(frozen=True)
class ContentLightLevel:
    """CTA-861.3 content light level (HDR10 static metadata), in cd/m2."""

    max_cll: int
    """Brightest pixel of the whole stream."""
    max_fall: int
    """Brightest frame average of the whole stream."""


@dataclass(frozen=True)
class ColorInfo:
    """Colour signalling of a video stream, as FFmpeg's enum values (AVColor*)."""

    primaries: int = 2
    """AVColorPrimaries; 2 = unspecified, 1 = BT.709, 9 = BT.2020."""
    transfer: int = 2
    """AVColorTransferCharacteristic; 16 = PQ (SMPTE 2084), 18 = HLG (ARIB STD-B67)."""
    matrix: int = 2
    """AVColorSpace (YUV matrix); 1 = BT.709, 5/6 = BT.601, 9 = BT.2020 NCL."""
    range: int = 0
    """AVColorRange; 0 = unspecified, 1 = limited ("tv"), 2 = full ("pc")."""
    mastering_display: MasteringDisplay | None = None
    content_light: ContentLightLevel | None = None

    @property
    def has_hdr10_metadata(self) -> bool:
        """The source carries HDR10 static metadata (mastering display and/or light level)."""
        return self.mastering_display is not None or self.content_light is not None

    @property
    def full_range(self) -> bool:
        return self.range == 2

    def beyond_srgb(self) -> str | None:
        """The colours by name ("bt2020 / arib-std-b67 (HLG)") where an RGB image without a colour
        tag would be shown wrongly (wide gamut, HDR); None where plain RGB shows them right."""
        wide = self.primaries not in (1, 2, 5, 6)  # BT.709, unspecified, BT.601 PAL and NTSC
        hdr = self.transfer in (16, 18)  # PQ, HLG
        if not (wide or hdr):
            return None
        names = self.names()
        return f"{names['primaries']} / {names['transfer']}"

    def names(self) -> dict[str, str]:
        """Primaries, transfer, matrix and range by name, as `streamsr probe` shows them."""
        def name(table: dict[int, str], value: int) -> str:
            return table.get(value, f"unknown ({value})")

        return {"primaries": name(_PRIMARIES, self.primaries), "transfer": name(_TRANSFERS, self.transfer),
                "matrix": name(_MATRICES, self.matrix), "range": name(_RANGES, self.range)}


# FFmpeg's names of the AVColor* values (H.273), with the common name of the HDR transfers.
_PRIMARIES = {1: "bt709", 2: "unspecified", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
              9: "bt2020", 10: "smpte428", 11: "smpte431 (DCI-P3)", 12: "smpte432 (Display P3)", 22: "ebu3213"}
_TRANSFERS = {1: "bt709", 2: "unspecified", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
              11: "iec61966-2-4", 13: "iec61966-2-1 (sRGB)", 14: "bt2020-10", 15: "bt2020-12",
              16: "smpte2084 (PQ)", 17: "smpte428", 18: "arib-std-b67 (HLG)"}
_MATRICES = {0: "gbr (RGB)", 1: "bt709", 2: "unspecified", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
             8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 14: "ictcp"}
_RANGES = {0: "unspecified", 1: "limited", 2: "full"}


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a container, as `streamsr probe` lists it."""

    index: int
    kind: str
    """"video", "audio", "subtitle", "data" or "attachment"."""
    codec: str
    language: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about the source's video stream. Read once by `probe()`."""

    width: int
    """Coded width in pixels (before display rotation)."""
    height: int
    fps: Fraction
    """Average frame rate; informative only, output timing always comes from each frame's pts."""
    time_base: Fraction
    """Seconds per pts tick of the video stream."""
    num_frames_estimate: int
    """From the container header, or duration x fps; 0 when unknown. Never used for timing."""
    codec: str
    pix_fmt: str
    bit_depth: int
    color: ColorInfo = field(default_factory=ColorInfo)
    rotation_degrees: int = 0
    """Counter-clockwise display rotation from the display matrix (e.g. -90 for phone video)."""
    duration_seconds: float | None = None
    variable_frame_rate: bool = False
    """True when the first frames' durations differ by more than 1 ms (a hint, not a guarantee)."""
    container: str = ""
    streams: tuple[StreamInfo, ...] = ()
    sample_aspect_ratio: Fraction = Fraction(1)
    """Width of a pixel over its height as displayed (SAR; 32/27 for a 16:9 NTSC DVD); 1 when square or unknown."""
    field_order: str = "progressive"
    """As the stream declares it: "progressive", "tff", "bff" or "unknown" (declarations are often wrong;
    `stages.deinterlace.detect_interlacing` looks at the pictures)."""

    @property
    def display_aspect_ratio(self) -> Fraction:
        """Width over height of the picture as shown (DAR), before display rotation."""
        return Fraction(self.width, self.height) * self.sample_aspect_ratio

    @classmethod
    def of_frames(cls, width: int, height: int, *, fps: float, time_base: Fraction = Fraction(1, 1000)) -> VideoInfo:
        """Describe 8-bit frames made here rather than read from a file (a camera, a render): no
        source container and no other streams; 4:2:0 chroma, as cameras deliver and players expect."""
        return cls(width=width, height=height, fps=Fraction(fps).limit_denominator(1001), time_base=time_base,
                   num_frames_estimate=0, codec="rawvideo", pix_fmt="yuv420p", bit_depth=8)

    @property
    def has_audio(self) -> bool:
        return any(s.kind == "audio" for s in self.streams)


@dataclass(frozen=True)
class FrameBatch:
    """A batch of decoded RGB frames and their presentation times."""

    data: Tensor
    """(N, 3, H, W) RGB; uint8 for 8-bit sources, uint16 (0..65535) for deeper ones."""
    pts: Tensor
    """int64 presentation timestamps, shape (N,), in `time_base` units (on the CPU)."""
    time_base: Fraction
    """Seconds per pts tick."""
    index_start: int = 0
    """Index of the first frame of the batch in decode order."""

    def __post_init__(self) -> None:
        if self.data.ndim != 4 or self.data.shape[1] != 3:
            raise ValueError(f"data must be (N, 3, H, W), got {tuple(self.data.shape)}")
        if self.data.dtype not in (torch.uint8, torch.uint16):
            raise ValueError(f"data must be uint8 or uint16, got {self.data.dtype}")
        if self.pts.dtype != torch.int64 or self.pts.shape != (self.data.shape[0],):
            raise ValueError(f"pts must be int64 of shape ({self.data.shape[0]},), got {self.pts.dtype} {tuple(self.pts.shape)}")

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def max_value(self) -> int:
        """Full-scale value of `data` (255 or 65535)."""
        return 255 if self.data.dtype == torch.uint8 else 65535
