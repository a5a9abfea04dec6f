"""Temporary output names: an output is written under a hidden name beside it and renamed when
finished, so a crash or a kill never leaves a half-written file (or half-filled frame folder)
where a finished one is expected."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import uuid
from pathlib import Path

_PATTERN = re.compile(r"^\.(?P<stem>.+)\.partial-[0-9a-f]{8}(?P<suffix>\.[^.]+)?$")


def temporary_path(dst: Path) -> Path:
    """A hidden name beside `dst`, with the same suffix so the muxer picks the same container."""
    return dst.with_name(f".{dst.stem}.partial-{uuid.uuid4().hex[:8]}{dst.suffix}")


def is_temporary(path: Path) -> bool:
    """True for a name `temporary_path` makes."""
    return _PATTERN.match(path.name) is not None


def partials_of(dst: Path) -> list[Path]:
    """The temporary files (or frame folders) of `dst` beside it, of this run or any other."""
    if not dst.parent.is_dir():
        return []
    found = []
    for path in dst.parent.glob(f".{glob_escape(dst.stem)}.partial-*"):
        match = _PATTERN.match(path.name)
        if match and match["stem"] == dst.stem and (match["suffix"] or "") == dst.suffix:
            found.append(path)
    return found


def _locked(path: Path) -> int:
    """A descriptor of `path` holding its exclusive lock; `BlockingIOError` if another holds it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def lock(path: Path) -> int | None:
    """Hold an exclusive lock on `path` (a file or folder) for as long as the returned descriptor
    stays open: the mark of a live run, which `is_live` sees from any other process. None where
    the file system takes no locks."""
    try:
        return _locked(path)
    except OSError:
        return None


def is_live(path: Path) -> bool:
    """True while another process holds `lock(path)`: a run is still writing it."""
    try:
        os.close(_locked(path))  # closing drops the probe's own lock
    except BlockingIOError:
        return True
    except OSError:  # gone, or a file system without locks
        return False
    return False


def remove_stale_partials(folder: Path, *, recursive: bool = False) -> int:
    """Delete every temporary output (file or frame folder) a killed run left in `folder` (and, with
    `recursive`, below it); only names `temporary_path` makes are touched, and none a live run
    still writes. The number removed."""
    found = [p for p in (folder.rglob if recursive else folder.glob)(".*.partial-*") if is_temporary(p) and not is_live(p)]
    for path in found:
        remove_partial(path)
    return len(found)


def remove_partial(path: Path) -> None:
    """Delete a temporary output, file or frame folder; one already gone is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def replace_folder(finished: Path, dst: Path) -> None:
    """Move the finished folder to `dst`. An earlier folder there (the caller checked it may go) is
    moved aside first and deleted after, so `dst` is never missing a complete sequence."""
    if dst.is_dir() and any(dst.iterdir()):
        old = temporary_path(dst)
        os.rename(dst, old)
        os.rename(finished, dst)
        remove_partial(old)
    else:
        if dst.is_dir():
            dst.rmdir()
        os.rename(finished, dst)


def glob_escape(text: str) -> str:
    """`text` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)
