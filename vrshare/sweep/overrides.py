"""``--set KEY=V1,V2,...``: a dotted key of a run file and the values it sweeps.

A key names a value of the run file's TOML as dots would: ``display.width``,
``pipeline.frame_hz``, ``stage.scene_filter.settings.budget``. In a list of tables a
segment is a 1-based index (``scene.object.2.scale``, as the run file's errors count
``[[stage]] #2``); a stage may also be named by its ``name`` or its ``type``.

Values are TOML values (``256``, ``0.5``, ``true``, ``"text"``, ``[1, 2]``) separated by
commas; a bare word that is not TOML (``virtual``) is taken as a string. Whether a key
and a value are right is not decided here: the overridden table goes through the run
file's own validation (:func:`vrshare.config.parse_run_file`, the stages' settings),
whose errors name the file and key.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError


class SweepError(ConfigError):
    """A ``--set`` or a sweep's setting is malformed; the message names it."""


@dataclass(frozen=True)
class Override:
    """One ``--set``: the dotted key and the values swept, in the order given."""

    key: str
    values: tuple[Any, ...]

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split("."))


def _value(text: str) -> Any:
    """One value: TOML, or a bare word as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set(text: str) -> Override:
    """``"display.width=256,512"`` -> ``Override("display.width", (256, 512))``."""
    key, eq, values = text.partition("=")
    key = key.strip()
    if not eq or not key or not values.strip():
        raise SweepError(f"--set {text!r}: expected KEY=V1,V2,... (e.g. display.width=256,512)")
    if any(not part for part in key.split(".")):
        raise SweepError(f"--set {text!r}: {key!r} is not a dotted key (e.g. display.width)")
    try:  # the whole list as one TOML array keeps commas inside arrays and strings
        parsed = tuple(tomllib.loads(f"v = [{values}]")["v"])
    except tomllib.TOMLDecodeError:
        parsed = tuple(_value(v.strip()) for v in values.split(","))
    if any(v == "" for v in parsed):
        raise SweepError(f"--set {text!r}: an empty value")
    return Override(key, parsed)


def _stage_index(stages: list[Any], selector: str, key: str) -> int:
    """The 0-based index of the ``[[stage]]`` a key's selector names."""
    if selector.isdigit():
        i = int(selector) - 1
        if 0 <= i < len(stages):
            return i
        raise SweepError(f"--set {key}: there is no [[stage]] #{selector} "
                         f"(the file has {len(stages)})")
    for field in ("name", "type"):
        found = [i for i, st in enumerate(stages)
                 if isinstance(st, dict) and st.get(field) == selector]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            numbers = ", ".join(f"#{i + 1}" for i in found)
            raise SweepError(f"--set {key}: {field} {selector!r} matches stages {numbers}; "
                             f"name one by its number (stage.{found[0] + 1}...)")
    names = ", ".join(f"#{i + 1} {st.get('name') or st.get('type')}" for i, st in
                      enumerate(stages) if isinstance(st, dict))
    raise SweepError(f"--set {key}: no [[stage]] is named or typed {selector!r} "
                     f"(stages: {names or 'none'})")


def apply(table: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the run file's TOML ``table`` with each dotted key of
    ``settings`` set to its value (missing tables are made)."""
    out = copy.deepcopy(table)
    for key, value in settings.items():
        node: Any = out
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part, key, parts[:depth])
        last = parts[-1]
        if isinstance(node, list):
            node[_list_index(node, last, key, parts[:-1])] = value
        else:
            node[last] = value
    return out


def _list_index(node: list[Any], part: str, key: str, above: list[str]) -> int:
    if above == ["stage"]:
        return _stage_index(node, part, key)
    if not part.isdigit() or not 1 <= int(part) <= len(node):
        raise SweepError(f"--set {key}: {'.'.join(above)} is a list of {len(node)}; "
                         f"expected a number 1..{len(node)}, got {part!r}")
    return int(part) - 1


def _child(node: Any, part: str, key: str, above: list[str]) -> Any:
    """The table or list under ``part`` of ``node``; a missing table is made."""
    if isinstance(node, list):
        child = node[_list_index(node, part, key, above)]
    elif isinstance(node, dict):
        child = node.setdefault(part, {})
    else:
        child = None
    if not isinstance(child, dict | list):
        where = ".".join([*above, part])
        raise SweepError(f"--set {key}: {where} is a value, not a table")
    return child


__all__ = ["Override", "SweepError", "apply", "parse_set"]
