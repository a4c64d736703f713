"""Frames cross to a worker as raw bytes read straight into the receiving array: every byte
arrives, frames bigger than the socket's buffer arrive whole, and the messages around them stay
in step."""
from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from facekit.engine.pixel_pipe import receive_pixels, send_pixels


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        rng.integers(0, 256, (2160, 3840, 3), dtype=np.uint8),  # 25 MB: many partial reads and writes
        rng.integers(0, 256, (1, 1, 3), dtype=np.uint8),
        rng.integers(0, 65536, (333, 517), dtype=np.uint16),  # odd sizes, two bytes a sample
        rng.integers(0, 256, (360, 640, 4), dtype=np.uint8),
    ]


def test_frames_and_messages_arrive_whole_and_in_step() -> None:
    ours, theirs = multiprocessing.Pipe(duplex=True)  # the socket pair WorkerPool uses
    frames = _frames()

    def send() -> None:
        for index, frame in enumerate(frames):
            ours.send((index, frame.shape, frame.dtype.str))
            send_pixels(ours, frame)
        ours.send("end")

    sender = threading.Thread(target=send)
    sender.start()
    received = []
    while (header := theirs.recv()) != "end":
        index, shape, dtype = header
        image = np.empty(shape, np.dtype(dtype))
        receive_pixels(theirs, image)
        received.append((index, image))
    sender.join()
    assert [index for index, _ in received] == list(range(len(frames)))
    for (_, image), frame in zip(received, frames):
        assert np.array_equal(image, frame)


def test_a_frame_cut_short_is_an_end_of_file() -> None:
    ours, theirs = multiprocessing.Pipe(duplex=True)
    send_pixels(ours, np.arange(400, dtype=np.uint16))  # 800 of the 2000 bytes the header promised
    ours.close()  # the calling process went away part-way
    with pytest.raises(EOFError, match="in the middle of a frame"):
        receive_pixels(theirs, np.empty(1000, np.uint16))
