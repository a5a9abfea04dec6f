"""The `streamsr` command's entry point: signals are handled from the first instant.

Importing the CLI loads torch and FFmpeg (seconds); a Ctrl-C or SIGTERM in that time ends the
command with the same one line and exit code as during a run, not a traceback or a silent death.
This module imports nothing heavy for that reason.
"""

from __future__ import annotations

import os
import signal
import sys

from .errors import Interrupted, raise_interrupted


def main() -> None:
    # SIGTERM (a service manager, `kill`, a job scheduler) stops the command the way Ctrl-C does.
    signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        from .cli import cli
    except KeyboardInterrupt as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        sys.stderr.write(f"Error: stopped by {signal.Signals(signum).name} while starting; nothing was written\n")
        sys.exit(128 + signum)
    try:
        cli()
    except SystemExit as e:
        if e.code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
            # Stopped: the outputs are already removed. Worker threads may still be inside FFmpeg or
            # torch, and meeting the interpreter's teardown there can abort the process (exit -6):
            # leave at once with the documented code.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(e.code)
        raise


if __name__ == "__main__":
    main()
