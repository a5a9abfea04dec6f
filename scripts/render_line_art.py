#!/usr/bin/env python3
"""Render clean line-art training images from Debian's openclipart-svg package.

The drawings are public domain. The packages are fetched with `apt-get download` and unpacked
with `dpkg -x` into a scratch folder (nothing is installed system-wide); each chosen SVG is
rendered by `rsvg-convert` at a long side between --min-side and --max-side onto white and
written as a lossless PNG. Drawings that are nearly empty at that size are skipped.

    python scripts/render_line_art.py OUT_DIR [--count 200] [--seed 0]

The choice of drawings is deterministic for a given package version, count and seed.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

PACKAGES = ("openclipart-svg", "librsvg2-bin")


def unpack_packages(scratch: Path) -> Path:
    """Download and unpack the packages into `scratch`; return the unpacked root."""
    debs = scratch / "debs"
    root = scratch / "root"
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True, capture_output=True)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def chosen_drawings(svg_root: Path, count: int, seed: int) -> list[Path]:
    """A deterministic sample of `count` drawings, spread over the package's categories."""
    files = sorted(svg_root.rglob("*.svg"))

    def rank(path: Path) -> str:
        return hashlib.sha256(f"{seed}:{path.relative_to(svg_root)}".encode()).hexdigest()

    return sorted(files, key=rank)[: count * 3]  # extra candidates: some render (nearly) empty


def ink_fraction(image: Image.Image) -> float:
    """Share of pixels that differ visibly from the white background."""
    grey = np.asarray(image.convert("L"), dtype=np.uint8)
    return float((grey < 235).mean())


def render(rsvg: Path, svg: Path, side: int) -> Image.Image | None:
    """Render `svg` with its long side at `side` px on white; None if rsvg cannot draw it."""
    with tempfile.NamedTemporaryFile(suffix=".png") as png:
        result = subprocess.run(
            [str(rsvg), "--keep-aspect-ratio", "-w", str(side), "-h", str(side),
             "-b", "white", "-o", png.name, str(svg)],
            capture_output=True, timeout=60,
        )
        if result.returncode != 0:
            return None
        try:
            with Image.open(png.name) as image:
                return image.convert("RGB")
        except OSError:
            return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the rendered PNG files")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--min-side", type=int, default=1024)
    parser.add_argument("--max-side", type=int, default=1536)
    parser.add_argument("--min-ink", type=float, default=0.04, help="skip drawings with less ink than this")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        print("render_line_art: needs apt-get and dpkg (a Debian or Ubuntu machine)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="streamsr-lineart-") as scratch:
        root = unpack_packages(Path(scratch))
        rsvg = root / "usr/bin/rsvg-convert"
        written = 0
        for svg in chosen_drawings(root / "usr/share/openclipart/svg", args.count, args.seed):
            side = int(rng.integers(args.min_side, args.max_side + 1))
            image = render(rsvg, svg, side)
            if image is None or ink_fraction(image) < args.min_ink:
                continue
            image.save(args.out / f"{svg.stem}.png", optimize=False, compress_level=6)
            written += 1
            if written == args.count:
                break
    print(f"{written} drawings written to {args.out}")
    return 0 if written else 1


if __name__ == "__main__":
    raise SystemExit(main())
