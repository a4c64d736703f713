"""Video frames in memory shared with a worker: whole, never overwritten while held, and the
pipe still carries what does not fit."""
from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from facekit.engine import frame_slots
from facekit.engine.frame_slots import SlotWriter, frame_in, receive_region

pytestmark = pytest.mark.skipif(not frame_slots.AVAILABLE, reason="no memfd_create here: frames go on the pipe")


def test_frames_placed_in_slots_are_read_whole_on_the_other_end() -> None:
    """The region travels as a descriptor on a real socket pair; the reading end maps it itself,
    so what it reads was shared, not copied into its mapping."""
    ours, theirs = multiprocessing.Pipe()
    rng = np.random.default_rng(3)
    first, second = (rng.integers(0, 256, (90, 160, 3), dtype=np.uint8) for _ in range(2))
    writer = SlotWriter(count=2)
    try:
        offsets = [writer.place(ours, 0, first), writer.place(ours, 1, second)]
        kind, size = theirs.recv()
        assert (kind, size) == ("slots", 2 * first.nbytes)
        region = receive_region(theirs, size)
        assert sorted(offsets) == [0, first.nbytes]
        assert np.array_equal(frame_in(region, offsets[0], first.shape, first.dtype.str), first)
        assert np.array_equal(frame_in(region, offsets[1], second.shape, second.dtype.str), second)
        assert not theirs.poll()  # the descriptor went once, with the first frame

        # both slots held: the third frame must go on the pipe, and nothing held is touched
        third = np.full_like(first, 7)
        assert writer.place(ours, 2, third) is None
        writer.release(0)
        assert writer.place(ours, 2, third) == offsets[0]  # the slot frame 0 left
        assert np.array_equal(frame_in(region, offsets[0], third.shape, third.dtype.str), third)
        assert np.array_equal(frame_in(region, offsets[1], second.shape, second.dtype.str), second)

        writer.release(1)
        bigger = np.zeros((91, 160, 3), np.uint8)  # a stream that changes size: the pipe takes it
        assert writer.place(ours, 3, bigger) is None
        smaller = np.full((20, 30), 9, np.uint16)
        offset = writer.place(ours, 4, smaller)
        assert offset == offsets[1]
        assert np.array_equal(frame_in(region, offset, smaller.shape, smaller.dtype.str), smaller)
    finally:
        writer.close()
        ours.close()
        theirs.close()


def test_without_memfd_every_frame_goes_on_the_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frame_slots, "AVAILABLE", False)
    ours, theirs = multiprocessing.Pipe()
    writer = SlotWriter(count=2)
    assert writer.place(ours, 0, np.ones((4, 4, 3), np.uint8)) is None
    assert not theirs.poll()
    ours.close()
    theirs.close()
