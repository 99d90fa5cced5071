"""``--set section.field=value`` overrides of model configs (ablations, custom sizes)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from worldmodel.cli.args import UserError


def _parse(value: str, tp: Any) -> Any:
    args = typing.get_args(tp)
    if value.lower() == "none" and type(None) in args:
        return None
    base = next((a for a in args if a is not type(None)), tp) if args else tp
    if base is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return base(value)


def apply_overrides(config: Any, section: str, items: list[str]) -> Any:
    """Return ``config`` with every ``section.field=value`` in ``items`` applied."""
    hints = typing.get_type_hints(type(config))
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        sec, dot, name = key.partition(".")
        if not sep or not dot:
            raise UserError(f"--set expects section.field=value, got {item!r}")
        if sec != section:
            continue
        if name not in hints:
            valid = ", ".join(f.name for f in dataclasses.fields(config))
            raise UserError(f"--set: {section} has no field {name!r}; fields: {valid}")
        try:
            changes[name] = _parse(value, hints[name])
        except ValueError as e:
            raise UserError(f"--set {item}: {e}") from None
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as e:
        raise UserError(f"--set: {e}") from None
