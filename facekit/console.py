"""One rich console on stderr, shared by log messages and progress bars so they don't collide."""
from __future__ import annotations

from rich.console import Console
from rich.logging import RichHandler

STDERR = Console(stderr=True)


class LogHandler(RichHandler):
    """Hydra's console log handler (see conf/config.yaml): short lines, no paths or times."""

    def __init__(self) -> None:
        super().__init__(console=STDERR, show_time=False, show_path=False, markup=False,
                         rich_tracebacks=False)
