"""Checks of the named task, model and partition specs, without importing torch.

:mod:`peer.tasks.models` and :mod:`peer.tasks.partition` build from the same checked specs, so
a bad spec is found when the config is loaded, not after the data set has been read.

>>> check_model_spec("mlp:hidden=32").params["hidden"], str(check_partition_spec("iid"))
(32, 'iid')
>>> check_partition_spec("dirichlet:alpha=0")
Traceback (most recent call last):
...
protocol.errors.ConfigError: dirichlet needs alpha=<positive number>, got 0
"""

from __future__ import annotations

import re

from protocol.errors import ConfigError
from protocol.spec import Spec, parse_spec

__all__ = [
    "BUILTIN_TASKS",
    "check_model_spec",
    "check_partition_spec",
    "check_task",
    "positive_param",
]

BUILTIN_TASKS = ("consensus", "synthetic", "fmnist", "mnist")
_PLUGIN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def check_task(name: str) -> str:
    """A built-in task or a plug-in ``package.module:function``; ConfigError otherwise.

    >>> check_task("fmnistt")
    Traceback (most recent call last):
    ...
    protocol.errors.ConfigError: unknown task 'fmnistt'; expected one of consensus, synthetic, \
fmnist, mnist or a plug-in 'package.module:function'
    """
    if name not in BUILTIN_TASKS and not _PLUGIN.match(name):
        raise ConfigError(
            f"unknown task {name!r}; expected one of {', '.join(BUILTIN_TASKS)} "
            "or a plug-in 'package.module:function'"
        )
    return name


def positive_param(spec: Spec, key: str, kind: type[int] | type[float]) -> float:
    """The positive number ``spec`` gives ``key`` (an int where ``kind`` is int)."""
    value = spec.params.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{spec.name} needs {key}=<positive number>, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"{spec.name}: {key} must be an integer, got {value!r}")
    return value


def check_model_spec(spec: Spec | str) -> Spec:
    """``logreg``, ``mlp[:hidden=H]`` or ``cnn``; ConfigError otherwise."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.name in ("logreg", "cnn"):
        spec.expect()
    elif spec.name == "mlp":
        spec.expect("hidden")
        hidden = spec.params.get("hidden", 64)
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ConfigError(f"mlp: hidden must be a positive integer, got {hidden!r}")
    else:
        raise ConfigError(f"unknown model {spec.name!r}; expected logreg, mlp[:hidden=H] or cnn")
    return spec


def check_partition_spec(spec: Spec | str) -> Spec:
    """``iid``, ``dirichlet:alpha=A`` or ``shards:k=K``; ConfigError otherwise."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.name == "iid":
        spec.expect()
    elif spec.name == "dirichlet":
        spec.expect("alpha")
        positive_param(spec, "alpha", float)
    elif spec.name == "shards":
        spec.expect("k")
        positive_param(spec, "k", int)
    else:
        raise ConfigError(
            f"unknown partition {spec.name!r}; expected iid, dirichlet:alpha=A or shards:k=K"
        )
    return spec
