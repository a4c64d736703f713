"""Decoded frames from the calling process to a worker: raw pixel bytes written straight into the
array that receives them. Used where shared slots cannot be (``facekit.engine.frame_slots``: no
``memfd_create``, or a frame larger than its slot).

``Connection.recv_bytes_into`` gathers a message in a ``BytesIO`` of freshly allocated chunks
before copying it to the array; on the 2-core machine that cost the receiving worker 29 ms of CPU
for each 3840x2160 frame (25 MB) and 4 ms for a 1920x1080 one, and the sender 21 ms. Reading
with ``os.readv`` into the array itself took 4.6 and 0.4 ms, and the sender 4.6 ms. The header
sent before the pixels (shape and dtype) says how many bytes follow, so no length prefix is
needed. Where ``os.readv`` is missing (Windows), the ``Connection`` methods carry the pixels.
"""
from __future__ import annotations

import os
from multiprocessing.connection import Connection

import numpy as np

_DIRECT = hasattr(os, "readv")


def send_pixels(conn: Connection, image: np.ndarray) -> None:
    """Writes ``image`` (C-contiguous) after its header; raises OSError when the worker is gone."""
    view = _bytes_of(image)
    if not _DIRECT:
        conn.send_bytes(view)
        return
    fd, sent = conn.fileno(), 0
    while sent < len(view):
        sent += os.write(fd, view[sent:])


def receive_pixels(conn: Connection, image: np.ndarray) -> None:
    """Fills ``image`` (C-contiguous, its shape and dtype from the header) with the bytes
    ``send_pixels`` wrote; raises EOFError when the sender is gone part-way."""
    view = _bytes_of(image)
    if not _DIRECT:
        conn.recv_bytes_into(view)
        return
    fd, got = conn.fileno(), 0
    while got < len(view):
        count = os.readv(fd, [view[got:]])
        if count == 0:
            raise EOFError("the calling process closed the pipe in the middle of a frame")
        got += count


def _bytes_of(image: np.ndarray) -> memoryview:
    """The array's memory as flat bytes. A view that is not contiguous is refused: ``reshape``
    would quietly copy it, and the pixels received would fill the copy, not the array."""
    if not image.flags.c_contiguous:
        raise ValueError("pixels travel from and into C-contiguous arrays only")
    return memoryview(image.reshape(-1)).cast("B")
