"""The one line of a rerun that finds every frame done: no progress bar drawn for no work, no
plan of passes and processes that will not run, and no Ray started to run no shard."""
from __future__ import annotations

import logging

from facekit.console import quantity
from facekit.ledger.source import warn_not_done_again

log = logging.getLogger("facekit")


def say_nothing_to_do(frames: int, debug: bool = False, save_rejected: bool = False) -> None:
    log.info("nothing to do: %s already done", quantity(frames, "frame"))
    warn_not_done_again(frames, debug, save_rejected)
