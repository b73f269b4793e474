"""Typed, bounded reads of envelope fields from an unpacked msgpack map.

Each getter raises MalformedMessage naming the field, the value it found (repr, truncated) and
what v1 expects. ``bool`` is never accepted where an int is expected, although Python says
``isinstance(True, int)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final, TypeAlias

from protocol.errors import MalformedMessage
from protocol.fingerprint import FINGERPRINT_HEX
from protocol.spec import Param, Spec
from protocol.topics import id_problem

__all__ = [
    "MAX_CODEC_PARAMS",
    "MAX_INT",
    "MAX_KEY_CHARS",
    "MAX_META_ITEMS",
    "MAX_META_STR",
    "MetaValue",
    "get_bytes",
    "get_codec",
    "get_id",
    "get_int",
    "get_meta",
    "get_model",
    "require",
    "short",
]

MetaValue: TypeAlias = int | float | str

MAX_INT: Final = 2**63 - 1
"""Every integer field fits a C int64_t."""
MAX_KEY_CHARS: Final = 32
MAX_META_ITEMS: Final = 16
MAX_META_STR: Final = 256
MAX_CODEC_PARAMS: Final = 16
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,31}")
_MODEL: Final = re.compile(f"[0-9a-f]{{{FINGERPRINT_HEX}}}")


def short(value: object) -> str:
    """``repr(value)``, cut to 60 characters so a hostile value cannot flood the log."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(key: str, value: object, expected: str) -> MalformedMessage:
    return MalformedMessage(f"envelope: field {key!r} is {short(value)}; expected {expected}")


def require(fields: Mapping[str, object], key: str) -> object:
    """The value of a required field."""
    if key not in fields:
        raise MalformedMessage(f"envelope: field {key!r} is missing; every v1 envelope has it")
    return fields[key]


def get_int(fields: Mapping[str, object], key: str, *, hi: int) -> int:
    """An int in [0, hi]."""
    value = require(fields, key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
        raise _bad(key, value, f"an integer from 0 to {hi}")
    return value


def get_bytes(fields: Mapping[str, object], key: str, *, max_len: int | None = None) -> bytes:
    """A msgpack bin, at most ``max_len`` bytes long."""
    value = require(fields, key)
    if not isinstance(value, bytes):
        raise _bad(key, value, "bin (bytes)")
    if max_len is not None and len(value) > max_len:
        raise _bad(key, value, f"at most {max_len} bytes, got {len(value)}")
    return value


def get_id(fields: Mapping[str, object], key: str) -> str:
    """A swarm or peer name, valid as one MQTT topic level."""
    value = require(fields, key)
    problem = id_problem(value)
    if problem is not None:
        raise MalformedMessage(f"envelope: field {key!r} {short(value)} {problem}")
    return value  # type: ignore[return-value]  # id_problem refuses non-strings


def get_model(fields: Mapping[str, object], key: str) -> str:
    """A model fingerprint: exactly 16 lowercase hex digits."""
    value = require(fields, key)
    if not isinstance(value, str) or not _MODEL.fullmatch(value):
        raise _bad(key, value, f"{FINGERPRINT_HEX} lowercase hex digits")
    return value


def _map(key: str, value: object, max_items: int) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _bad(key, value, "a map")
    if len(value) > max_items:
        raise _bad(key, f"a map of {len(value)} entries", f"at most {max_items}")
    for k in value:
        if not isinstance(k, str) or not 0 < len(k) <= MAX_KEY_CHARS:
            raise _bad(f"{key} key", k, f"a string of 1 to {MAX_KEY_CHARS} characters")
    return value


def _scalar(key: str, value: object, *, allow_bool: bool, max_str: int) -> Param:
    if isinstance(value, bool):
        if allow_bool:
            return value
    elif isinstance(value, int):
        if -MAX_INT - 1 <= value <= MAX_INT:
            return value
    elif isinstance(value, float):
        if math.isfinite(value):
            return value
    elif isinstance(value, str) and len(value) <= max_str:
        return value
    kinds = "bool, int64, finite float" if allow_bool else "int64, finite float"
    raise _bad(key, value, f"one of {kinds} or a string of at most {max_str} characters")


def get_codec(fields: Mapping[str, object], key: str) -> Spec:
    """The codec map ``{"name": str, "params": {str: bool | int | float | str}}``."""
    codec = _map(key, require(fields, key), max_items=2)
    name = codec.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _bad(f"{key}.name", name, "a codec name such as 'topk' (letters, digits, _ or -)")
    params = _map(f"{key}.params", codec.get("params"), MAX_CODEC_PARAMS)
    checked: dict[str, Param] = {}
    for k, v in params.items():
        if not _NAME.fullmatch(k):
            raise _bad(f"{key}.params key", k, "a parameter name (letters, digits, _ or -)")
        checked[k] = _scalar(f"{key}.params.{k}", v, allow_bool=True, max_str=64)
    return Spec(name, checked)


def get_meta(fields: Mapping[str, object], key: str) -> dict[str, MetaValue]:
    """The small ``meta`` map: string keys, int64 / finite float / short string values."""
    meta = _map(key, require(fields, key), MAX_META_ITEMS)
    return {
        k: _scalar(f"{key}.{k}", v, allow_bool=False, max_str=MAX_META_STR) for k, v in meta.items()
    }
