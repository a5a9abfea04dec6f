"""Say whether one weights file should replace another, from the quality both carry in their metadata.

    python benchmarks/compare_weights.py weights/safdn-x2.safetensors /tmp/s23-x2.safetensors

The rule the shipped weights follow (weights/README.md): a new file replaces the old one only when its
PSNR is higher and its SSIM no lower on every set the old file was measured on. Set5 alone has five
images and can pick a checkpoint that is worse on the larger sets. Exit status 0: replace; 1: keep.
"""

from __future__ import annotations

import json
import sys

from streamsr.models.weights import read_metadata


def quality(path: str) -> dict[str, dict[str, float]]:
    return json.loads(read_metadata(path).get("quality", "{}"))


def main(old_path: str, new_path: str) -> int:
    old, new = quality(old_path), quality(new_path)
    if not old:
        sys.exit(f"{old_path} carries no measured quality: run `streamsr eval ... --export` on it first")
    better_everywhere = True
    for name, before in old.items():
        after = new.get(name)
        if after is None:
            print(f"{name:6} not measured in {new_path}")
            better_everywhere = False
            continue
        better = after["psnr"] > before["psnr"] and after["ssim"] >= before["ssim"]
        better_everywhere &= better
        print(f"{name:6} PSNR {before['psnr']:.4f} -> {after['psnr']:.4f} ({after['psnr'] - before['psnr']:+.4f})"
              f"  SSIM {before['ssim']:.4f} -> {after['ssim']:.4f}  {'better' if better else 'NOT better'}")
    print("replace: better on every set" if better_everywhere else "keep the old file")
    return 0 if better_everywhere else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
