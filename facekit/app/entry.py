"""The ``facekit`` command's outermost frame, importing nothing heavy itself: Ctrl-C while
Python still loads Hydra, OpenCV or a model runtime ends the command in one line, as it does
once a run has begun (``facekit.app.cli``), instead of a traceback through the import system."""
from __future__ import annotations

import sys

from facekit.errors import INTERRUPTED_EXIT, stop_writing_to_a_closed_pipe


def main() -> None:
    """Console entry point."""
    try:
        from facekit.app.cli import main as run

        run()
    except BrokenPipeError:  # facekit --help | head -3: Hydra's help, printed before any task runs
        stop_writing_to_a_closed_pipe()
    except KeyboardInterrupt:  # a run that had begun said its own line and exited already
        print("facekit: interrupted before the run began; nothing was written", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)
