"""Temporary output names: an output is written under a hidden name beside it and renamed when
finished, so a crash or a kill never leaves a half-written file where a finished one is expected."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

_PATTERN = re.compile(r"^\.(?P<stem>.+)\.partial-[0-9a-f]{8}(?P<suffix>\.[^.]+)$")


def temporary_path(dst: Path) -> Path:
    """A hidden name beside `dst`, with the same suffix so the muxer picks the same container."""
    return dst.with_name(f".{dst.stem}.partial-{uuid.uuid4().hex[:8]}{dst.suffix}")


def is_temporary(path: Path) -> bool:
    """True for a name `temporary_path` makes."""
    return _PATTERN.match(path.name) is not None


def stale_partials(dst: Path) -> list[Path]:
    """Temporary files of `dst` that an earlier, killed run left beside it."""
    if not dst.parent.is_dir():
        return []
    found = []
    for path in dst.parent.glob(f".{glob_escape(dst.stem)}.partial-*"):
        match = _PATTERN.match(path.name)
        if match and match["stem"] == dst.stem and match["suffix"] == dst.suffix and path.is_file():
            found.append(path)
    return sorted(found)


def glob_escape(text: str) -> str:
    """`text` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)
