"""CHOCO state: a sender's public copy and the copies a receiver holds of its neighbours'.

A sender publishes, each round, either a delta ``q = Q(x - x_hat)`` (after which every holder of
the previous frame does ``x_hat += q``) or, every ``keyframe_interval`` frames and at seq 0, a
keyframe that carries the whole public copy with the ``raw`` codec. Both sides decode the very
bytes on the wire, so the sender's ``x_hat`` and every receiver's copy stay bit-identical.

Rules (docs/protocol.md restates them for other implementations):

- seq starts at 0 and grows by 1 per frame. Frame ``seq`` is a keyframe when
  ``seq % keyframe_interval == 0`` (so seq 0 always is), else a delta with ``base = seq - 1``.
- A keyframe has codec ``raw``, no base, and the sender's whole public copy after this frame. A
  sender may re-publish its current public copy as a keyframe with its last seq (retained topic).
- The public copy starts at zeros. For every frame, delta or key, the sender computes
  ``q = decode(encode(x - x_hat, seed=frame_seed(seed, seq)))`` with its codec and sets
  ``x_hat += q``; a keyframe then carries the new ``x_hat`` instead of ``q``.
- A receiver accepts a frame only if its seq is greater than the last it accepted from that
  sender (else ReplayedMessage); a delta only if its base equals that last seq (else UnknownBase:
  it waits for the next keyframe); a keyframe replaces the copy, a delta adds its decoded values.
  A frame that raises changes nothing.

Randomised codecs (randk) draw frame ``seq`` of a sender with seed ``frame_seed(seed, seq)``,
where ``seed`` is the sender's own stable seed (an implementation detail of that sender: the
randk payload carries the seed it used); the simulator reproduces it with :func:`frame_seeds`.

>>> sender, receiver = ChocoSender(RawCodec(), 2, keyframe_interval=10), ChocoReceiver(2)
>>> receiver.apply("a", sender.step(torch.tensor([1.0, 2.0]), seed=0))
tensor([1., 2.])
>>> frame = sender.step(torch.tensor([3.0, 2.0]), seed=0)
>>> frame.kind, frame.base, receiver.apply("a", frame)
('delta', 0, tensor([3., 2.]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias, TypedDict

import numpy as np
import numpy.typing as npt
import torch

from protocol.codecs import Codec, RawCodec, codec_from_spec
from protocol.codecs._common import MASK64
from protocol.errors import (
    ConfigError,
    InconsistentLength,
    MalformedMessage,
    NonFiniteValues,
    OutOfRange,
    ReplayedMessage,
    UnknownBase,
    UnknownCodec,
)
from protocol.frame import Frame
from protocol.types import PeerId, Vector

MAX_ABS = 1e6
"""Default bound on the magnitude of a received model's entries (``limits.max_abs_value``)."""

__all__ = [
    "MAX_ABS",
    "ChocoReceiver",
    "ChocoSender",
    "ReceiverState",
    "SenderState",
    "check_values",
    "frame_seed",
    "frame_seeds",
    "sender_seed",
]

IntArray: TypeAlias = npt.NDArray[np.integer]

_RAW = RawCodec()
_GOLDEN = 0x9E3779B97F4A7C15


def sender_seed(run_seed: int, peer_index: int) -> int:
    """The stable seed of the sender at ``peer_index`` in a swarm seeded with ``run_seed``.

    ``(run_seed mod 2**16) * 2**16 + peer_index``: below 2**32, as :func:`frame_seed` needs, and
    the one rule the daemon and the simulator share, so both draw the same randk subsets.
    Distinct for up to 65,536 peers.

    >>> sender_seed(3, 1), sender_seed(2**16 + 3, 1)
    (196609, 196609)
    """
    if not 0 <= peer_index < 2**16:
        raise ValueError(f"peer_index {peer_index} out of range; expected 0 <= index < 65536")
    return ((run_seed % 2**16) << 16) + peer_index


def frame_seed(seed: int, seq: int) -> int:
    """The codec seed of frame ``seq`` of a sender with stable seed ``seed``.

    ``mix((seed * 2**32 + seq) * 0x9E3779B97F4A7C15 mod 2**64)`` with SplitMix64's finaliser
    ``mix`` (see RandKCodec). Both steps are bijections of 64-bit words, so distinct (seed, seq)
    with seed, seq < 2**32 give distinct codec seeds, and mixing decorrelates the SplitMix64
    streams randk draws from consecutive frames.

    >>> frame_seed(0, 0), frame_seed(0, 1) != frame_seed(1, 0)
    (0, True)
    """
    z = ((((seed & MASK64) << 32) + seq) * _GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def frame_seeds(seeds: Sequence[int] | IntArray, seqs: int | Sequence[int] | IntArray) -> list[int]:
    """:func:`frame_seed` for a batch of senders, vectorised: one seq for all, or one each.

    >>> frame_seeds([5, 6], [0, 9]) == [frame_seed(5, 0), frame_seed(6, 9)]
    True
    >>> frame_seeds(np.array([5, 6]), 3) == [frame_seed(5, 3), frame_seed(6, 3)]
    True
    """
    values = seeds.tolist() if isinstance(seeds, np.ndarray) else seeds  # never via float64
    stable = np.array([int(v) & MASK64 for v in values], dtype=np.uint64)
    seq = np.broadcast_to(np.asarray(seqs, dtype=np.uint64), stable.shape)
    with np.errstate(over="ignore"):  # arithmetic mod 2**64 is the point
        z = ((stable << np.uint64(32)) + seq) * np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return [int(v) for v in z.tolist()]


class SenderState(TypedDict):
    """A checkpointable ChocoSender: plain tensors, ints and strings."""

    codec: str
    n: int
    keyframe_interval: int
    next_seq: int
    x_hat: torch.Tensor


class ReceiverState(TypedDict):
    """A checkpointable ChocoReceiver: per sender, the last accepted seq and the public copy."""

    n: int
    seqs: dict[PeerId, int]
    copies: dict[PeerId, torch.Tensor]


class ChocoSender:
    """One peer's sending side: its public copy ``x_hat`` and the next frame's seq."""

    def __init__(
        self, codec: Codec, n: int, *, keyframe_interval: int, dtype: torch.dtype = torch.float32
    ) -> None:
        if isinstance(keyframe_interval, bool) or not isinstance(keyframe_interval, int):
            raise ConfigError(f"keyframe_interval={keyframe_interval!r} is not an integer")
        if keyframe_interval < 1:
            raise ConfigError(f"keyframe_interval={keyframe_interval} must be >= 1")
        if n < 0:
            raise ConfigError(f"n={n} must be >= 0")
        self.codec = codec
        self.n = n
        self.keyframe_interval = keyframe_interval
        self.next_seq = 0
        """The seq of the next frame; also the number of frames emitted so far."""
        self.x_hat = torch.zeros(n, dtype=dtype)
        """The public copy every receiver holds once it has applied all frames so far."""

    def step(self, x: Vector, *, seed: int) -> Frame:
        """Advance the public copy towards ``x`` and return the frame that tells receivers.

        ``seed`` is the sender's stable seed; the codec gets ``frame_seed(seed, seq)``. Raises
        NonFiniteValues (and changes nothing) if ``x - x_hat`` is not finite.
        """
        if x.shape != self.x_hat.shape:
            raise ValueError(f"x has shape {tuple(x.shape)}, expected ({self.n},)")
        seq = self.next_seq
        payload = self.codec.to_bytes(x - self.x_hat, seed=frame_seed(seed, seq))
        x_hat = self.x_hat + self.codec.from_bytes(payload, self.n).to(self.x_hat.dtype)
        if seq % self.keyframe_interval == 0:
            payload = _RAW.to_bytes(x_hat)
            # Receivers decode fp32; a float64 sender must hold exactly what they hold.
            x_hat = _RAW.from_bytes(payload, self.n).to(self.x_hat.dtype)
            frame = Frame(
                kind="key", seq=seq, base=None, codec=_RAW.spec, n=self.n, payload=payload
            )
        else:
            spec = self.codec.spec
            frame = Frame(
                kind="delta", seq=seq, base=seq - 1, codec=spec, n=self.n, payload=payload
            )
        self.x_hat, self.next_seq = x_hat, seq + 1
        return frame

    def force_keyframe(self) -> None:
        """Make the next frame a keyframe by skipping seq ahead to the next keyframe slot.

        For when receivers may have lost track (a publish failed, the link to the broker was
        lost): they accept the keyframe as newer than anything they hold and resynchronise at
        once, instead of rejecting deltas until the next periodic keyframe.

        >>> sender = ChocoSender(codec_from_spec("raw"), 2, keyframe_interval=10)
        >>> [sender.step(torch.zeros(2), seed=0).kind for _ in range(2)]
        ['key', 'delta']
        >>> sender.force_keyframe(); sender.next_seq
        10
        >>> sender.force_keyframe(); sender.next_seq  # already on a keyframe slot
        10
        """
        interval = self.keyframe_interval
        self.next_seq = -(-self.next_seq // interval) * interval

    def keyframe(self) -> Frame:
        """The current public copy as a keyframe with the last emitted seq (to re-publish it)."""
        if self.next_seq == 0:
            raise RuntimeError("no frame emitted yet; call step() first")
        payload = _RAW.to_bytes(self.x_hat)
        return Frame(
            kind="key", seq=self.next_seq - 1, base=None, codec=_RAW.spec, n=self.n, payload=payload
        )

    def state_dict(self) -> SenderState:
        return SenderState(
            codec=str(self.codec.spec),
            n=self.n,
            keyframe_interval=self.keyframe_interval,
            next_seq=self.next_seq,
            x_hat=self.x_hat.clone(),
        )

    @classmethod
    def from_state(cls, state: SenderState) -> ChocoSender:
        x_hat = state["x_hat"]
        codec = codec_from_spec(state["codec"])
        sender = cls(
            codec, state["n"], keyframe_interval=state["keyframe_interval"], dtype=x_hat.dtype
        )
        if x_hat.shape != (state["n"],):
            raise ConfigError(f"x_hat has shape {tuple(x_hat.shape)}, expected ({state['n']},)")
        sender.x_hat, sender.next_seq = x_hat.clone(), int(state["next_seq"])
        return sender


class ChocoReceiver:
    """One peer's receiving side: the public copy and last seq of each sender it listens to.

    :meth:`apply` either accepts a frame or raises a ProtocolError and changes nothing. After a
    lost delta every later delta names a base the receiver does not hold, so deltas from that
    sender raise UnknownBase until its next keyframe.
    """

    def __init__(
        self, n: int, *, dtype: torch.dtype = torch.float32, max_abs: float = MAX_ABS
    ) -> None:
        """``max_abs``: a copy with a larger entry (finite or not) is refused (OutOfRange)."""
        self.n = n
        self.dtype = dtype
        self.max_abs = max_abs
        self._copies: dict[PeerId, torch.Tensor] = {}
        self._seqs: dict[PeerId, int] = {}

    @property
    def senders(self) -> frozenset[PeerId]:
        """Senders whose public copy this receiver holds."""
        return frozenset(self._copies)

    def copy_of(self, sender: PeerId) -> Vector | None:
        """The sender's public copy as last accepted (do not modify it), or None."""
        return self._copies.get(sender)

    def last_seq(self, sender: PeerId) -> int | None:
        """The seq of the last frame accepted from ``sender``, or None."""
        return self._seqs.get(sender)

    def forget(self, sender: PeerId) -> None:
        """Drop everything held about ``sender`` (it left; a later keyframe starts afresh)."""
        self._copies.pop(sender, None)
        self._seqs.pop(sender, None)

    def apply(self, sender: PeerId, frame: Frame) -> Vector:
        """Apply ``frame`` from ``sender`` and return the sender's updated public copy."""
        if frame.n != self.n:
            raise InconsistentLength(f"frame from {sender!r} has n={frame.n}, expected {self.n}")
        last = self._seqs.get(sender)
        if last is not None and frame.seq <= last:
            raise ReplayedMessage(
                f"frame seq {frame.seq} from {sender!r} is not newer than {last} already accepted"
            )
        if frame.kind == "key":
            copy = self._decode_key(sender, frame)
        else:
            copy = self._decode_delta(sender, frame, last)
        self._copies[sender], self._seqs[sender] = copy, frame.seq
        return copy

    def _decode_key(self, sender: PeerId, frame: Frame) -> torch.Tensor:
        if frame.base is not None:
            raise MalformedMessage(f"keyframe {frame.seq} from {sender!r} has base {frame.base}")
        if frame.codec.name != "raw":
            raise UnknownCodec(
                f"keyframe {frame.seq} from {sender!r} uses codec {str(frame.codec)!r}; "
                "expected 'raw'"
            )
        copy = _RAW.from_bytes(frame.payload, self.n).to(self.dtype)
        check_values(copy, f"keyframe {frame.seq} from {sender!r} holds", max_abs=self.max_abs)
        return copy

    def _decode_delta(self, sender: PeerId, frame: Frame, last: int | None) -> torch.Tensor:
        if last is None or frame.base != last:
            held = "no frame" if last is None else f"frame {last}"
            raise UnknownBase(
                f"delta {frame.seq} from {sender!r} applies to frame {frame.base}, but the "
                f"receiver holds {held}; waiting for the next keyframe"
            )
        codec = codec_from_spec(frame.codec, from_network=True)
        q = codec.from_bytes(frame.payload, self.n).to(self.dtype)
        copy = self._copies[sender] + q
        check_values(copy, f"delta {frame.seq} from {sender!r} leaves", max_abs=self.max_abs)
        return copy

    def state_dict(self) -> ReceiverState:
        """Everything held, as plain tensors and ints, for checkpoints."""
        return ReceiverState(
            n=self.n,
            seqs=dict(self._seqs),
            copies={s: c.clone() for s, c in self._copies.items()},
        )

    @classmethod
    def from_state(cls, state: ReceiverState) -> ChocoReceiver:
        n, copies = state["n"], state["copies"]
        if set(copies) != set(state["seqs"]):
            raise ConfigError("receiver state: senders of seqs and copies differ")
        dtypes = {c.dtype for c in copies.values()}
        receiver = cls(n, dtype=dtypes.pop() if len(dtypes) == 1 else torch.float32)
        for sender, copy in copies.items():
            if copy.shape != (n,):
                raise ConfigError(
                    f"copy of {sender!r} has shape {tuple(copy.shape)}, expected ({n},)"
                )
            receiver._copies[sender] = copy.clone().to(receiver.dtype)
            receiver._seqs[sender] = int(state["seqs"][sender])
        return receiver


def check_values(copy: torch.Tensor, what: str, *, max_abs: float) -> None:
    """NonFiniteValues or OutOfRange unless every entry of ``copy`` is finite and within
    ``max_abs``: one flipped exponent bit turns 0.01 into 3.4e36, finite but poison.

    >>> check_values(torch.tensor([0.5, -2.0]), "x", max_abs=1e6)
    >>> check_values(torch.tensor([1e30]), "x:", max_abs=1e6)
    Traceback (most recent call last):
    ...
    protocol.errors.OutOfRange: x: a value of magnitude 1e+30; the bound is 1e+06
    """
    if copy.numel() == 0:
        return
    values = copy.detach().numpy() if copy.dtype != torch.bfloat16 else copy.float().numpy()
    # numpy's reductions are much faster than torch's on one core; NaN propagates through both.
    peak = max(float(values.max()), -float(values.min()))
    if not np.isfinite(peak):
        raise NonFiniteValues(f"{what} a non-finite value (NaN or infinity)")
    if peak > max_abs:
        raise OutOfRange(f"{what} a value of magnitude {peak:.3g}; the bound is {max_abs:.3g}")
