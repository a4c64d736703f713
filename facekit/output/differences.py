"""What differs between two sets of settings, named for a refusal: a rerun with other settings
is refused with the settings that differ, whether an alignments file's fingerprint or a
collection's settings found them."""
from __future__ import annotations

import json
from typing import Any, Iterator

from facekit.output.reference_digests import is_digest_list, references_by_content

MOST_NAMED = 5  # a refusal names this many settings, then a count


def setting_differences(found: Any, wanted: Any) -> str:
    """Every setting (dotted, in key order) whose value differs: ``sample.every_n: 1 there, 5 now``."""
    named = list(_differing(found, wanted, ""))
    shown = "; ".join(named[:MOST_NAMED])
    return shown + (f"; and {len(named) - MOST_NAMED} more" if len(named) > MOST_NAMED else "")


#: Fingerprint keys kept since files were written without them: a file that lacks one was made
#: before it was kept, and is compared without it (so it still resumes).
ADDED_SINCE = ("source",)


def same_fingerprint(found: Any, wanted: Any) -> bool:
    """Whether a file written with ``found`` may be resumed by a run whose fingerprint is ``wanted``."""
    if found == wanted:
        return True
    if not (isinstance(found, dict) and isinstance(wanted, dict)):
        return False
    found = references_by_content(found)  # an older file's reference photos as typed: by content now
    return found == {key: value for key, value in wanted.items() if key in found or key not in ADDED_SINCE}


#: Where an alignments meta records the last ``task=mask`` request, which also adds the masks it
#: made to the fingerprint (the extraction command with those masks resumes the folder).
MASK_TASK_KEY = "mask_task"


def masked_since(found_meta: Any, wanted: Any) -> bool:
    """Whether a file's fingerprint is ``wanted`` but for masks that ``task=mask`` added after
    its extraction, and ``wanted`` asks for none: the extraction's own command run again. Its
    frames are the same; only frames it would still do would lack the masks."""
    if not (isinstance(found_meta, dict) and MASK_TASK_KEY in found_meta and isinstance(wanted, dict)):
        return False
    found = found_meta.get("fingerprint")
    if not isinstance(found, dict) or "masks" not in found or "masks" in wanted:
        return False
    return same_fingerprint({key: value for key, value in found.items() if key != "masks"}, wanted)


def differences_named(found_meta: Any, wanted: Any) -> str:
    """``fingerprint_differences`` of a file's meta and a run's fingerprint, for a refusal: with
    masks that ``task=mask`` added since the extraction said to be those."""
    found = found_meta.get("fingerprint") if isinstance(found_meta, dict) else None
    said = fingerprint_differences(found, wanted)
    return said + ("; task=mask added those masks after the extraction" if masked_since(found_meta, wanted) else "")


def fingerprint_differences(found: Any, wanted: Any) -> str:
    """``setting_differences`` of two alignments fingerprints, each setting named by the key a
    user types (``detector.score_threshold``, ``output.centering``, ``output.masks``), not
    by where the fingerprint keeps it (``plugins.detector.config.score_threshold``)."""
    if not (isinstance(found, dict) and isinstance(wanted, dict)):
        return setting_differences(found, wanted)
    found = references_by_content(found)
    if found.get("input") != wanted.get("input"):  # another file: its content differing says nothing more
        found, wanted = ({key: value for key, value in side.items() if key != "source"} for side in (found, wanted))
    there, here = _typeable(*_with_defaults(_as_typed(found), _as_typed(wanted)))
    return setting_differences(there, here) or setting_differences(found, wanted)


#: Settings a fingerprint holds only when they are not at their default: absent is this value.
_ABSENT_MEANS = {"output.centering": "legacy", "output.embeddings": False, "sample.every_n": 1}


def _with_defaults(there: dict[str, Any], here: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both sides with a setting one of them holds and the other leaves at its default named at
    that default (``output.centering: "legacy" there, "head" now``, not ``unset there``)."""
    for key, default in _ABSENT_MEANS.items():
        if (key in there) != (key in here):
            there, here = {key: default, **there}, {key: default, **here}
    return there, here


#: Fingerprint settings no command sets: the identity plugin's metric (its ``+identity`` is named)
_DERIVED = ("filter.metric",)


def _typeable(there: dict[str, Any], here: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both sides without what a user cannot type: derived settings, and the options of a plugin
    only one side has (``+identity: unset there, "sface" now`` says it; its backend and threads
    beside it were noise, named though the user only added output.embeddings=true)."""
    alone = {key[1:] for key in there.keys() ^ here.keys() if key.startswith("+")}
    # a filter on one side only is named by its photos: the threshold beside them is the identity
    # plugin's default, which came with the filter, not a setting the user typed
    filters = [any(key.startswith("filter.") for key in side) for side in (there, here)]
    filter_alone = filters[0] != filters[1]

    def kept(key: str) -> bool:
        if filter_alone and key.startswith("filter.") and key not in ("filter.refs", "filter.nrefs"):
            return False
        return key not in _DERIVED and key.split(".", 1)[0] not in alone

    return ({key: value for key, value in there.items() if kept(key)},
            {key: value for key, value in here.items() if kept(key)})


#: Fingerprint keys kept under another name on the command line.
_TYPED_AS = {"size": "output.size", "padding": "output.padding", "centering": "output.centering",
             "embeddings": "output.embeddings", "source": "input's content (a video replaced under its name)"}


#: Settings a fingerprint holds at their default when their group is set (a sampled run's every_n).
_LEFT_OUT_AT = {"sample.every_n": 1}


def _as_typed(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint as flat ``key: value`` settings in the command's words; a setting left at
    null or its default (a group's key unset) is left out, as a group that is not set at all is."""
    typed: dict[str, Any] = {}
    for name, value in fingerprint.items():
        if name == "plugins" and isinstance(value, dict):
            for kind, plugin in value.items():
                plugin = plugin if isinstance(plugin, dict) else {}
                typed[f"+{kind}"] = plugin.get("name")
                typed.update((f"{kind}.{option}", setting) for option, setting in (plugin.get("config") or {}).items())
        elif name == "masks" and isinstance(value, dict):
            maskers = value.get("maskers") or {}
            typed["output.masks"] = sorted(maskers)
            typed["output.mask_size"] = value.get("size")
            for masker, options in maskers.items():
                typed.update((f"masker {masker}: {option}", setting) for option, setting in (options or {}).items())
        elif name in ("filter", "sample", "quality", "recrop") and isinstance(value, dict):
            typed.update((f"{name}.{key}", setting) for key, setting in value.items())
        else:
            typed[_TYPED_AS.get(name, name)] = value
    return {key: value for key, value in typed.items()
            if value is not None and value != [] and value != _LEFT_OUT_AT.get(key, ...)}


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
    if is_digest_list(found) and is_digest_list(wanted):  # reference photos, compared by content
        yield f"{key}: other reference photos there (compared by their content: one replaced, added or removed)"
        return
    yield f"{key or 'settings'}: {_shown(found)} there, {_shown(wanted)} now"


def _group(value: Any) -> bool:
    return value is None or value is _UNSET or isinstance(value, dict)


def _shown(value: Any) -> str:
    if is_digest_list(value):  # reference photos are kept by content: their count is what can be said
        return f"{len(value)} reference photo(s)"
    return "unset" if value is _UNSET else json.dumps(value, ensure_ascii=False)
