"""A source's shards end in any order on Ray; their workers' log lines reach facekit.log in frame
order, as a local run's do."""
from __future__ import annotations

import logging
from pathlib import Path

from facekit.distributed.driver import SourceJob, SourceOutcome
from facekit.ledger.source import LedgerSettings
from facekit.ledger.verify import Verify
from facekit.media.shards import Shard


def _lines(*messages: str) -> list[logging.LogRecord]:
    return [logging.LogRecord("relay_test", logging.WARNING, __file__, 1, message, None, None)
            for message in messages]


def _messages(records: list[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records]


def _outcome(shards: int) -> SourceOutcome:
    return SourceOutcome(SourceJob("clip", Path("out"), {}, [Shard("clip.mp4", n, "video") for n in range(shards)],
                                   LedgerSettings(False, False, 100, Verify.size, False)))


def test_a_shard_that_ends_before_those_ahead_of_it_waits_for_them(collected: list[logging.LogRecord]) -> None:
    outcome = _outcome(4)
    outcome.file_logs(2, _lines("frame 21", "frame 25"))
    outcome.file_logs(3, _lines("frame 31"))
    assert _messages(collected) == []
    outcome.file_logs(0, _lines("frame 1"))
    assert _messages(collected) == ["frame 1"]
    outcome.file_logs(1, [])  # a shard with nothing to say still lets the later ones through
    assert _messages(collected) == ["frame 1", "frame 21", "frame 25", "frame 31"]


def test_a_shard_an_earlier_run_finished_holds_no_one_up(collected: list[logging.LogRecord]) -> None:
    outcome = _outcome(3)
    outcome.file_logs(0, [])  # kept from an earlier run
    outcome.file_logs(2, _lines("frame 21"))
    outcome.file_logs(1, _lines("frame 11"))
    assert _messages(collected) == ["frame 11", "frame 21"]


def test_a_shard_run_again_files_its_new_lines_at_once(collected: list[logging.LogRecord]) -> None:
    outcome = _outcome(2)
    outcome.file_logs(0, _lines("frame 1"))
    outcome.file_logs(0, _lines("frame 1 again"))  # its output was not found; it ran once more
    outcome.file_logs(1, _lines("frame 11"))
    assert _messages(collected) == ["frame 1", "frame 1 again", "frame 11"]


def test_a_run_that_stops_files_the_lines_still_waiting_in_shard_order(collected: list[logging.LogRecord]) -> None:
    outcome = _outcome(4)
    outcome.file_logs(3, _lines("frame 31"))
    outcome.file_logs(1, _lines("frame 11"))  # shards 0 and 2 still running when the run stops
    outcome.file_held_logs()
    assert _messages(collected) == ["frame 11", "frame 31"]
    outcome.file_logs(1, _lines("late"))
    assert _messages(collected)[-1] == "late"
