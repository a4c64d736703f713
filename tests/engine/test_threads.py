"""The threaded pipeline: records come out in order, decoded frames in flight stay bounded, and a
failing stage is the same line as in a worker process."""
from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import pytest

from facekit.engine.threads import Stage, StageFailure, run_stages
from facekit.errors import ModelError
from facekit.records import Frame, FrameRecord

FRAME_BYTES = 10 * 2 ** 20


def _slowly(batch: list[FrameRecord]) -> None:
    time.sleep(0.01)  # the stages are slower than the reader: frames would pile up ahead of them


@pytest.mark.parametrize("max_bytes", [25 * 2 ** 20, None])
def test_decoded_frames_in_flight_stay_under_the_byte_limit(max_bytes: int | None) -> None:
    """With 10 MB frames and 25 MB allowed, the reader decodes a third frame only while two are
    out, never a fourth; with no byte limit the queues' counts alone let many more pile up."""
    sunk: list[str] = []
    in_flight: list[int] = []

    def frames() -> Iterator[FrameRecord]:
        for index in range(30):
            in_flight.append(index + 1 - len(sunk))  # this one included
            yield FrameRecord(Frame(f"f{index}", "x", index, np.zeros(FRAME_BYTES, np.uint8)))

    def sink(record: FrameRecord) -> None:
        record.frame.image = None
        sunk.append(record.frame.name)

    stages = [Stage("a", _slowly), Stage("b", _slowly)]
    run_stages(frames(), stages, sink, queue_size=16, max_bytes=max_bytes)
    assert sunk == [f"f{i}" for i in range(30)]
    if max_bytes is None:
        assert max(in_flight) > 3  # the counts alone allow 16 a queue
    else:
        assert max(in_flight) == 3


def test_a_frame_bigger_than_the_limit_still_goes_through() -> None:
    sunk: list[str] = []
    records = [FrameRecord(Frame(f"f{i}", "x", i, np.zeros(FRAME_BYTES, np.uint8))) for i in range(3)]
    run_stages(iter(records), [Stage("a", _slowly)], lambda r: sunk.append(r.frame.name), queue_size=16, max_bytes=1)
    assert sunk == ["f0", "f1", "f2"]


@pytest.mark.parametrize("error, line", [(ModelError("weights missing: yunet.onnx"), "weights missing: yunet.onnx"),
                                         (ValueError("no box"), "stage failed: ValueError: no box")])
def test_a_failing_stage_is_the_line_a_worker_process_gives(error: Exception, line: str) -> None:
    """Threads and workers share ``stage_failure_message``: facekit's own errors as they are,
    anything else with its type; the original stays the cause."""
    def fail(batch: list[FrameRecord]) -> None:
        raise error

    records = [FrameRecord(Frame("f0", "x", 0, np.zeros(4, np.uint8)))]
    with pytest.raises(StageFailure) as failure:
        run_stages(iter(records), [Stage("a", fail)], lambda r: None, queue_size=16)
    assert str(failure.value) == line and failure.value.__cause__ is error
