"""A worker's log records travel to the calling process and are handled there as its own."""
from __future__ import annotations

import logging
import pickle

from facekit.log_relay import LogKeeper, configured_levels, replay


class Unpicklable:
    def __reduce__(self):
        raise TypeError("cannot travel")

    def __str__(self) -> str:
        return "a plugin's object"


def test_a_record_with_arguments_and_a_traceback_that_cannot_pickle_travels_as_text(collected) -> None:
    keeper = LogKeeper()
    source = logging.getLogger("relay_source")
    source.addHandler(keeper)
    try:
        try:
            raise ValueError("inside the plugin")
        except ValueError:
            source.error("frame %s: %s", "clip_000001", Unpicklable(), exc_info=True)
    finally:
        source.removeHandler(keeper)
    records = pickle.loads(pickle.dumps(keeper.take()))
    assert keeper.take() == []  # taken once
    (record,) = records
    assert record.getMessage() == "frame clip_000001: a plugin's object"
    assert "ValueError: inside the plugin" in record.exc_text and record.exc_info is None
    record.name = "relay_test"
    replay(records)
    assert [r.getMessage() for r in collected] == ["frame clip_000001: a plugin's object"]


def test_replay_keeps_to_the_calling_process_s_levels(collected) -> None:
    made = [logging.LogRecord("relay_test", level, __file__, 1, f"at {logging.getLevelName(level)}", None, None)
            for level in (logging.INFO, logging.WARNING)]
    replay(made)
    assert [r.getMessage() for r in collected] == ["at WARNING"]  # the logger takes WARNING and above here
    assert configured_levels()["relay_test"] == logging.WARNING
