"""Self-ensemble distillation: a teacher's eight-orientation mean as (part of) the training target.

The shipped models score 0.06-0.14 dB higher through their self-ensemble than alone
(weights/README.md): their errors differ between the eight flips and rotations of an image. Training
towards the teacher's ensemble output, blended with the ground truth, asks one forward pass to come
closer to that mean. The ensemble costs eight model runs per pixel (x3 on this project's 2-core CPU:
~20 µs of wall time per HR pixel, 30 minutes for the training set), so it runs once per training image
before training, and its outputs are cached as uint8 (the precision of the ground truth) where every
run with the same teacher and images finds them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..models.weights import weights_digest
from ..upscaler import Upscaler


def ensemble_outputs(teacher: Upscaler, lr_images: Sequence[Tensor]) -> Iterator[Tensor]:
    """`teacher`'s output on each uint8 (3, h, w) LR image, as uint8 (3, h*s, w*s) on the CPU."""
    for lr in lr_images:
        sr = teacher(lr.unsqueeze(0).float().div_(255))[0]
        yield (sr * 255).round_().to(torch.uint8).cpu().contiguous()


def images_digest(images: Sequence[Tensor]) -> str:
    """A digest of the images' shapes and pixels: a cache made for other images is never reused."""
    h = hashlib.blake2b(digest_size=8)
    for img in images:
        h.update(repr(tuple(img.shape)).encode())
        h.update(img.contiguous().numpy().tobytes())
    return h.hexdigest()


def cached_ensemble_outputs(teacher_path: str | Path, lr_images: Sequence[Tensor], *, scale: int, cache_dir: Path,
                            device: torch.device, log: Callable[[str], None]) -> list[Tensor]:
    """`ensemble_outputs` of the weights at `teacher_path`, read from `cache_dir` when made before."""
    # The Upscaler's CPU tiling keeps large photographs in cache-sized pieces (whole 5 MP images ran
    # several times slower, most of it the kernel zeroing fresh pages for huge activations).
    teacher = Upscaler(teacher_path, device=str(device), precision="fp32", self_ensemble=True)
    if teacher.scale != scale:
        raise ValueError(f"teacher {teacher_path} is x{teacher.scale}, the model being trained is x{scale}")
    cache = cache_dir / f"ensemble-x{scale}-{weights_digest(teacher_path)}-{images_digest(lr_images)}.pt"
    if cache.exists():
        log(f"teacher outputs read from {cache}")
        return torch.load(cache, weights_only=True)
    log(f"teacher {teacher_path}: self-ensemble of {len(lr_images)} training images (once; cached in {cache_dir})")
    step = max(1, len(lr_images) // 10)
    outputs = []
    for output in ensemble_outputs(teacher, lr_images):
        outputs.append(output)
        if len(outputs) % step == 0:
            log(f"teacher: {len(outputs)} of {len(lr_images)} images")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".pt.part")
    torch.save(outputs, tmp)
    tmp.replace(cache)  # a run stopped mid-write leaves no cache that looks finished
    return outputs
