"""Training pairs: HR images decoded once into memory, LR made once, random aligned crops."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..config import SAMPLINGS, Sampling
from ..io.images import read_image
from .degrade import Compression, bicubic_lr, compressed_lr, modcrop

IMAGE_SUFFIXES = {".png", ".webp", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"}


def find_images(folders: Iterable[str | Path]) -> list[Path]:
    """Image files below `folders`, sorted for reproducibility."""
    found: list[Path] = []
    for folder in folders:
        found += [p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found)


class PairBank:
    """HR/LR image pairs held in memory as uint8, sampled as random aligned patch batches.

    Decoding and bicubic downscaling happen once per image, so sampling is only slicing;
    the model never waits on the data. Images are drawn with probability proportional to their
    area, so a few large photographs are not under-sampled against many small ones.

    With `crop_draws` > 1, each sample draws that many crop positions in its image and keeps the
    one with the most detail (mean absolute LR gradient): flat sky and walls, which a trained model
    already gets right, give way to the edges and textures where PSNR is lost. 1 draws uniformly.

    With `sampling="folder"`, each folder (an image's parent directory) gets an equal share of the
    samples, and its images share it by area. `groups` and `group_weights` go further: image i
    belongs to group ``groups[i]`` (a data source: photographs, line art, ...), each group gets
    its weight's share of the samples, and its images share that by area.

    With `compression`, each image also gets `variants` LR versions passed through a video codec
    (drawn once, at load); a sample takes the clean LR or one of those with equal chance.
    """

    def __init__(self, paths: Iterable[Path], *, scale: int, patch: int, seed: int = 0, crop_draws: int = 1,
                 sampling: Sampling = "area", groups: Sequence[int] | None = None,
                 group_weights: Sequence[float] | None = None, compression: Compression | None = None,
                 variants: int = 4) -> None:
        if crop_draws < 1:
            raise ValueError("crop_draws must be at least 1")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
        self.scale, self.patch, self.crop_draws = scale, patch, crop_draws
        paths = list(paths)
        if groups is not None and (len(groups) != len(paths) or group_weights is None):
            raise ValueError("groups needs one entry per image, and group_weights with it")
        self._rng = np.random.default_rng(seed)
        self.hr: list[Tensor] = []
        self.lr: list[list[Tensor]] = []
        """Per image: the clean LR, then its compressed variants."""
        keys: list[object] = []
        for i, path in enumerate(paths):
            hr = modcrop(read_image(path), scale)
            if min(hr.shape[-2:]) < patch * scale:
                continue
            lr = bicubic_lr(hr, scale)
            self.hr.append(hr)
            self.lr.append([lr, *(compressed_lr(lr, compression, self._rng) for _ in range(variants if compression else 0))])
            keys.append(groups[i] if groups is not None else path.parent)
        if not self.hr:
            raise ValueError(f"no training image is at least {patch * scale} px on its short side")
        area = np.array([t.shape[-1] * t.shape[-2] for t in self.hr], dtype=np.float64)
        if sampling == "folder" or groups is not None:
            key_area: dict[object, float] = {}
            for a, key in zip(area, keys, strict=True):
                key_area[key] = key_area.get(key, 0.0) + a
            area = area / np.array([key_area[k] for k in keys])
            if groups is not None and group_weights is not None:
                area *= np.array([group_weights[int(k)] for k in keys])  # type: ignore[call-overload]
        self._p = area / area.sum()

    def blend_targets(self, teacher: list[Tensor], weight: float) -> None:
        """Train towards (1 - weight) * HR + weight * `teacher` (uint8 images the size of the HR ones)."""
        if len(teacher) != len(self.hr) or any(t.shape != h.shape for t, h in zip(teacher, self.hr, strict=False)):
            raise ValueError("teacher outputs must match the training images one to one, in shape too")
        if not 0 < weight <= 1:
            raise ValueError("the teacher's weight must be in (0, 1]")
        self.hr = [torch.lerp(h.float(), t.float(), weight).round_().to(torch.uint8) for h, t in zip(self.hr, teacher, strict=True)]

    def __len__(self) -> int:
        return len(self.hr)

    def set_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def sample(self, batch: int) -> tuple[Tensor, Tensor]:
        """(lr, hr) float32 batches in [0, 1]: (B, 3, p, p) and (B, 3, p*s, p*s)."""
        s, p = self.scale, self.patch
        lrs, hrs = [], []
        for i in self._rng.choice(len(self.hr), size=batch, p=self._p):
            variants = self.lr[i]
            lr_img, hr_img = variants[int(self._rng.integers(len(variants)))] if len(variants) > 1 else variants[0], self.hr[i]
            y, x = self._crop_position(lr_img)
            lr = lr_img[:, y : y + p, x : x + p]
            hr = hr_img[:, y * s : (y + p) * s, x * s : (x + p) * s]
            flip_h, flip_v, rot = self._rng.integers(0, 2, size=3)
            if flip_h:
                lr, hr = lr.flip(-1), hr.flip(-1)
            if flip_v:
                lr, hr = lr.flip(-2), hr.flip(-2)
            if rot:
                lr, hr = lr.transpose(-1, -2), hr.transpose(-1, -2)
            lrs.append(lr)
            hrs.append(hr)
        return torch.stack(lrs).float().div_(255), torch.stack(hrs).float().div_(255)

    def _crop_position(self, lr_img: Tensor) -> tuple[int, int]:
        """Top-left corner (LR pixels) of a crop: the most detailed of `crop_draws` uniform draws."""
        p = self.patch
        best, best_detail = (0, 0), -1.0
        for _ in range(self.crop_draws):
            y = int(self._rng.integers(0, lr_img.shape[1] - p + 1))
            x = int(self._rng.integers(0, lr_img.shape[2] - p + 1))
            if self.crop_draws == 1:  # uniform: nothing to compare, and the draws of earlier runs
                return y, x
            detail = patch_detail(lr_img[:, y : y + p, x : x + p])
            if detail > best_detail:
                best, best_detail = (y, x), detail
        return best


def patch_detail(patch: Tensor) -> float:
    """Mean absolute difference between neighbouring pixels (both directions, all channels)."""
    f = patch.float()
    return float((f[..., 1:, :] - f[..., :-1, :]).abs().mean() + (f[..., :, 1:] - f[..., :, :-1]).abs().mean())
