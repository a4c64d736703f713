"""Range checks for a plugin's options, called from its config dataclass's ``__post_init__``:
a value its type allows but the model cannot use (a score threshold of 2, a region scale of 0)
is refused with one line before any model loads, instead of failing on the first frame with the
library's own error (or finding no face without a word).

    @dataclass
    class MyConfig:
        score_threshold: float = 0.5
        batch_size: int = 8

        def __post_init__(self) -> None:
            fractions(self, "score_threshold")
            at_least(self, 1, "batch_size")

Each raises ``ValueError`` naming the option; the registry turns it into the run's one-line
error (``facekit: error: detector mine: score_threshold must be ...``, exit 2).
"""
from __future__ import annotations

from typing import Any


def fractions(config: Any, *names: str) -> None:
    """Each option in [0, 1] (one left at None keeps its plugin's default)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def positive(config: Any, *names: str) -> None:
    """Each option above 0."""
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"{name} must be above 0, got {value!r}")


def at_least(config: Any, minimum: int, *names: str) -> None:
    """Each option a whole number of at least ``minimum``."""
    for name in names:
        value = getattr(config, name)
        if value < minimum:
            raise ValueError(f"{name} must be {minimum} or more, got {value!r}")
