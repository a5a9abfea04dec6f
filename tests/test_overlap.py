"""The overlap scheduler's logic on the CPU (synchronous streams), and the GPU path where there is one."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch

from streamsr.frames import FrameBatch
from streamsr.overlap import CPUStreams, OverlapScheduler
from streamsr.upscaler import Upscaler


def _batches(count: int, n: int = 2) -> list[FrameBatch]:
    return [
        FrameBatch(torch.randint(0, 256, (n, 3, 6, 5), dtype=torch.uint8), torch.arange(k * n, k * n + n), Fraction(1, 30), k * n)
        for k in range(count)
    ]


def double(x: torch.Tensor) -> torch.Tensor:
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_order_pts_and_content_survive_ring_reuse(depth: int) -> None:
    batches = _batches(7)
    sched = OverlapScheduler(double, torch.device("cpu"), scale=2, depth=depth, streams=CPUStreams())
    out = list(sched.run(iter(batches)))
    assert [b.index_start for b in out] == [b.index_start for b in batches]
    for a, b in zip(batches, out, strict=True):
        assert torch.equal(b.pts, a.pts)
        assert torch.equal(b.data, double(a.data))  # not overwritten by a later batch in the same slot
    assert sched.max_in_flight == depth


def test_last_partial_batch_and_uint16() -> None:
    batches = _batches(2, n=3) + [FrameBatch(torch.randint(0, 65535, (1, 3, 6, 5)).to(torch.uint16), torch.tensor([99]), Fraction(1, 30), 6)]
    batches[:2] = [FrameBatch(b.data.to(torch.uint16), b.pts, b.time_base, b.index_start) for b in batches[:2]]
    out = list(OverlapScheduler(double, torch.device("cpu"), scale=2, depth=2).run(iter(batches)))
    assert [len(b) for b in out] == [3, 3, 1] and out[-1].data.dtype == torch.uint16
    assert torch.equal(out[-1].data, double(batches[-1].data))


def test_scheduler_matches_engine_on_cpu(tiny_weights: Path) -> None:
    up = Upscaler(str(tiny_weights), device="cpu", precision="fp32")
    batches = _batches(4)
    direct = [up.upscale_batch(b).data for b in batches]
    overlapped = [b.data for b in OverlapScheduler(up.upscale_frames, up.device, scale=2, depth=2).run(iter(batches))]
    for a, b in zip(direct, overlapped, strict=True):
        assert torch.equal(a, b)


@pytest.mark.needs_cuda
def test_cuda_overlap_equals_sequential(tiny_weights: Path) -> None:
    up = Upscaler(str(tiny_weights), device="cuda", precision="fp16")
    batches = _batches(6)
    sequential = [up.upscale_batch(b).data for b in batches]
    overlapped = [b.data for b in up.stream(iter(batches))]
    for a, b in zip(sequential, overlapped, strict=True):
        assert torch.equal(a, b)
