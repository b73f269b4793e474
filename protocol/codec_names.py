"""Codec names and parameters, without the codecs: validate a codec spec without importing torch.

:mod:`protocol.codecs` builds codecs from the same table; a config (``gossip.codec``) or a
command line (``--codec``) checks its spec here, before any heavy import or network wait.

>>> check_codec_spec("topk:fraction=0.01")
Spec(name='topk', params={'fraction': 0.01})
>>> check_codec_spec("int8:block=0")
Traceback (most recent call last):
...
protocol.errors.ConfigError: int8: block=0 out of range; expected 1 to 2**24
"""

from __future__ import annotations

from protocol.errors import ConfigError
from protocol.spec import Param, ParamChecks, Spec, check_named_spec

__all__ = ["CODEC_NAMES", "CODEC_PARAMS", "check_block", "check_codec_spec", "check_fraction"]


def check_fraction(name: str, fraction: Param) -> None:
    """``fraction`` of a sparsifying codec: a number in (0, 1]."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ConfigError(f"{name}: fraction={fraction!r} is not a number")
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"{name}: fraction={fraction!r} out of range; expected 0 < fraction <= 1")


def check_block(name: str, block: Param) -> None:
    """``block`` of ``int8``: an integer from 1 to 2**24."""
    if isinstance(block, bool) or not isinstance(block, int):
        raise ConfigError(f"{name}: block={block!r} is not an integer")
    if not 1 <= block <= 1 << 24:
        raise ConfigError(f"{name}: block={block} out of range; expected 1 to 2**24")


CODEC_PARAMS: ParamChecks = {
    "raw": {},
    "fp16": {},
    "int8": {"block": check_block},
    "topk": {"fraction": check_fraction},
    "sign": {},
    "randk": {"fraction": check_fraction},
}
"""Every codec name this version speaks -> its parameters and their checks."""

CODEC_NAMES: tuple[str, ...] = tuple(CODEC_PARAMS)


def check_codec_spec(spec: Spec | str) -> Spec:
    """The parsed spec if it names a known codec with valid parameters; else ConfigError."""
    return check_named_spec(spec, CODEC_PARAMS, kind="codec")
