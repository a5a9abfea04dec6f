"""Training surgery on SAFDN state dicts: growing a trained network without changing its output."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from ..models.archs.safdn import block_count


def grown_state(state: Mapping[str, Tensor], blocks: int) -> dict[str, Tensor]:
    """`state` with its body lengthened to `blocks` SAFD blocks, computing the same function.

    Each new block starts as a copy of the last trained one (trained filters are a better start
    than random ones), and the fuse 1x1 gets zero weights for their outputs, so the grown network
    gives exactly the old output until training moves those weights. The upsampler is untouched.
    """
    have = block_count(state)
    if blocks < have:
        raise ValueError(f"cannot shrink a {have}-block SAFDN to {blocks} blocks")
    grown = dict(state)
    last = f"body.{have - 1}."
    for i in range(have, blocks):
        grown.update({f"body.{i}.{k[len(last):]}": v.clone() for k, v in state.items() if k.startswith(last)})
    fuse = state["fuse.0.weight"]
    extra = fuse.new_zeros(fuse.shape[0], fuse.shape[1] // have * (blocks - have), *fuse.shape[2:])
    grown["fuse.0.weight"] = torch.cat((fuse, extra), dim=1)
    return grown
