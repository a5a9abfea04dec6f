"""DALIDecoder: GPU (NVDEC) decode into FrameBatches on the GPU. The only module importing DALI.

We use ``fn.experimental.inputs.video``: it streams a file fed as one buffer, in order, sequence
after sequence, so a long file decodes with constant GPU memory (``fn.readers.video`` is made for
random access to training clips and refuses VFR). DALI gives no timestamps, so the pts come from
a PyAV demux of the same stream (packets only, nothing decoded), sorted into presentation order.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from ..errors import BackendUnavailableError, DecodeError
from ..frames import FrameBatch, VideoInfo
from .probe import open_input, probe

# Codecs NVDEC decodes through DALI's mixed backend (DALI 2.x; MPEG-4 part 2 and MJPEG left out).
DALI_CODECS = frozenset({"h264", "hevc", "av1", "libdav1d", "vp9", "vp8"})


def _import_dali() -> Any:
    try:
        from nvidia.dali import fn, pipeline_def
    except ImportError as e:
        raise BackendUnavailableError("NVIDIA DALI is not installed; pip install 'streamsr[dali]'") from e
    return fn, pipeline_def


def dali_refusal(info: VideoInfo) -> str | None:
    """Why DALI cannot decode this source, or None if it can."""
    if not torch.cuda.is_available():
        return "CUDA is not available"
    if info.variable_frame_rate:
        return "the video has a variable frame rate (DALI decodes constant-rate video only)"
    if info.bit_depth > 8:
        return f"the video is {info.bit_depth}-bit and DALI outputs 8-bit RGB"
    if info.codec not in DALI_CODECS:
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
    """Decode on the GPU with DALI; yields uint8 (N, 3, H, W) CUDA FrameBatches.

    Raises `BackendUnavailableError` (with the reason) when DALI, CUDA or the source's format
    rule it out; `open_decoder("auto")` then falls back to PyAV.
    """

    def __init__(self, path: str | Path, *, batch: int = 8, info: VideoInfo | None = None, device_id: int = 0) -> None:
        self.path = Path(path)
        self.info = info or probe(self.path)
        reason = dali_refusal(self.info)
        if reason is not None:
            raise BackendUnavailableError(f"DALI decoder unavailable: {reason}")
        fn, pipeline_def = _import_dali()
        self.batch = batch
        self._pts = presentation_pts(self.path)
        self.frames_decoded = 0
        self.error: DecodeError | None = None

        @pipeline_def(batch_size=1, num_threads=2, device_id=device_id, prefetch_queue_depth=2)
        def video_pipeline() -> Any:
            return fn.experimental.inputs.video(name="video", sequence_length=batch, device="mixed", last_sequence_policy="partial")

        self._pipe = video_pipeline()
        self._pipe.build()
        import numpy as np

        self._pipe.feed_input("video", [np.fromfile(self.path, dtype=np.uint8)])
        self._device = torch.device("cuda", device_id)

    def __iter__(self) -> Iterator[FrameBatch]:
        tb = Fraction(self.info.time_base)
        total = len(self._pts)
        while self.frames_decoded < total:
            (sequences,) = self._pipe.run()
            # DALI owns this memory until the next run(): clone before yielding.
            frames = torch.as_tensor(sequences[0], device=self._device).permute(0, 3, 1, 2).clone()
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
