"""Overrides as people type them: a ``key=value`` whose value Hydra's override grammar refuses
(``input=fötos``, ``output=出力``, ``input=Photos (2024)``, ``input=Tom & Jerry``) has that value
quoted for Hydra, each comma-separated element and each list item on its own, so a sweep stays a
sweep and a list a list. What Hydra parses already is never touched (sweeps, ``${...}``, ``null``,
numbers, bools keep their meaning); what still cannot be parsed is one line that says how to quote."""
from __future__ import annotations

import os
import re
import shlex
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

from facekit.console import hydra_quoted
from facekit.errors import ConfigError

if TYPE_CHECKING:
    from hydra.core.override_parser.overrides_parser import OverridesParser

_OVERRIDE = re.compile(r"^(~|\+\+?)?([^=]*)=(.*)$", re.DOTALL)
#: Hydra's flags that take the next argument as their value (a config dir, a package name).
FLAGS_WITH_VALUE = frozenset({"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name",
                               "-cd", "--config-dir", "--experimental-rerun"})
_FUNCTION_CALL = re.compile(r"^([A-Za-z_]\w*)\s*\((.*)\)$", re.DOTALL)
_NAMED_ARGUMENT = re.compile(r"^\s*([A-Za-z_]\w*)\s*=(.*)$", re.DOTALL)
#: What a backslash escapes in an unquoted value (Hydra's lexer, ESC); elsewhere it is itself.
_ESCAPABLE = "\\()[]{}:=, \t"
_OPEN = {"[": "]", "(": ")", "{": "}"}


def quote_overrides(argv: Sequence[str]) -> list[str]:
    """``argv`` with every override Hydra would refuse rewritten so that it reads it as typed.
    Flags, and the values of Hydra's flags that take one, pass through. Raises ConfigError."""
    rewritten: list[str] = []
    flag_value = False
    sweeping = is_a_sweep(argv)
    for arg in argv:
        if flag_value or arg.startswith("-"):
            flag_value = not flag_value and arg in FLAGS_WITH_VALUE
            rewritten.append(arg)
        else:
            rewritten.append(quote_override(arg, sweeping))
    return rewritten


def is_a_sweep(argv: Sequence[str]) -> bool:
    """Whether the command line asks for a sweep (``-m``): its commas separate values to sweep."""
    return bool({"-m", "--multirun"} & set(argv))


#: List keys, and an example of each as a list is written.
LIST_KEYS = {"filter.refs": "[a.jpg,b.jpg]", "filter.nrefs": "[a.jpg,b.jpg]", "collection.include": "[photos,clips/**]",
             "collection.exclude": "[photos,clips/**]", "output.masks": "[components,extended]"}
#: Keys whose value is one path: outside a sweep, a comma in it is part of the name.
PATH_KEYS = frozenset({"input", "output", "output.dir", "recrop.sources", "mask.import", "models.cache_dir"})
#: Path keys whose folder a run makes: outside a sweep, a name still to be made is one path.
_MADE = frozenset({"output", "output.dir"})


def quote_override(arg: str, sweeping: bool = True) -> str:
    """One ``key=value`` argument, its value quoted where Hydra cannot read it unquoted.
    Outside a sweep a path key's value with a comma (``output=take 1,2``, a folder still to be
    made) is one path: Hydra would refuse it as ambiguous."""
    match = _OVERRIDE.match(arg)
    if match is not None and (path := _one_path(match.group(2), match.group(3), sweeping)) is not None:
        return f"{match.group(1) or ''}{match.group(2)}={hydra_quoted(path)}"
    if match is not None and (listed := _listed_paths_escaped(match.group(3))) is not None:
        return f"{match.group(1) or ''}{match.group(2)}={listed}"
    if match is None or _parses(arg):
        return arg  # no value to quote (``~key``, a stray word): Hydra's own message applies
    prefix, key, value = (match.group(1) or ""), match.group(2), match.group(3)
    if not _parses(f"{prefix}{key}=x"):
        raise ConfigError(f"cannot read the override '{arg}': '{key}' is not a config key "
                          f"(facekit --help lists them)")
    quoted = f"{prefix}{key}=" + ",".join(_quote_element(element) for element in _split(value))
    if not _parses(quoted):
        stripped = value.strip()
        if key in LIST_KEYS and stripped.count("[") > stripped.count("]"):  # quoted, it would be a string
            raise ConfigError(f"cannot read the override '{arg}': its list has no closing ']': "
                              f"{shell_quoted(f'{prefix}{key}={stripped}]')}")
        items = _items_quoted(stripped) if key in LIST_KEYS else None
        if items is not None and all(os.path.lexists(item) for item in _strip_list(stripped)):
            return f"{prefix}{key}={items}"  # files named with brackets ([1].jpg): each read as named
        # a list's items are quoted one by one: the whole list quoted would be one string
        example = shell_quoted(f"{prefix}{key}={items if items is not None else hydra_quoted(stripped)}")
        raise ConfigError(f"cannot read the override '{arg}': quote the value, e.g. {example}")
    return quoted


def _strip_list(value: str) -> list[str]:
    """The items of ``[a,b]`` as typed between its brackets and commas."""
    return [item.strip() for item in value[1:-1].split(",")]


def _items_quoted(value: str) -> str | None:
    """``[a,b]`` with each item quoted for Hydra (``['[1].jpg']``), where that parses; else None."""
    if not (value.startswith("[") and value.endswith("]")):
        return None
    items = "[" + ",".join(hydra_quoted(item) for item in _strip_list(value)) + "]"
    return items if _parses(f"k={items}") else None


def _one_path(key: str, value: str, sweeping: bool) -> str | None:
    """``value`` as the one path it names, to be quoted whole, or None where Hydra reads it as
    it is meant. ``input=clips/take 1,2.mp4``: Hydra reads the comma as a sweep (or refuses it
    as ambiguous), but the whole value names a file or folder that exists and its pieces do not
    all exist; outside a sweep, so is a path key's value still to be made (``output=take 1,2``).
    ``input=photo${1}.jpg``, which exists: its ``${`` is escaped, where OmegaConf would look
    for a key ``1`` (a path still to be made keeps its ``${``: an interpolation, as typed)."""
    if value[:1] in "[{" and key in PATH_KEYS and (os.path.lexists(value) or (not sweeping and key in _MADE)):
        return value  # input=[2024] Summer, output=[new]: no path key takes a list or a mapping
    if value[:1] in "[{'\"":
        return None
    if os.path.lexists(value):
        if "${" in value:
            return value.replace("${", "\\${")  # OmegaConf's escape: not an interpolation
        if "," in value and not all(os.path.lexists(piece) for piece in value.split(",")):
            return value
    if not sweeping and key in PATH_KEYS and "," in value:
        return value
    return None


def _listed_paths_escaped(value: str) -> str | None:
    """A list value (``filter.refs=[a.jpg,x ${1}.jpg]``) whose items include a file that exists
    with ``${`` in its name, each item quoted as ``_quote_element`` does (that one escaped); None
    for any other value. Hydra reads such a list whole, the ``${`` as an interpolation."""
    text = value.strip()
    if "${" not in text or not (text.startswith("[") and text.endswith("]")):
        return None
    items = _split(text[1:-1])
    if not any("${" in _strip(item) and os.path.lexists(_strip(item)) for item in items):
        return None
    return "[" + ",".join(_quote_element(item) for item in items) + "]"


def shell_quoted(override: str) -> str:
    """An override the way it is typed in a POSIX shell so that its quotes reach facekit."""
    if not re.search(r"[\"$`\\!]", override):
        return f'"{override}"'
    return shlex.quote(override)


def _quote_element(element: str) -> str:
    """One element of a value (a sweep's item, a list's item, a function's argument), quoted
    unless Hydra reads it as it is; lists and Hydra's functions are quoted item by item."""
    text = _strip(element)
    if "${" in text and os.path.lexists(text):  # a file that exists (a reference photo): its ``${`` is no interpolation
        return hydra_quoted(text.replace("${", "\\${"))
    if not text or _parses("k=" + text):
        return text
    if text[0] == "[" and text[-1] == "]":
        return "[" + ",".join(_quote_element(item) for item in _split(text[1:-1])) + "]"
    call = _FUNCTION_CALL.match(text)
    if call is not None and call.group(1) in _function_names():
        arguments = [_quote_argument(argument) for argument in _split(call.group(2))]
        rewritten = f"{call.group(1)}({','.join(arguments)})"
        if _parses("k=" + rewritten):
            return rewritten  # else it is a name with parentheses: quoted below
    if text[0] in "[{" or (len(text) > 1 and text[0] in "'\"" and text[-1] == text[0]):
        return text  # a list, a dict or a quoted value gone wrong: the user's to fix
    return hydra_quoted(_unescape(text))


def _quote_argument(argument: str) -> str:
    named = _NAMED_ARGUMENT.match(argument)
    return f"{named.group(1)}={_quote_element(named.group(2))}" if named else _quote_element(argument)


def _split(value: str) -> list[str]:
    """``value`` cut at the commas Hydra separates elements at: not inside brackets, braces,
    parentheses, an interpolation or a quoted element, and not escaped (``\\,``)."""
    parts: list[str] = []
    closers: list[str] = []
    start = i = 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            i += 2
            continue
        if value.startswith("${", i):
            end = value.find("}", i)
            i = len(value) if end < 0 else end + 1
            continue
        if char in "'\"" and not value[start:i].strip() and not closers:
            end = value.find(char, i + 1)  # a quoted element, if it is closed before a comma
            if end > 0 and not value[end + 1:].split(",", 1)[0].strip():
                i = end + 1
                continue
        if char in _OPEN:
            closers.append(_OPEN[char])
        elif closers and char == closers[-1]:
            closers.pop()
        elif char == "," and not closers:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def _strip(element: str) -> str:
    """Hydra drops the blanks around an unquoted value, but not an escaped one (``\\ ``)."""
    return re.sub(r"(?<!\\)[ \t]+\Z", "", element.lstrip(" \t"))


def _unescape(text: str) -> str:
    """What Hydra makes of an unquoted value: ``\\,`` is ``,`` (and so on for ``_ESCAPABLE``),
    ``${...}`` stays as typed, every other character is itself."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("${", i) and (end := text.find("}", i)) > 0:
            out.append(text[i:end + 1])
            i = end + 1
        elif text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPABLE:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _parses(override: str) -> bool:
    try:
        _parser().parse_override(override)
    except Exception:  # Hydra's parse errors, and anything its visitor lets through, mean "no"
        return False
    return True


@lru_cache(maxsize=1)
def _parser() -> OverridesParser:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _function_names() -> frozenset[str]:
    return frozenset(_parser().functions.functions)
