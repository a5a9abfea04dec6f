"""DALIDecoder: decode with NVIDIA DALI into FrameBatches. The only module importing DALI.

One pipeline serves two devices: ``mixed`` (NVDEC; frames arrive on the GPU), the production
path, and ``cpu`` (DALI's CPU decoder, which takes VP8, VP9 and MJPEG), a diagnostic mode that
runs the same code on a machine without CUDA. PyAV stays the CPU decoder of the product.

We use ``fn.experimental.inputs.video``: it streams a file fed as one buffer, in order, sequence
after sequence, so a long file decodes with constant memory (``fn.readers.video`` is made for
random access to training clips and refuses VFR). DALI gives no timestamps, so the pts come from
a PyAV demux of the same stream (packets only, nothing decoded), sorted into presentation order.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BackendUnavailableError, DecodeError
from ..frames import FrameBatch, VideoInfo
from .probe import open_input, probe

DALI_DEVICES = ("mixed", "cpu")
# Codecs each DALI device decodes (DALI 2.x): NVDEC through the mixed backend (MPEG-4 part 2
# and MJPEG left out), libavcodec's software decoders through the CPU backend.
DALI_CODECS = {
    "mixed": frozenset({"h264", "hevc", "av1", "vp9", "vp8"}),
    "cpu": frozenset({"vp8", "vp9", "mjpeg"}),
}


def _import_dali() -> Any:
    try:
        from nvidia.dali import fn, pipeline_def
    except ImportError as e:
        raise BackendUnavailableError("NVIDIA DALI is not installed; pip install 'streamsr[dali]'") from e
    return fn, pipeline_def


def default_dali_device() -> str:
    """``mixed`` (NVDEC) where CUDA is present, else DALI's CPU decoder."""
    return "mixed" if torch.cuda.is_available() else "cpu"


def dali_refusal(info: VideoInfo, device: str = "mixed") -> str | None:
    """Why DALI on `device` cannot decode this source, or None if it can."""
    if device not in DALI_DEVICES:
        raise ValueError(f"DALI device must be one of {', '.join(DALI_DEVICES)}, got {device!r}")
    if device == "mixed" and not torch.cuda.is_available():
        return "CUDA is not available"
    if info.variable_frame_rate:
        return "the video has a variable frame rate (DALI decodes constant-rate video only)"
    if info.bit_depth > 8:
        return f"the video is {info.bit_depth}-bit and DALI outputs 8-bit RGB"
    if info.codec not in DALI_CODECS[device]:
        if device == "cpu":
            return (f"CUDA is not available and DALI's CPU decoder takes only VP8, VP9 and MJPEG "
                    f"(this video is {info.codec})")
        return f"DALI cannot decode {info.codec} on the GPU"
    if info.rotation_degrees:
        return "the video carries a display rotation, which the PyAV path keeps exactly"
    return None


def presentation_pts(path: Path) -> list[int]:
    """Every video frame's pts in presentation order, from demuxed packets."""
    with open_input(path) as container:
        stream = container.streams.video[0]
        return sorted(p.pts for p in container.demux(stream) if p.size and p.pts is not None)


class DALIDecoder:
    """Decode with DALI; yields uint8 (N, 3, H, W) FrameBatches, on the GPU for ``device="mixed"``
    and in host memory for ``device="cpu"``.

    Raises `BackendUnavailableError` (with the reason) when DALI, CUDA or the source's format
    rule it out; `open_decoder("auto")` then falls back to PyAV. A decode failure part-way ends
    the iteration with `error` set; `frames_missing()` counts what did not decode.
    """

    def __init__(self, path: str | Path, *, batch: int = 8, info: VideoInfo | None = None,
                 device: str | None = None, device_id: int = 0) -> None:
        self.path = Path(path)
        self.info = info or probe(self.path)
        self.device = device or default_dali_device()
        reason = dali_refusal(self.info, self.device)
        if reason is not None:
            raise BackendUnavailableError(f"DALI decoder unavailable: {reason}")
        fn, pipeline_def = _import_dali()
        self.batch = batch
        self._pts = presentation_pts(self.path)
        self.frames_decoded = 0
        self.error: DecodeError | None = None
        on_gpu = self.device == "mixed"

        @pipeline_def(batch_size=1, num_threads=2, device_id=device_id if on_gpu else None, prefetch_queue_depth=2)
        def video_pipeline() -> Any:
            return fn.experimental.inputs.video(name="video", sequence_length=batch, device=self.device,
                                                last_sequence_policy="partial")

        self._pipe = video_pipeline()
        self._pipe.build()
        self._pipe.feed_input("video", [np.fromfile(self.path, dtype=np.uint8)])
        self._torch_device = torch.device("cuda", device_id) if on_gpu else torch.device("cpu")

    def _next_sequence(self) -> torch.Tensor | None:
        """The next decoded sequence as (N, 3, H, W) uint8, or None when DALI fails (`error` set)."""
        try:
            (sequences,) = self._pipe.run()
        except RuntimeError as e:
            # DALI wraps the cause in a multi-line report; its first line after the header says it.
            lines = [line.strip() for line in str(e).splitlines() if line.strip() and "Critical error" not in line]
            self.error = DecodeError(f"{self.path}: DALI stopped after {self.frames_decoded} frames "
                                     f"({lines[0] if lines else type(e).__name__})")
            return None
        # DALI owns this memory until the next run(): copy before yielding.
        frames = torch.as_tensor(sequences[0], device=self._torch_device) if self._torch_device.type == "cuda" \
            else torch.from_numpy(np.asarray(sequences[0]))
        return frames.permute(0, 3, 1, 2).clone()

    def __iter__(self) -> Iterator[FrameBatch]:
        tb = Fraction(self.info.time_base)
        total = len(self._pts)
        while self.frames_decoded < total:
            frames = self._next_sequence()
            if frames is None:
                return
            n = min(frames.shape[0], total - self.frames_decoded)
            pts = torch.tensor(self._pts[self.frames_decoded : self.frames_decoded + n], dtype=torch.int64)
            yield FrameBatch(data=frames[:n], pts=pts, time_base=tb, index_start=self.frames_decoded)
            self.frames_decoded += n

    def frames_missing(self) -> int:
        return max(0, len(self._pts) - self.frames_decoded)

    def close(self) -> None:
        self._pipe = None

    def __enter__(self) -> DALIDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
