"""rumor's wire contract (v1) and the gossip maths both engines share, as pure functions.

The daemon calls these on one vector [P], the simulator on a batch [N, P]; docs/protocol.md is the
byte-level specification for third-party peers.

The names below load on first use (PEP 562), so that importing a light part of the package (the
error tree, the spec parser) does not import torch: ``rumor --help`` and ``rumor topology`` stay
quick on small devices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.lazy import lazy_exports

if TYPE_CHECKING:
    from protocol.choco import ChocoReceiver, ChocoSender, next_public_copy
    from protocol.chunking import Reassembler, packets, split
    from protocol.codecs import CODEC_NAMES, Codec, codec_from_spec, default_gamma
    from protocol.envelope import Envelope, decode_envelope, encode_envelope
    from protocol.errors import ConfigError, ProtocolError, RumorError
    from protocol.fingerprint import fingerprint
    from protocol.frame import Frame, FrameKind
    from protocol.mixing import choco_update, mix_weights, neighbour_sum
    from protocol.seeds import frame_seed, frame_seeds, sender_seed
    from protocol.spec import Spec, parse_spec
    from protocol.types import PeerId, Vector
    from protocol.validation import Expectations, accept, check_envelope

_HOMES = {
    "protocol.choco": ("ChocoReceiver", "ChocoSender", "next_public_copy"),
    "protocol.chunking": ("Reassembler", "packets", "split"),
    "protocol.codecs": ("CODEC_NAMES", "Codec", "codec_from_spec", "default_gamma"),
    "protocol.envelope": ("Envelope", "decode_envelope", "encode_envelope"),
    "protocol.errors": ("ConfigError", "ProtocolError", "RumorError"),
    "protocol.fingerprint": ("fingerprint",),
    "protocol.frame": ("Frame", "FrameKind"),
    "protocol.mixing": ("choco_update", "mix_weights", "neighbour_sum"),
    "protocol.seeds": ("frame_seed", "frame_seeds", "sender_seed"),
    "protocol.spec": ("Spec", "parse_spec"),
    "protocol.types": ("PeerId", "Vector"),
    "protocol.validation": ("Expectations", "accept", "check_envelope"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "CODEC_NAMES",
    "ChocoReceiver",
    "ChocoSender",
    "Codec",
    "ConfigError",
    "Envelope",
    "Expectations",
    "Frame",
    "FrameKind",
    "PeerId",
    "ProtocolError",
    "Reassembler",
    "RumorError",
    "Spec",
    "Vector",
    "accept",
    "check_envelope",
    "choco_update",
    "codec_from_spec",
    "decode_envelope",
    "default_gamma",
    "encode_envelope",
    "fingerprint",
    "frame_seed",
    "frame_seeds",
    "mix_weights",
    "neighbour_sum",
    "next_public_copy",
    "packets",
    "parse_spec",
    "sender_seed",
    "split",
]


__getattr__, __dir__ = lazy_exports("protocol", _HOME_OF, globals())
