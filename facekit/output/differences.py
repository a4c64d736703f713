"""What differs between two sets of settings, named for a refusal: a rerun with other settings
is refused with the settings that differ, whether an alignments file's fingerprint or a
collection's settings found them."""
from __future__ import annotations

import json
from typing import Any, Iterator

MOST_NAMED = 5  # a refusal names this many settings, then a count


def setting_differences(found: Any, wanted: Any) -> str:
    """Every setting (dotted, in key order) whose value differs: ``sample.every_n: 1 there, 5 now``."""
    named = list(_differing(found, wanted, ""))
    shown = "; ".join(named[:MOST_NAMED])
    return shown + (f"; and {len(named) - MOST_NAMED} more" if len(named) > MOST_NAMED else "")


def _differing(found: Any, wanted: Any, key: str) -> Iterator[str]:
    if isinstance(found, dict) and isinstance(wanted, dict):
        for name in sorted(found.keys() | wanted.keys()):
            if found.get(name) != wanted.get(name):
                yield from _differing(found.get(name), wanted.get(name), f"{key}.{name}" if key else name)
        return
    yield f"{key or 'settings'}: {_shown(found)} there, {_shown(wanted)} now"


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
