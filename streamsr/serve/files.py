"""The web app's view of the disk: one root folder, and nothing outside it.

Every path a request names is relative to the root; `Root.resolve` refuses absolute paths, ``..``,
hidden names (the app's own state lives in ``.streamsr/``) and symbolic links that lead out of the
root. Uploads are written under a hidden temporary name (`partials.temporary_path`), counted
against a size limit as they arrive, and linked into place only when complete, never over an
existing file.
"""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from collections.abc import AsyncIterator, Iterator
from pathlib import Path, PurePosixPath

from ..batch import is_media
from ..errors import InputError, OutputError
from ..partials import lock, remove_stale_partials, temporary_path

MODEL_SUFFIXES = frozenset({".pth", ".pt", ".ckpt", ".safetensors", ".onnx"})
"""Model files a job may name (loaded by `models.load_model`: weights only, never code)."""
UPLOADS = "uploads"
"""Folder under the root that media uploads go into."""
MODELS = "models"
"""Folder under the root that model uploads go into."""
OUTPUTS = "upscaled"
"""Folder under the root that results go into."""
STATE = ".streamsr"
"""Hidden folder under the root for the app's own state (jobs); never listed or served."""
NAME_LIMIT = 120


class RefusedPathError(InputError):
    """A path outside the root, hidden, or of a kind the app does not take."""


class UploadTooLargeError(InputError):
    """An upload over the size limit; nothing of it is kept."""


def is_model_file(path: Path) -> bool:
    return path.suffix.lower() in MODEL_SUFFIXES


def clean_name(name: str) -> str:
    """A file name that is safe on every file system: the last component of `name`, letters (any script),
    digits and ``._-()`` and spaces only, no leading dot, at most `NAME_LIMIT` characters (the
    suffix kept)."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", name))[-1]
    base = re.sub(r"[^\w.\- ()]", "_", base).strip(" .")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = suffix[:16]
    stem = (stem or "upload")[: NAME_LIMIT - len(suffix) - 1]
    return f"{stem}.{suffix}" if suffix else stem


class Root:
    """The folder the app reads, lists, writes and serves; `path` is resolved (no links in it)."""

    def __init__(self, path: str | Path) -> None:
        root = Path(path).expanduser()
        if not root.is_dir():
            raise InputError(f"{path}: not a folder")
        self.path = root.resolve()

    def resolve(self, relative: str) -> Path:
        """The file `relative` names under the root, its links followed; `RefusedPathError` if that
        leads outside the root or through a hidden name."""
        if not relative or "\0" in relative or relative.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", relative):
            raise RefusedPathError(f"{relative!r}: give a path relative to the root folder")
        parts = PurePosixPath(relative.replace("\\", "/")).parts
        if any(part == ".." for part in parts):
            raise RefusedPathError(f"{relative!r}: '..' is not allowed")
        if any(part.startswith(".") for part in parts):
            raise RefusedPathError(f"{relative!r}: hidden files are not served")
        real = (self.path / Path(*parts)).resolve()
        if not real.is_relative_to(self.path):
            raise RefusedPathError(f"{relative!r}: leads outside the root folder")
        return real

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.path).as_posix()

    def shown(self, error: BaseException) -> str:
        """The first line of `error`'s message, with paths under the root written relative to it,
        as the page shows every path."""
        text = str(error).replace(f"{self.path}{os.sep}", "")
        return text.splitlines()[0] if text.strip() else type(error).__name__

    def walk(self) -> Iterator[Path]:
        """Files under the root, sorted, hidden ones and links that lead out left out."""
        for folder, dirs, files in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                path = Path(folder) / name
                with contextlib.suppress(OSError):
                    if path.resolve().is_relative_to(self.path) and path.is_file():
                        yield path

    def free_name(self, folder: str, name: str, *, taken: frozenset[str] = frozenset()) -> Path:
        """`folder/name` under the root, or `folder/stem (2).suffix`... where that exists (or is in
        `taken`, paths relative to the root that are promised to files not written yet)."""
        target = self.path / folder
        target.mkdir(parents=True, exist_ok=True)
        path = target / name
        n = 2
        while path.exists() or path.is_symlink() or f"{folder}/{path.name}" in taken:
            path = target / f"{Path(name).stem} ({n}){Path(name).suffix}"
            n += 1
        return path

    async def save(self, name: str, chunks: AsyncIterator[bytes], *, limit: int) -> Path:
        """Write an upload into `uploads/` (media) or `models/` (model files) under a free name.

        The bytes go to a hidden temporary file beside the target, which is linked into place once
        complete (an existing file is never replaced). Over `limit` bytes: `UploadTooLargeError`, and the
        temporary file is removed, as on any other failure.
        """
        clean = clean_name(name)
        if is_media(Path(clean)):
            folder = UPLOADS
        elif is_model_file(Path(clean)):
            folder = MODELS
        else:
            raise RefusedPathError(f"{clean!r}: not a video, image or model file")
        target = self.free_name(folder, clean)
        part = temporary_path(target)
        size = 0
        held = None
        try:
            with open(part, "xb") as out:
                held = lock(part)  # a live upload: a restarted server's clean-up leaves it alone
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise UploadTooLargeError(f"{clean}: over the upload limit of {limit} bytes")
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            while True:
                try:
                    os.link(part, target)
                    break
                except FileExistsError:  # another upload took the name meanwhile
                    target = self.free_name(folder, clean)
        except OSError as e:
            raise OutputError(f"{clean}: cannot store the upload ({e.strerror or e})") from e
        finally:
            part.unlink(missing_ok=True)
            if held is not None:
                os.close(held)
        return target

    def remove_stale(self) -> None:
        """Remove the temporary files of uploads and runs that a killed server left behind."""
        for folder in (UPLOADS, MODELS, OUTPUTS):
            if (self.path / folder).is_dir():
                remove_stale_partials(self.path / folder)
