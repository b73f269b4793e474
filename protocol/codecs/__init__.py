"""Codecs: compression of flat float32 vectors for the wire and for the simulator.

>>> codec = codec_from_spec("topk:fraction=0.01")
>>> codec.spec, codec.payload_size(50_890)
(Spec(name='topk', params={'fraction': 0.01}), 4072)
>>> [default_gamma(name) for name in ("raw", "int8", "sign", "topk:fraction=0.01")]
[1.0, 1.0, 0.5, 0.05]
>>> default_gamma("randk:fraction=0.1")
0.05
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from protocol.codec_names import CODEC_NAMES, check_codec_spec
from protocol.codecs.base import Codec, Seeds
from protocol.codecs.dense import Fp16Codec, Int8Codec, RawCodec
from protocol.codecs.sign import SignCodec
from protocol.codecs.sparse import RandKCodec, TopKCodec, kept_count, randk_indices
from protocol.errors import ConfigError, UnknownCodec
from protocol.spec import Param, Spec, parse_spec

__all__ = [
    "CODEC_NAMES",
    "Codec",
    "Fp16Codec",
    "Int8Codec",
    "RandKCodec",
    "RawCodec",
    "Seeds",
    "SignCodec",
    "TopKCodec",
    "codec_from_spec",
    "default_gamma",
    "kept_count",
    "randk_indices",
]

_FACTORIES: Mapping[str, Callable[..., Codec]] = {
    "raw": RawCodec,
    "fp16": Fp16Codec,
    "int8": Int8Codec,
    "topk": TopKCodec,
    "sign": SignCodec,
    "randk": RandKCodec,
}
# The names are checked against CODEC_NAMES (torch-free); the two tables must agree, or a
# spec from the network could pass the check and miss the lookup.
assert set(_FACTORIES) == set(CODEC_NAMES), "codecs/__init__.py and codec_names.py disagree"


def codec_from_spec(spec: Spec | str, *, from_network: bool = False) -> Codec:
    """The codec a spec names, e.g. ``"int8:block=128"``.

    Unknown names or bad parameters raise ConfigError (user input), or UnknownCodec when
    ``from_network`` is true (a spec read from a peer's envelope).
    """
    try:
        parsed = parse_spec(spec) if isinstance(spec, str) else spec
        return _build(parsed)
    except ConfigError as exc:
        if from_network:
            raise UnknownCodec(str(exc)) from exc
        raise


def _build(spec: Spec) -> Codec:
    check_codec_spec(spec)
    factory = _FACTORIES[spec.name]
    params: dict[str, Param] = dict(spec.params)
    return factory(**params)


# CHOCO-GOSSIP converges for a consensus step gamma that scales with the compression quality delta
# of the codec, E||Q(x) - x||^2 <= (1 - delta) ||x||^2 (Koloskova, Stich, Jaggi, ICML 2019,
# Theorem 2: gamma* = rho^2 delta / (16 rho + rho^2 + 4 beta^2 + 2 rho beta^2 - 8 rho delta)).
# That bound is far too pessimistic in practice, but its shape holds, so we chose the constants by
# measurement (consensus on rings of 16 and 64 and an 8x8 torus, Gaussian and heavy-tailed vectors,
# P = 500 and 5000, float64; tests/protocol/test_choco_gamma.py keeps a small version of it):
# - raw, fp16, int8: delta ~ 1, gamma = 1 (plain D-PSGD).
# - sign: delta = ||x||_1^2 / (n ||x||_2^2), ~2/pi for Gaussian; it never diverged for gamma <= 1
#   (the scale bounds its energy) and converged fastest around 0.2 to 0.7: gamma = 0.5.
# - topk: only delta >= k/n is guaranteed, but on real deltas the top entries carry far more energy.
#   The largest stable gamma was ~0.1 at 1%, ~0.3 at 10% (0.5 diverged, as in the prototype), ~0.7
#   at 30%: about sqrt(fraction). We take half of it, gamma = 0.5 * sqrt(fraction) (1 when all
#   entries are kept).
# - randk: delta = k/n exactly, no benefit from heavy tails; divergence set in at ~2 * fraction,
#   so gamma = 0.5 * fraction.
_GAMMA_BY_NAME: Mapping[str, float] = {"raw": 1.0, "fp16": 1.0, "int8": 1.0, "sign": 0.5}


def default_gamma(spec: Spec | str | Codec) -> float:
    """A consensus step size that is safe for this codec (see the comment above for why)."""
    codec = spec if isinstance(spec, Codec) else codec_from_spec(spec)
    name = codec.spec.name
    if name in _GAMMA_BY_NAME:
        return _GAMMA_BY_NAME[name]
    fraction = float(codec.spec.params["fraction"])
    if fraction >= 1.0:
        return 1.0
    return 0.5 * math.sqrt(fraction) if name == "topk" else 0.5 * fraction
