"""The `streamsr` command's entry point: signals are handled from the first instant.

Importing the CLI loads torch and FFmpeg (seconds); a Ctrl-C or SIGTERM in that time ends the
command with the same one line and exit code as during a run, not a traceback or a silent death.
This module imports nothing heavy for that reason.
"""

from __future__ import annotations

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
    cli()


if __name__ == "__main__":
    main()
