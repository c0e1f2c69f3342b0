"""Configs are dataclasses: saved as JSON with every run, read back (strictly) to resume one."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from nnlab.errors import NNLabError

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass `cls` from `data`; nested dataclasses recursively, lists to tuples where the
    field is a tuple; an unknown key is an error (a typo in a config must not pass silently)."""
    if not isinstance(data, dict):
        raise NNLabError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise NNLabError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        origin = typing.get_origin(hint)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif (
            origin is tuple
            or (
                origin in (typing.Union, types.UnionType)
                and any(typing.get_origin(a) is tuple for a in typing.get_args(hint))
            )
        ) and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)
