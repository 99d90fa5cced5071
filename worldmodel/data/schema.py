"""Check that JSON read from a file has the shape of a dataclass, before building one from it.

A file that parses but has the wrong shape (``[]``, an entry with ``"file": null``) would
otherwise fail later, far from the file, with an ``AttributeError`` or ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

_JSON_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _json_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list"}.get(type(value), repr(value))


def _check(tp: Any, value: Any, where: str) -> None:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        check_fields(tp, value, where)
    elif origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where} should be a list, not {_json_name(value)}")
        for i, item in enumerate(value):
            _check(args[0], item, f"{where}[{i}]")
    elif tp in _JSON_NAMES:
        # JSON has one number type: an int is a fine float; a bool is no number here
        ok = (int, float) if tp is float else (tp,)
        if not isinstance(value, ok) or (tp is not bool and isinstance(value, bool)):
            raise ValueError(f"{where} should be {_JSON_NAMES[tp]}, not {_json_name(value)}")


def check_fields(cls: type, data: Any, where: str = "") -> None:
    """Raise ValueError, naming the field, unless ``data`` is an object holding every field of
    dataclass ``cls`` that has no default, each of its declared type (unknown keys are fine)."""
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'the top level'} should be an object, not {_json_name(data)}")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in data:
            if required:
                raise ValueError(f"{where or 'it'} has no {f.name!r}")
            continue
        _check(hints[f.name], data[f.name], f"{where}.{f.name}" if where else f.name)
