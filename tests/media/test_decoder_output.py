"""What a native decoder prints to fd 2 is caught for the file's warning, while Python's own
stderr (the log, the progress bar) keeps reaching the terminal from other threads meanwhile."""
from __future__ import annotations

import subprocess
import sys

from facekit.media.decoder_output import python_stderr_apart

SCRIPT = r"""
import os, sys, threading
from facekit.media.decoder_output import DecoderOutput, python_stderr_apart

with python_stderr_apart() as apart:
    assert apart
    output = DecoderOutput()
    with output.caught() as said:
        os.write(2, b"Corrupt JPEG data: as libjpeg writes it\n")  # native code writes fd 2 itself
        talker = threading.Thread(target=lambda: print("progress, from another thread", file=sys.stderr))
        talker.start()
        talker.join()
    print(repr(said))
    with output.caught() as again:
        pass
    print(repr(again))
print("after, on fd 2 again", file=sys.stderr)
"""


def test_native_lines_are_caught_and_python_output_still_shows() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['Corrupt JPEG data: as libjpeg writes it']", "[]"]
    assert result.stderr.splitlines() == ["progress, from another thread", "after, on fd 2 again"]


def test_a_stderr_that_is_not_fd_2_is_left_alone(capsys) -> None:
    """Under a capture (pytest's here), sys.stderr is no file descriptor: nothing is split, so
    what is written keeps going to the capture."""
    before = sys.stderr
    with python_stderr_apart() as apart:
        assert not apart and sys.stderr is before
        print("captured", file=sys.stderr)
    assert capsys.readouterr().err == "captured\n"
