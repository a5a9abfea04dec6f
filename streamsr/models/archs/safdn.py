"""SAFDN: self-attention feature distillation network.

Our reading of the paper, whose abstract is all that is public:

* The backbone works in LR space: a 3x3 head, ``blocks`` SAFD blocks whose outputs are
  concatenated and fused by a 1x1, a 3x3, a global residual, and a PixelShuffle upsampler.
* A SAFD block distils features (IMDN/RFDN/BSRN style): at each of three stages a 1x1 branch
  keeps ``feat // 2`` channels while a blueprint-separable 3x3 (1x1 then depthwise 3x3) refines
  the rest; the distilled parts are concatenated and fused by a 1x1.
* Then a global self-attention whose feed-forward path first compresses the channels, then
  computes queries, keys and values with asymmetric depthwise convolutions (1xk then kx1); the
  attention is channel-wise ("transposed"), so its cost is linear in the number of pixels.
  q and k are L2-normalised over the pixels and scaled by a learned temperature, which keeps the
  logits in [-t, t] and the block fp16-safe; the Gram product is summed in fp32.
* The attention's statistics (the normalised Gram matrix) are gathered over windows of ``window``
  pixels, the LR patch the weights were trained on: every training patch fits in one window, so
  training computes the global attention above, while a large frame no longer pools statistics
  over far more pixels (and far more varied content) than training ever showed the weights.
  Windows of 2x2 cells of ``window // 2`` pixels sit on a grid and each pixel blends the attention
  of the four windows around it bilinearly, so the windows leave no seams (test-time local
  statistics, as TLC does for global pooling: Chu et al., ECCV 2022; docs/benchmarks.md).
* Last a spatial attention: a fraction of the channels is shifted by one pixel up, down, left and
  right (zero fill, implemented as slicing so it costs no FLOPs), then an ESA-style gate
  (reduce, context, expand, sigmoid) multiplies the block's features.

Our choice for the spatial gate: ESA's strided conv and strided max-pool are replaced by a
stride-1 dilated depthwise context, so the network stays translation-equivariant away from the
global attention and tiles line up with the full frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import register_arch


def chained_pointwise(second: nn.Conv2d, first: nn.Conv2d) -> nn.Conv2d:
    """One 1x1 convolution equal to ``second(first(x))`` for two 1x1 convolutions (exact up to
    rounding: a product of two linear maps is one). Its parameters are ordinary tensors even when
    called in inference mode, so the fused network can still be traced for export."""
    with torch.inference_mode(False), torch.no_grad():
        return _chained_pointwise(second, first)


def _chained_pointwise(second: nn.Conv2d, first: nn.Conv2d) -> nn.Conv2d:
    w1, w2 = first.weight.detach()[:, :, 0, 0], second.weight.detach()[:, :, 0, 0]
    bias = w2 @ first.bias.detach() if first.bias is not None else torch.zeros(w2.shape[0], dtype=w2.dtype)
    if second.bias is not None:
        bias = bias + second.bias.detach()
    fused = nn.Conv2d(w1.shape[1], w2.shape[0], 1)
    fused.weight.data.copy_((w2 @ w1)[:, :, None, None])
    fused.bias.data.copy_(bias)
    return fused.to(first.weight.device)


class BSConv(nn.Module):
    """Blueprint-separable 3x3 convolution: pointwise mixing, then a depthwise 3x3."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.pw = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.dw = nn.Conv2d(out_ch, out_ch, 3, padding=1, groups=out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.dw(self.pw(x))


def shift_channels(x: Tensor, fraction: float, pixels: int = 1) -> Tensor:
    """Shift four groups of ``fraction * C`` channels up, down, left and right (zero fill).

    Slicing and padding, not a gather: the same result at no FLOPs and no index tensors.
    """
    c = x.shape[1]
    g = max(1, int(c * fraction))
    if 4 * g > c or pixels <= 0:
        return x
    p = pixels
    up = F.pad(x[:, 0:g, p:, :], (0, 0, 0, p))
    down = F.pad(x[:, g : 2 * g, :-p, :], (0, 0, p, 0))
    left = F.pad(x[:, 2 * g : 3 * g, :, p:], (0, p, 0, 0))
    right = F.pad(x[:, 3 * g : 4 * g, :, :-p], (p, 0, 0, 0))
    return torch.cat((up, down, left, right, x[:, 4 * g :]), dim=1)


class ShiftSpatialAttention(nn.Module):
    """Spatial attention with partial channel shift (ESA-style gate, stride-1 context)."""

    def __init__(self, feat: int, *, reduced: int, shift_fraction: float) -> None:
        super().__init__()
        self.shift_fraction = shift_fraction
        self.reduce = nn.Conv2d(feat, reduced, 1)
        self.context = nn.Sequential(
            nn.Conv2d(reduced, reduced, 3, padding=2, dilation=2, groups=reduced),
            nn.LeakyReLU(0.05, inplace=True),
            nn.Conv2d(reduced, reduced, 3, padding=4, dilation=4, groups=reduced),
        )
        self.local = nn.Conv2d(reduced, reduced, 1)
        self.expand = nn.Conv2d(reduced, feat, 1)

    def forward(self, x: Tensor) -> Tensor:
        r = self.reduce(shift_channels(x, self.shift_fraction))
        gate = torch.sigmoid(self.expand(self.context(r) + self.local(r)))
        return x * gate


def fuse_concatenation(fuse: nn.Conv2d, parts: Iterable[Tensor], *, part_by_part: bool) -> Tensor:
    """``fuse(torch.cat(list(parts), dim=1))`` for a 1x1 `fuse` and parts of equal channels.

    `part_by_part` sums each part's share of the 1x1 (its slice of the input channels; the bias
    once) as `parts` yields them, so neither the parts nor their concatenated copy are held: an
    SAFDN's final fuse otherwise keeps every block's output twice over. That is the GPU's way,
    where memory caps the batch. On the CPU, where tiles cap the memory, the eight thin 1x1s and
    their sums ran slower than one concatenation (x2 in bf16: +5%; docs/benchmarks.md).
    """
    if not part_by_part:
        return fuse(torch.cat(list(parts), dim=1))
    fused = None
    for i, part in enumerate(parts):
        c = part.shape[1]
        share = F.conv2d(part, fuse.weight[:, i * c : (i + 1) * c], fuse.bias if i == 0 else None)
        fused = share if fused is None else fused.add_(share)
    if fused is None:
        raise ValueError("nothing to fuse")
    return fused


TRAINING_PATCH = 48
"""The LR patch side every shipped SAFDN was trained on: the default attention window."""

GRAM_CHUNK = 4096
"""Pixels per slice of the attention's Gram product on CUDA (see `gram`)."""


def gram(q: Tensor, k: Tensor, chunk: int = GRAM_CHUNK) -> Tensor:
    """``q @ k.transpose(-2, -1)``, its sum over the pixels (the last axis) taken in slices of
    ``chunk`` pixels, then added.

    The product has d x d outputs for each image and head, and sums over every pixel of the frame.
    As one matrix product a GPU gives it a handful of thread blocks: on an H200 it took 46% of an x3
    forward over 4 frames of 480x270 (docs/benchmarks.md). Slices make the pixels a batch that the
    GPU spreads over all its cores. A CPU's product needs no such help, so the model slices on CUDA only.
    """
    pixels = q.shape[-1]
    if pixels <= chunk:
        return q @ k.transpose(-2, -1)
    pad = -pixels % chunk
    q, k = F.pad(q, (0, pad)), F.pad(k, (0, pad))  # zero pixels add nothing to the sums
    q = q.unflatten(-1, (-1, chunk)).transpose(-3, -2)  # (..., slices, d, chunk)
    k = k.unflatten(-1, (-1, chunk)).transpose(-3, -2)
    return (q @ k.transpose(-2, -1)).sum(-3)


def check_window(window: int) -> None:
    """Refuse a window that is not 0 (global) or an even side (two cells of ``window // 2``)."""
    if window < 0 or window % 2:
        raise ValueError(f"window must be 0 (global) or an even number of pixels, got {window}")


def _window_axis(length: int, cell: int, device: torch.device) -> tuple[int, Tensor, Tensor]:
    """Cut one axis into cells of ``cell`` pixels (the last one padded).

    Returns the number of cells; for each of the cells + 1 grid vertices, the first of the two
    cells its window covers (kept inside the axis, so border windows are shifted, never cut
    short); and for each (padded) pixel the bilinear weight of the vertex after it.
    """
    # Ceiling division on non-negative operands: the ONNX exporters turn floor division of a
    # negative size into a truncating one.
    cells = (length + cell - 1) // cell
    first = (torch.arange(cells + 1, device=device) - 1).clamp(0, max(cells - 2, 0))
    after = (torch.arange(cell, device=device) + 0.5) / cell
    return cells, first, after


def _window_sums(x: Tensor, first_h: Tensor, first_w: Tensor) -> Tensor:
    """Per-cell sums (n, heads, ch, cw, ...) -> each grid vertex's window sum (2x2 cells or fewer)."""
    for dim, first in ((2, first_h), (3, first_w)):
        if x.shape[dim] > 1:
            x = x.narrow(dim, 0, x.shape[dim] - 1) + x.narrow(dim, 1, x.shape[dim] - 1)
        x = x.index_select(dim, first)
    return x


def windowed_attention(q: Tensor, k: Tensor, v: Tensor, temperature: Tensor, window: int) -> Tensor:
    """Channel-wise attention whose statistics come from windows of ``window`` x ``window`` pixels.

    q, k, v are (n, heads, d, h, w); returns the attended values as (n, heads * d, h, w). The frame
    is cut into cells of ``window // 2``; the window at each cell corner covers the 2x2 cells around
    it, and its attention is the global one computed over those pixels alone (q and k L2-normalised
    over them, the d x d Gram scaled by the temperature, softmax). Each pixel applies the bilinear
    blend of the attention of its cell's four corners. Cost: the Gram products once over the frame
    (cell by cell), the attention applied twice.
    """
    n, heads, d, h, w = q.shape
    cell = window // 2
    cells_h, first_h, after_h = _window_axis(h, cell, q.device)
    cells_w, first_w, after_w = _window_axis(w, cell, q.device)
    pad = (0, cells_w * cell - w, 0, cells_h * cell - h)  # zero pixels add nothing to the sums

    def by_cell(x: Tensor) -> Tensor:  # (n, heads, d, h, w) -> (n, heads, cells h, cells w, d, cell * cell)
        x = F.pad(x, pad).reshape(n, heads, d, cells_h, cell, cells_w, cell)
        return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(n, heads, cells_h, cells_w, d, cell * cell)

    # Sums in fp32, as the global attention does.
    qc, kc = by_cell(q.float()), by_cell(k.float())
    gram_sums = _window_sums(qc @ kc.transpose(-2, -1), first_h, first_w)
    q_norms = _window_sums(qc.square().sum(-1), first_h, first_w).clamp_min(1e-24).sqrt()
    k_norms = _window_sums(kc.square().sum(-1), first_h, first_w).clamp_min(1e-24).sqrt()
    logits = gram_sums / (q_norms[..., :, None] * k_norms[..., None, :])
    attn = torch.softmax(logits * temperature.float().reshape(1, heads, 1, 1, 1, 1), dim=-1).to(v.dtype)

    # Blend along x first: each column of a cell gets its own mix of the left and right corners'
    # attention, applied to that column's values; then the two rows of corners mix along y.
    # Half the products of applying the four corners' attention to every pixel, and the same sum.
    by_column = F.pad(v, pad).reshape(n, heads, d, cells_h, cell, cells_w, cell).permute(0, 1, 3, 5, 6, 2, 4)
    wx = after_w.to(v.dtype)[:, None, None]  # (cell x, 1, 1)
    wy = after_h.to(v.dtype)  # (cell y,)

    def attended_by_row(dy: int) -> Tensor:  # the upper (0) or lower (1) corners: (n, heads, ch, cw, cell x, d, cell y)
        corners = attn[:, :, dy : dy + cells_h, :, None]  # (n, heads, ch, cw + 1, 1, d, d)
        return torch.lerp(corners[:, :, :, :-1], corners[:, :, :, 1:], wx) @ by_column

    out = attended_by_row(0).mul_(1 - wy).add_(attended_by_row(1).mul_(wy))
    out = out.permute(0, 1, 5, 2, 6, 3, 4).reshape(n, heads * d, cells_h * cell, cells_w * cell)
    return out[:, :, :h, :w]


class ACSelfAttention(nn.Module):
    """Channel-compressing asymmetric-convolution path computing channel-wise self-attention.

    Cost is O(HW * d^2) with d = feat // compress, i.e. linear in the number of pixels. Inputs
    larger than ``window`` (0: no limit) gather the attention's statistics window by window
    (`windowed_attention`).
    """

    def __init__(self, feat: int, *, compress: int, kernel: int, heads: int, window: int = 0) -> None:
        super().__init__()
        hidden = feat // compress
        if hidden % heads:
            raise ValueError(f"feat // compress ({hidden}) must be divisible by heads ({heads})")
        check_window(window)
        self.heads = heads
        self.window = window
        self.sliced_sums = False
        self.compress = nn.Conv2d(feat, hidden, 1)
        self.qkv = nn.Conv2d(hidden, 3 * hidden, 1, bias=False)
        pad = kernel // 2
        self.asym_h = nn.Conv2d(3 * hidden, 3 * hidden, (1, kernel), padding=(0, pad), groups=3 * hidden)
        self.asym_v = nn.Conv2d(3 * hidden, 3 * hidden, (kernel, 1), padding=(pad, 0), groups=3 * hidden)
        self.temperature = nn.Parameter(torch.full((heads, 1, 1), 4.0))
        self.project = nn.Conv2d(hidden, feat, 1)

    def reparameterize(self) -> None:
        """Fold the channel compression into the q/k/v projection: one 1x1 instead of two in a row."""
        if isinstance(self.qkv, nn.Conv2d):
            self.compress = chained_pointwise(self.qkv, self.compress)
            self.qkv = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        qkv = self.asym_v(F.leaky_relu(self.asym_h(self.qkv(self.compress(x))), 0.05))
        if self.window and max(h, w) > self.window:
            q, k, v = qkv.reshape(n, 3, self.heads, -1, h, w).unbind(1)
            return x + self.project(windowed_attention(q, k, v, self.temperature, self.window))
        q, k, v = qkv.reshape(n, 3, self.heads, -1, h * w).unbind(1)
        # Gram matrix and softmax in fp32: a sum over all pixels overflows fp16's precision.
        q = F.normalize(q.float(), dim=-1)
        k = F.normalize(k.float(), dim=-1)
        logits = gram(q, k) if self.sliced_sums else q @ k.transpose(-2, -1)
        attn = torch.softmax(logits * self.temperature.float(), dim=-1)
        out = (attn.to(v.dtype) @ v).reshape(n, -1, h, w)
        return x + self.project(out)


class SAFDBlock(nn.Module):
    """Feature distillation, then channel attention (statistics per window), then shifted spatial attention."""

    def __init__(
        self, feat: int, *, compress: int, kernel: int, heads: int, esa: int, shift_fraction: float, window: int = 0
    ) -> None:
        super().__init__()
        distilled = feat // 2
        self.distil = nn.ModuleList(nn.Conv2d(feat, distilled, 1) for _ in range(3))
        self.refine = nn.ModuleList(BSConv(feat, feat) for _ in range(3))
        self.last = BSConv(feat, distilled)
        self.fuse = nn.Conv2d(4 * distilled, feat, 1)
        self.act = nn.LeakyReLU(0.05, inplace=True)
        self.attention = ACSelfAttention(feat, compress=compress, kernel=kernel, heads=heads, window=window)
        self.spatial = ShiftSpatialAttention(feat, reduced=esa, shift_fraction=shift_fraction)
        self.sliced_sums = False

    def forward(self, x: Tensor) -> Tensor:
        def distilled() -> Iterator[Tensor]:
            y = x
            for distil, refine in zip(self.distil, self.refine, strict=True):
                yield self.act(distil(y))
                y = self.act(refine(y) + y)
            yield self.act(self.last(y))

        fused = fuse_concatenation(self.fuse, distilled(), part_by_part=self.sliced_sums)
        y = self.spatial(self.attention(fused))
        return x + y


class SAFDN(nn.Module):
    """Self-attention feature distillation network for single-image super-resolution.

    Input (N, in_ch, H, W) float in [0, 1]; output (N, in_ch, H*scale, W*scale), not clamped
    (clamping is the Upscaler's job). Any H, W >= 1 is accepted. ``window``: the side of the
    windows the attention gathers its statistics over (0: the whole input); the default is the
    patch the shipped weights were trained on.
    """

    def __init__(
        self,
        *,
        in_ch: int = 3,
        feat: int = 56,
        blocks: int = 8,
        scale: int = 4,
        compress: int = 2,
        kernel: int = 3,
        heads: int = 1,
        esa: int = 16,
        shift_fraction: float = 0.125,
        window: int = TRAINING_PATCH,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 3, 4, 8):
            raise ValueError(f"scale must be one of 1, 2, 3, 4, 8, got {scale}")
        self.hparams: dict[str, int | float] = {
            "in_ch": in_ch,
            "feat": feat,
            "blocks": blocks,
            "scale": scale,
            "compress": compress,
            "kernel": kernel,
            "heads": heads,
            "esa": esa,
            "shift_fraction": shift_fraction,
            "window": window,
        }
        self.scale = scale
        self.sliced_sums = False
        """Take the wide sums (the fuses' concatenations, the attention's Gram product) in slices:
        memory and parallelism a GPU needs, overhead a CPU does not (`use_sliced_sums`)."""
        self.head = nn.Conv2d(in_ch, feat, 3, padding=1)
        self.body = nn.ModuleList(
            SAFDBlock(
                feat,
                compress=compress,
                kernel=kernel,
                heads=heads,
                esa=esa,
                shift_fraction=shift_fraction,
                window=window,
            )
            for _ in range(blocks)
        )
        self.fuse = nn.Sequential(nn.Conv2d(feat * blocks, feat, 1), nn.LeakyReLU(0.05, inplace=True))
        self.tail = nn.Conv2d(feat, feat, 3, padding=1)
        self.upsample = nn.Sequential(nn.Conv2d(feat, in_ch * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        # Start as plain bilinear upscaling: training refines a sane image instead of noise.
        nn.init.zeros_(self.upsample[0].weight)
        nn.init.zeros_(self.upsample[0].bias)

    def reparameterize(self) -> SAFDN:
        """Fuse, in place and exactly (to rounding), what is linear in sequence: each attention's
        compression and q/k/v projection become one 1x1 (`ACSelfAttention.reparameterize`). For
        inference: the outputs stay, the state-dict layout does not, so train the unfused network.
        (Stacking each stage's two 1x1s that read the same input was slower: docs/benchmarks.md.)"""
        for block in self.body:
            block.attention.reparameterize()
        return self

    def use_sliced_sums(self, enabled: bool) -> None:
        """Fuse concatenations part by part and slice the attention's Gram product (`fuse_concatenation`,
        `gram`): the same sums, as the Upscaler chooses for its device (on CUDA)."""
        for module in self.modules():
            if hasattr(module, "sliced_sums"):
                module.sliced_sums = enabled

    @property
    def graph_min_side(self) -> int:
        """Smallest input side an exported (traced) graph of this network accepts: tracing keeps
        the windowed attention's branch for inputs of at least two cells per side."""
        window = int(self.hparams["window"])
        return window // 2 + 1 if window else 0

    def set_attention_window(self, window: int) -> None:
        """Gather every block's attention statistics over ``window`` pixels (0: the whole input)."""
        check_window(window)
        for block in self.body:
            block.attention.window = window
        self.hparams["window"] = window

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.head(x)

        def block_outputs() -> Iterator[Tensor]:
            y = shallow
            for block in self.body:
                y = block(y)
                yield y

        fused = fuse_concatenation(self.fuse[0], block_outputs(), part_by_part=self.sliced_sums)
        y = self.tail(self.fuse[1](fused)) + shallow
        # Predict the residual over a bilinear upscale: faster convergence, same capacity.
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.upsample(y) + base


def block_count(state: Mapping[str, Tensor]) -> int:
    return 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))


def _hparams_from_state(state: Mapping[str, Tensor]) -> dict[str, int | float]:
    """Read SAFDN hyperparameters off tensor shapes (for files without streamsr metadata)."""
    feat, in_ch = state["head.weight"].shape[:2]
    blocks = block_count(state)
    out_ch = state["upsample.0.weight"].shape[0]
    scale = round((out_ch / in_ch) ** 0.5)
    hidden = state["body.0.attention.compress.weight"].shape[0]
    return {
        "in_ch": int(in_ch),
        "feat": int(feat),
        "blocks": blocks,
        "scale": scale,
        "compress": int(feat) // int(hidden),
        "kernel": int(state["body.0.attention.asym_h.weight"].shape[-1]),
        "heads": int(state["body.0.attention.temperature"].shape[0]),
        "esa": int(state["body.0.spatial.reduce.weight"].shape[0]),
    }


def _looks_like_safdn(state: Mapping[str, Tensor]) -> bool:
    return "head.weight" in state and "body.0.attention.temperature" in state and "upsample.0.weight" in state


def _use_sliced_sums_on_cuda(module: nn.Module, device: torch.device) -> None:
    # The sliced sums are the faster kernels on CUDA and the slower ones on the CPU.
    module.use_sliced_sums(device.type == "cuda")


def _contract(module: nn.Module) -> dict[str, Any]:
    """SAFDN's calling contract: fp16-safe (the attention keeps fp32 inside), tiles with the
    default overlap, as wide as its feature channels, and its sliced sums chosen per device."""
    return {"activation_channels": int(module.hparams["feat"]), "prepare": _use_sliced_sums_on_cuda}


register_arch("safdn", SAFDN, detect=_looks_like_safdn, infer=_hparams_from_state, describe=_contract)
