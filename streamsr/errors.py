"""Typed errors. The CLI maps each to a one-line message and an exit code."""

from __future__ import annotations

import errno
import signal


class StreamSRError(Exception):
    """Base of every error streamsr raises on purpose.

    `exit_code` is what the CLI exits with; the message is meant for a user and says what to do.
    """

    exit_code: int = 1


EXIT_MEANINGS = {1: "failed", 2: "bad input", 3: "output problem", 4: "model problem", 5: "backend unavailable",
                 6: "encoder failure", 130: "stopped by Ctrl-C", 143: "stopped by SIGTERM"}
"""What each exit code of the command means, in a few words (docs/usage.md: Exit codes)."""


class InputError(StreamSRError):
    """The input cannot be used: missing, not a file, empty, not a video, corrupt."""

    exit_code = 2


class OutputError(StreamSRError):
    """The output cannot be written: exists, same as the input, unwritable directory, disk full."""

    exit_code = 3


class DiskFullError(OutputError):
    """The output disk filled up while writing; nothing of the output is left behind."""


def is_disk_full(error: BaseException) -> bool:
    """True when `error`, or an error it was raised from, is "no space left on device"."""
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "errno", None) == errno.ENOSPC:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class UnsupportedModelError(StreamSRError):
    """A model name or weight file that streamsr cannot load."""

    exit_code = 4


class ScaleMismatchError(UnsupportedModelError):
    """The model's scale is not the scale asked for."""


class WeightsMissingError(UnsupportedModelError):
    """A registered model whose weight file is not installed."""


class DuplicateArchError(StreamSRError):
    """Two architectures registered under one id."""


class BackendUnavailableError(StreamSRError):
    """A requested decode/compute backend is not usable here (no CUDA, no DALI, VFR input)."""

    exit_code = 5


class DeviceOutOfMemoryError(BackendUnavailableError):
    """The device ran out of memory even in the smallest tiles; the message says what to lower."""


class EncodeError(StreamSRError):
    """The encoder or muxer failed (unknown codec, unsupported pixel format, write error)."""

    exit_code = 6


class DecodeError(InputError):
    """The source stopped decoding part-way. `frames_done` frames were written before it."""

    def __init__(self, message: str, *, frames_done: int = 0, frames_lost: int | None = None) -> None:
        super().__init__(message)
        self.frames_done = frames_done
        self.frames_lost = frames_lost


class ConfigError(StreamSRError):
    """A preset or recipe file with an unknown key or a value of the wrong type."""

    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGTERM; Ctrl-C raises a plain KeyboardInterrupt).

    A KeyboardInterrupt, so every clean-up that Ctrl-C runs (unfinished outputs removed, workers
    stopped) runs for it too. The CLI exits with 128 + the signal's number, as shells report it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def raise_interrupted(signum: int, _frame: object) -> None:
    """A signal handler: turn the signal into `Interrupted` in the main thread."""
    raise Interrupted(signum)

