"""The one line of a rerun that finds every frame done: no progress bar drawn for no work, no
plan of passes and processes that will not run, and no Ray started to run no shard."""
from __future__ import annotations

import logging

from facekit.console import quantity
from facekit.ledger.source import LedgerSettings, warn_not_done_again

log = logging.getLogger("facekit")


def say_nothing_to_do(frames: int, books: LedgerSettings | None = None) -> None:
    """``books``: the run's ledger settings, where its debug frames or rejected crops would be
    missed (a source's own ledger, when there is one, has said so)."""
    log.info("nothing to do: %s already done", quantity(frames, "frame"))
    if books is not None:
        warn_not_done_again(frames, books.debug, books.save_rejected)
