"""One owner for every output a run writes: the temporary name, the rename when finished, the
cleanup on failure or signal, and the translation of write errors into `OutputError`.

A file or frame folder is written under a hidden name beside it (`partials.temporary_path`) and
renamed only when complete, so a failure, Ctrl-C or SIGTERM never leaves a half-written output
where a finished one is expected. A playlist (HLS, DASH) names its media files after itself and
cannot be renamed: on failure the files the run began are removed instead.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import TracebackType

from ..errors import DiskFullError, OutputError, StreamSRError, is_disk_full
from ..partials import glob_escape, is_live, lock, partials_of, remove_partial, replace_folder, temporary_path

_UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG})
_FILE_ADVICE = "free space, or write elsewhere with -o"
_FOLDER_ADVICE = "free space, or write elsewhere"


def _translate(dst: Path, error: BaseException, advice: str) -> StreamSRError | None:
    """The `OutputError` a write error means for `dst`, or None to let it pass as it is."""
    if is_disk_full(error) and not isinstance(error, DiskFullError):
        return DiskFullError(f"{dst}: the disk is full; nothing was written ({advice})")
    if isinstance(error, OSError) and not isinstance(error, StreamSRError) and error.errno in _UNWRITABLE:
        return OutputError(f"{dst}: cannot be written ({error.strerror or error})")
    if isinstance(error, OSError) and error.errno == errno.ENOENT and not dst.parent.is_dir():
        return OutputError(f"{dst.parent}: the output folder was removed while the output was written; nothing was kept")
    return None


class AtomicOutput:
    """``with AtomicOutput(dst) as tmp:`` write the output at `tmp`; leaving the block normally
    renames it to `dst`, leaving it by any exception removes it.

    `folder`: `tmp` is a folder (created here), and an earlier folder at `dst` is replaced only once
    the new one is complete. A temporary output a killed earlier run left beside `dst` is removed
    on entry.
    """

    def __init__(self, dst: Path, *, folder: bool = False) -> None:
        self.dst, self.folder = Path(dst), folder
        self.path = temporary_path(self.dst)
        self._lock: int | None = None

    def __enter__(self) -> Path:
        earlier = partials_of(self.dst)
        if any(is_live(p) for p in earlier):
            raise OutputError(f"{self.dst}: another run is writing it now; wait for it to finish, or choose another output")
        for path in earlier:  # a killed earlier run's
            remove_partial(path)
        if self.folder:
            self.path.mkdir()
        else:
            self.path.touch()
        self._lock = lock(self.path)  # held until the output is renamed or removed
        return self.path

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._finish(kind, error)
        finally:
            if self._lock is not None:
                os.close(self._lock)

    def _finish(self, kind: type[BaseException] | None, error: BaseException | None) -> None:
        if error is None:
            try:
                if self.folder:
                    replace_folder(self.path, self.dst)
                else:
                    os.replace(self.path, self.dst)
                return
            except OSError as e:
                error = e
        remove_partial(self.path)
        if (translated := _translate(self.dst, error, _FOLDER_ADVICE if self.folder else _FILE_ADVICE)) is not None:
            raise translated from error
        if kind is None:  # the rename itself failed
            raise error


class PlaylistOutput:
    """``with PlaylistOutput(dst):`` write a playlist and its media files beside it, directly; on
    any exception the files the block began in that folder are removed."""

    def __init__(self, dst: Path) -> None:
        self.dst = Path(dst)
        self._before: set[Path] = set()

    def __enter__(self) -> Path:
        self._before = set(self.dst.parent.iterdir())
        return self.dst

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if error is None:
            # The HLS and DASH muxers do not report a failed write: check what they left.
            try:
                check_playlist(self.dst)
                return
            except OutputError as e:
                error = e
        for path in set(self.dst.parent.iterdir()) - self._before:
            remove_partial(path)
        if (translated := _translate(self.dst, error, _FILE_ADVICE)) is not None:
            raise translated from error
        if kind is None:  # the finished playlist failed its check
            raise error


def check_playlist(playlist: Path) -> None:
    """Raise `OutputError` (caused by ENOSPC when the disk has no space left) unless `playlist` is
    complete: an HLS playlist that ends its list and names media files that are all there and not
    empty, or a DASH manifest that closes and whose files are there and not empty."""
    problem = ""
    text = playlist.read_text(errors="replace") if playlist.is_file() else ""
    if playlist.suffix.lower() == ".m3u8":
        media = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if "#EXT-X-ENDLIST" not in text or not media:
            problem = "the playlist was not finished"
        elif missing := [m for m in media if not (playlist.parent / m).is_file() or (playlist.parent / m).stat().st_size == 0]:
            problem = f"media file {missing[0]} is missing or empty"
    elif "</MPD>" not in text:
        problem = "the manifest was not finished"
    elif any(p.stat().st_size == 0 for p in playlist.parent.glob(f"{glob_escape(playlist.stem)}-*")):
        problem = "a media file is empty"
    if not problem:
        return
    cause = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) if os.statvfs(playlist.parent).f_bavail == 0 else None
    raise OutputError(f"{playlist}: {problem}; nothing was written") from cause  # `_translate` names a full disk
