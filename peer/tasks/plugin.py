"""User plug-ins named ``package.module:function[:key=value,...]``.

The part before the second colon names an importable module and a function in it; the optional
rest uses the ``key=value,...`` syntax of every other spec (values become int, float, bool or
str) and is passed to the function as keyword arguments. So ``mysensors:net:channels=3,classes=6``
calls ``mysensors.net(channels=3, classes=6)``. The module is imported from the working directory
or the installed environment.

Every failure (bad syntax, import error, missing function, an exception inside it) becomes a
:class:`PluginError`, a ConfigError whose one-line message names the plug-in.

>>> ref = parse_plugin("math:dist")
>>> ref.module, ref.function, dict(ref.kwargs)
('math', 'dist', {})
>>> parse_plugin("collections:Counter:a=1").call().most_common()
[('a', 1)]
>>> is_plugin("mlp:hidden=3"), is_plugin("pkg.mod:net:classes=6")
(False, True)
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from protocol.errors import ConfigError
from protocol.spec import Param, parse_spec

__all__ = [
    "LOSSES",
    "METRICS",
    "NPZ_LOADER",
    "DataRef",
    "PluginError",
    "PluginRef",
    "data_ref",
    "is_plugin",
    "metric_key",
    "parse_plugin",
]

LOSSES = ("cross_entropy", "mse")
METRICS = ("accuracy", "mse")
NPZ_LOADER = "peer.tasks.npz:npz_data"
"""The function behind the built-in data name ``npz`` (same signature as a data plug-in)."""

_REF = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)(?::(.*))?$")


class PluginError(ConfigError):
    """A user plug-in cannot be loaded, or misbehaves (exit 2)."""


def is_plugin(text: str) -> bool:
    """Whether ``text`` has the plug-in form (a built-in spec never does: it has no bare name
    after its colon)."""
    return bool(_REF.match(text.strip()))


@dataclass(frozen=True)
class PluginRef:
    """A parsed plug-in reference; ``str()`` gives back its canonical text."""

    module: str
    function: str
    kwargs: Mapping[str, Param] = field(default_factory=dict)

    def __str__(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.module}:{self.function}" + (f":{args}" if args else "")

    def load(self, role: str = "plug-in") -> Callable[..., object]:
        """Import the module and return the function (PluginError naming it otherwise)."""
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, "")  # the working directory, as `python -m` would have it
        try:
            module = importlib.import_module(self.module)
        except Exception as exc:
            raise PluginError(f"{role} {str(self)!r}: cannot import {self.module}: {exc}") from exc
        func = getattr(module, self.function, None)
        if not callable(func):
            raise PluginError(
                f"{role} {str(self)!r}: module {self.module} has no function {self.function!r}"
            )
        return func  # type: ignore[no-any-return]

    def call(self, *args: object, role: str = "plug-in") -> object:
        """Load and call with ``args`` and the keyword arguments of the reference."""
        func = self.load(role)
        try:
            return func(*args, **self.kwargs)
        except ConfigError:
            raise
        except Exception as exc:
            raise PluginError(f"{role} {str(self)!r} failed: {type(exc).__name__}: {exc}") from exc


def parse_plugin(text: str, role: str = "plug-in") -> PluginRef:
    """Parse ``package.module:function[:key=value,...]`` (PluginError if malformed)."""
    match = _REF.match(text.strip())
    if match is None:
        raise PluginError(f"{role} {text!r}: expected package.module:function[:key=value,...]")
    module, function, rest = match.groups()
    kwargs: Mapping[str, Param] = {}
    if rest:
        try:
            kwargs = parse_spec(f"{function}:{rest}").params
        except ConfigError as exc:
            raise PluginError(f"{role} {text!r}: {exc}") from exc
    return PluginRef(module, function, kwargs)


DataRef = PluginRef


def data_ref(text: str) -> DataRef:
    """Parse a data spec: ``npz:path=FILE`` or ``package.module:function[:key=value,...]``.

    >>> str(data_ref("npz:path=sensors.npz"))
    'peer.tasks.npz:npz_data:path=sensors.npz'
    """
    if text.startswith("npz:") or text == "npz":
        spec = parse_spec(text)
        spec.expect("path")
        if "path" not in spec.params:
            raise PluginError(f"data {text!r}: expected npz:path=FILE")
        module, _, function = NPZ_LOADER.partition(":")
        return PluginRef(module, function, dict(spec.params))
    return parse_plugin(text, "data")


def metric_key(metric: str) -> str:
    """The short name a metric's values go under in stats, tables and files: ``accuracy``,
    ``mse``, or a plug-in's function name.

    >>> metric_key("accuracy"), metric_key("mse"), metric_key("pkg.scores:f1:average=macro")
    ('accuracy', 'mse', 'f1')
    """
    match = _REF.match(metric.strip())
    return match.group(2) if match else metric
