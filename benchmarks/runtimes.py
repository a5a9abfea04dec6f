"""SR-stage speed of each runtime and precision, interleaved in one run, beside community models.

    python benchmarks/runtimes.py --size 320x180 --repeats 5 [--set5 DIR]

Every configuration runs once to warm up (export, compile), then the configurations take turns,
`--repeats` rounds, and the best time of each is kept: ratios from one run on a noisy machine.
Models: SAFDN x4 as trained (not re-parameterised: the baseline) and as the product runs it, on
torch, ONNX Runtime fp32 and OpenVINO (bf16 rows only where the CPU has fast bf16); and, through
spandrel with random weights (timing only), SAFMN (dim 36, 8 blocks), SPAN (48 channels) and
Real-ESRGAN's Compact (64 channels, 16 convolutions), each at x4 on torch in its best precision
(bf16 where the CPU has it) and on OpenVINO. With --set5, SAFDN's Set5 Y-PSNR per configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import torch

from streamsr.errors import UnsupportedModelError
from streamsr.models import load_model
from streamsr.models.runtimes import runtime_available
from streamsr.upscaler import Upscaler, cpu_has_fast_bf16


def community(name: str, tmp: Path) -> Path:
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.SAFMN import SAFMN
    from spandrel.architectures.SPAN import SPAN

    net = {"SAFMN-36x8": lambda: SAFMN(dim=36, n_blocks=8, upscaling_factor=4),
           "SPAN-48": lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4),
           "Compact-64x16": lambda: Compact(num_feat=64, num_conv=16, upscale=4)}[name]()
    path = tmp / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


class AsTrained(torch.nn.Module):
    """The network without its inference fusions (no `reparameterize` to call): the baseline."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.hparams = net, net.hparams

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def set5_psnr(engine: Upscaler, folder: Path) -> float:
    from streamsr.train.evaluate import evaluate_set

    return evaluate_set(folder, lambda lr: engine.upscale_frames(lr[None])[0], scale=engine.scale).psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--set5", type=Path, help="Set5 folder: also score SAFDN per configuration")
    parser.add_argument("--no-community", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    fast_bf16 = "bf16" if cpu_has_fast_bf16() else "fp32"
    os.environ.setdefault("STREAMSR_CACHE", tempfile.mkdtemp(prefix="streamsr-cache-"))
    tmp = Path(tempfile.mkdtemp(prefix="streamsr-bench-"))

    safdn = load_model("safdn-x4")
    as_trained = dataclasses.replace(safdn, module=AsTrained(safdn.module))
    cpu_precisions = ["fp32", "bf16"] if fast_bf16 == "bf16" else ["fp32"]
    configs: list[tuple[str, str, str, object]] = [("SAFDN x4 as trained", "torch", fast_bf16, as_trained)]
    configs += [("SAFDN x4", "torch", p, safdn) for p in cpu_precisions]
    for backend, precisions in (("onnxruntime", ["fp32"]), ("openvino", cpu_precisions)):
        if runtime_available(backend):
            configs += [("SAFDN x4", backend, p, safdn) for p in precisions]
    if not args.no_community and runtime_available("torch"):
        for name in ("SAFMN-36x8", "SPAN-48", "Compact-64x16"):
            model = load_model(community(name, tmp))
            best = fast_bf16 if model.supports_bfloat16 else "fp32"
            configs.append((name, "torch", best, model))
            if runtime_available("openvino"):
                configs.append((name, "openvino", fast_bf16, model))

    engines = []
    x = torch.rand(1, 3, h, w)
    for name, backend, precision, model in configs:
        try:
            engine = Upscaler(model, device="cpu", precision=precision, backend=backend, tile=0)  # type: ignore[arg-type]
        except UnsupportedModelError as e:
            print(f"{name} on {backend}: {e}")
            continue
        engine(x)  # warm-up: export, compile, allocator
        engines.append((name, backend, precision, engine))
    best = [float("inf")] * len(engines)
    for _ in range(args.repeats):
        for i, (*_, engine) in enumerate(engines):
            t = time.perf_counter()
            engine(x)
            best[i] = min(best[i], time.perf_counter() - t)
    base = best[0]  # SAFDN as trained, on torch at the CPU's best precision
    print(f"SR stage, x4 {w}x{h} -> {4 * w}x{4 * h}, {torch.get_num_threads()} threads, best of {args.repeats}")
    print("| model | backend | precision | ms/frame | speed vs as trained on torch | Set5 Y-PSNR |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (name, backend, precision, engine), seconds in zip(engines, best, strict=True):
        score = f"{set5_psnr(engine, args.set5):.3f}" if args.set5 and name.startswith("SAFDN") else "-"
        print(f"| {name} | {backend} | {precision} | {1000 * seconds:.0f} | {base / seconds:.2f}x | {score} |")


if __name__ == "__main__":
    main()
