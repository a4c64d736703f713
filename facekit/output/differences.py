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


#: A setting one side does not have (a group left unset, a key an older version did not write).
_UNSET = object()


def _differing(found: Any, wanted: Any, key: str) -> Iterator[str]:
    """Down to the settings themselves: a group set on one side only (``quality``, ``masks``)
    is named key by key against "unset", not shown as a JSON object against null."""
    dicts = isinstance(found, dict), isinstance(wanted, dict)
    if all(dicts) or (key and any(dicts) and _group(found) and _group(wanted)):
        there, here = found if isinstance(found, dict) else {}, wanted if isinstance(wanted, dict) else {}
        for name in sorted(there.keys() | here.keys()):
            if there.get(name, _UNSET) != here.get(name, _UNSET):
                yield from _differing(there.get(name, _UNSET), here.get(name, _UNSET), f"{key}.{name}" if key else name)
        return
    yield f"{key or 'settings'}: {_shown(found)} there, {_shown(wanted)} now"


def _group(value: Any) -> bool:
    return value is None or value is _UNSET or isinstance(value, dict)


def _shown(value: Any) -> str:
    return "unset" if value is _UNSET else json.dumps(value, ensure_ascii=False)
