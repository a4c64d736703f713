"""A drop reason's kind: one key of ``counts.dropped``, and one column of a curation sweep's
report, whatever N, file or distance the reason names, so jobs that swept ``curate.best`` read
in one column."""
from __future__ import annotations

import pytest

from facekit.curate.decide import UNCLUSTERED_REASON, UNREADABLE
from facekit.curate.result import drop_kind


@pytest.mark.parametrize(("reason", "kind"), [
    ("not among best 1", "not_among_best"),
    ("not among best 3", "not_among_best"),
    ("duplicate of p01/img2_0.png (distance 0.042)", "duplicate"),
    (UNCLUSTERED_REASON, "unclustered"),
    ("rejected at extraction: yaw 52.3 > 30", "rejected_at_extraction"),
    ("rejected at extraction: mean distance to refs 0.612 > threshold 0.400", "rejected_at_extraction"),
    (UNREADABLE, "unreadable"),
])
def test_every_reason_of_one_kind_counts_under_one_key_without_spaces(reason: str, kind: str) -> None:
    assert drop_kind(reason) == kind
