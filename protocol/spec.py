"""Named specs, ``name`` or ``name:key=value,...``, as users write them on the CLI and in TOML.

Codecs (``topk:fraction=0.01``), topologies (``random_regular:d=4``), partitions
(``dirichlet:alpha=0.1``) and failure models all share this one syntax and this one parser.

>>> parse_spec("random_regular:d=4,seed=7")
Spec(name='random_regular', params={'d': 4, 'seed': 7})
>>> str(parse_spec("topk:fraction=0.01"))
'topk:fraction=0.01'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from protocol.errors import ConfigError

__all__ = ["Param", "ParamChecks", "Spec", "check_named_spec", "parse_spec"]

Param: TypeAlias = int | float | str | bool
ParamChecks: TypeAlias = Mapping[str, Mapping[str, Callable[[str, Param], None]]]
"""Each known name -> its parameters -> a check that raises ConfigError (given name, value)."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Spec:
    """A parsed ``name:key=value,...`` string. ``params`` keeps the user's order."""

    name: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.params.items())

    def expect(self, *allowed: str) -> None:
        """Raise ConfigError naming any parameter not in ``allowed``."""
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            accepted = ", ".join(allowed) if allowed else "none"
            raise ConfigError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}; accepted: {accepted}"
            )


def _parse_value(text: str) -> Param:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_spec(text: str) -> Spec:
    """Parse ``name[:key=value[,key=value...]]``; values become int, float, bool or str."""
    name, _, rest = text.strip().partition(":")
    if not _NAME.match(name):
        raise ConfigError(f"invalid name {name!r} in {text!r}; expected name[:key=value,...]")
    params: dict[str, Param] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not _NAME.match(key) or not value.strip():
            raise ConfigError(f"invalid parameter {item!r} in {text!r}; expected key=value")
        if key in params:
            raise ConfigError(f"parameter {key!r} given twice in {text!r}")
        params[key] = _parse_value(value.strip())
    return Spec(name, params)


def check_named_spec(spec: Spec | str, known: ParamChecks, *, kind: str) -> Spec:
    """The parsed spec if ``known`` has its name and every parameter passes; else ConfigError.

    >>> check_named_spec("b", {"a": {}}, kind="codec")
    Traceback (most recent call last):
    ...
    protocol.errors.ConfigError: unknown codec 'b'; expected one of a
    """
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    params = known.get(parsed.name)
    if params is None:
        raise ConfigError(f"unknown {kind} {parsed.name!r}; expected one of {', '.join(known)}")
    parsed.expect(*params)
    for key, value in parsed.params.items():
        params[key](parsed.name, value)
    return parsed
