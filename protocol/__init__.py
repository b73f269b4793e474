"""rumor's wire contract (v1) and the gossip maths both engines share, as pure functions.

The daemon calls these on one vector [P], the simulator on a batch [N, P]; docs/protocol.md is the
byte-level specification for third-party peers.
"""

from protocol.choco import ChocoReceiver, ChocoSender, frame_seed, frame_seeds, sender_seed
from protocol.chunking import Reassembler, packets, split
from protocol.codecs import CODEC_NAMES, Codec, codec_from_spec, default_gamma
from protocol.envelope import Envelope, decode_envelope, encode_envelope
from protocol.errors import ConfigError, ProtocolError, RumorError
from protocol.fingerprint import fingerprint
from protocol.frame import Frame, FrameKind
from protocol.mixing import gossip_update, neighbour_mix, received_weights, sparse_neighbour_mix
from protocol.spec import Spec, parse_spec
from protocol.types import PeerId, Vector
from protocol.validation import Expectations, accept, check_envelope

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
    "codec_from_spec",
    "decode_envelope",
    "default_gamma",
    "encode_envelope",
    "fingerprint",
    "frame_seed",
    "frame_seeds",
    "gossip_update",
    "neighbour_mix",
    "packets",
    "parse_spec",
    "received_weights",
    "sender_seed",
    "sparse_neighbour_mix",
    "split",
]
