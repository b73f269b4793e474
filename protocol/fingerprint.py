"""Model fingerprints: a short digest of parameter names, shapes and dtypes.

Two peers can only average if their flat vectors mean the same thing, element by element. The
fingerprint names that layout; a receiver drops envelopes whose ``model`` differs from its own.

The canonical text is one line per parameter, in flattening order, each
``{name} ({d0},{d1},...) {dtype}\\n``, after the header line ``rumor-layout-v1\\n``; the fingerprint
is the first 16 lowercase hex digits of the SHA-256 of its UTF-8 bytes. It never uses ``hash()``,
so it is the same in every process and every Python version.

>>> fingerprint([("fc.weight", (10, 784), "float32"), ("fc.bias", (10,), "float32")])
'887e99a3400e5c9f'
>>> canonical_layout([("w", (), "float32")])
b'rumor-layout-v1\\nw () float32\\n'
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final, TypeAlias

import torch

from protocol.errors import ConfigError

__all__ = ["FINGERPRINT_HEX", "Layout", "canonical_layout", "fingerprint", "model_layout"]

Layout: TypeAlias = Sequence[tuple[str, tuple[int, ...], str]]
"""(name, shape, dtype name) per parameter, in the order they are flattened."""

FINGERPRINT_HEX: Final = 16
_HEADER: Final = "rumor-layout-v1\n"


def _check_token(value: object, *, what: str) -> str:
    # Names and dtypes are space-separated in the canonical text, so they may not contain blanks.
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ConfigError(
            f"{what} {value!r} is invalid; expected a non-empty string without spaces"
        )
    return value


def _shape_text(shape: object, *, name: str) -> str:
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ConfigError(f"shape {shape!r} of {name!r} is invalid; expected a tuple of ints >= 0")
    return ",".join(str(d) for d in shape)


def canonical_layout(layout: Layout) -> bytes:
    """The exact bytes that :func:`fingerprint` hashes."""
    lines = [_HEADER]
    for entry in layout:
        if not isinstance(entry, tuple) or len(entry) != 3:
            raise ConfigError(f"layout entry {entry!r} is invalid; expected (name, shape, dtype)")
        name, shape, dtype = entry
        name = _check_token(name, what="parameter name")
        lines.append(
            f"{name} ({_shape_text(shape, name=name)}) {_check_token(dtype, what='dtype')}\n"
        )
    return "".join(lines).encode("utf-8")


def fingerprint(layout: Layout) -> str:
    """First 16 hex digits of the SHA-256 of :func:`canonical_layout`."""
    return hashlib.sha256(canonical_layout(layout)).hexdigest()[:FINGERPRINT_HEX]


def model_layout(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...], str]]:
    """The layout of a module's parameters, in ``named_parameters()`` order.

    >>> model_layout(torch.nn.Linear(3, 2))
    [('weight', (2, 3), 'float32'), ('bias', (2,), 'float32')]
    """
    return [
        (name, tuple(p.shape), str(p.dtype).removeprefix("torch."))
        for name, p in model.named_parameters()
    ]
