"""The ``facekit`` command's outermost frame, importing nothing heavy itself: Ctrl-C while
Python still loads Hydra, OpenCV or a model runtime ends the command in one line, as it does
once a run has begun (``facekit.app.cli``), instead of a traceback through the import system."""
from __future__ import annotations

import sys

from facekit.errors import interrupted_exit, stop_writing_to_a_closed_pipe


def main() -> None:
    """Console entry point."""
    try:
        from facekit.app.cli import main as run

        run()
    except BrokenPipeError:  # facekit --help | head -3: Hydra's help, printed before any task runs
        stop_writing_to_a_closed_pipe()
    except KeyboardInterrupt:  # a run that had begun said its own line and exited already
        cli = sys.modules.get("facekit.app.cli")  # loaded by now, unless Ctrl-C came while it loaded
        stopped_by = getattr(cli, "_stopped_by", [None])[0]  # SIGTERM: 143, as the run's own stop exits
        if getattr(cli, "run_ended", [False])[0]:
            print("facekit: interrupted after the run ended; its output is complete", file=sys.stderr)
        else:
            print("facekit: interrupted before the run began; nothing was written", file=sys.stderr)
        sys.exit(interrupted_exit(stopped_by))
