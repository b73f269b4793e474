"""CHOCO state: a sender's public copy and the copies a receiver holds of its neighbours'.

A sender publishes, each round, either a delta ``q = Q(x - x_hat)`` (after which every holder of
the previous frame does ``x_hat += q``) or, every ``keyframe_interval`` frames and at seq 0, a
keyframe that carries the whole public copy with the ``raw`` codec. Both sides decode the very
bytes on the wire, so the sender's ``x_hat`` and every receiver's copy stay bit-identical.

Rules (docs/protocol.md restates them for other implementations):

- seq starts at 0 and grows by 1 per frame. Frame ``seq`` is a keyframe when
  ``seq % keyframe_interval == 0`` (so seq 0 always is), else a delta with ``base = seq - 1``.
- A keyframe has codec ``raw``, no base, and the sender's whole public copy ``x_hat`` after this
  frame (not its model ``x``).
- The public copy starts at zeros. For every frame, delta or key, the sender computes
  ``q = decode(encode(x - x_hat, seed=frame_seed(seed, seq)))`` with its codec and sets
  ``x_hat += q``; a keyframe then carries the new ``x_hat`` instead of ``q``.
- A receiver accepts a frame only if its seq is greater than the last it accepted from that
  sender (else ReplayedMessage); a delta only if its base equals that last seq (else UnknownBase:
  it waits for the next keyframe); a keyframe replaces the copy, a delta adds its decoded values.
  A frame that raises changes nothing.

Randomised codecs (randk) draw frame ``seq`` of a sender with seed ``frame_seed(seed, seq)``,
where ``seed`` is the sender's own stable seed (:mod:`protocol.seeds`: from the run seed and its
peer index; the randk payload carries the seed it used, so receivers need not know it). The
simulator reproduces the seeds in batches and advances all public copies at once with
:func:`next_public_copy`.

>>> sender, receiver = ChocoSender(RawCodec(), 2, keyframe_interval=10), ChocoReceiver(2)
>>> receiver.apply("a", sender.step(torch.tensor([1.0, 2.0]), seed=0))
tensor([1., 2.])
>>> frame = sender.step(torch.tensor([3.0, 2.0]), seed=0)
>>> frame.kind, frame.base, receiver.apply("a", frame)
('delta', 0, tensor([3., 2.]))
"""

from __future__ import annotations

import numpy as np
import torch

from protocol.codecs import Codec, RawCodec, codec_from_spec
from protocol.codecs._common import check_finite
from protocol.codecs.base import Seeds
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
from protocol.seeds import frame_seed
from protocol.types import PeerId, Vector

MAX_ABS = 1e6
"""Default bound on the magnitude of a received model's entries (``limits.max_abs_value``)."""

__all__ = [
    "MAX_ABS",
    "ChocoReceiver",
    "ChocoSender",
    "check_values",
    "next_public_copy",
]

_RAW = RawCodec()


def next_public_copy(
    x: Vector, x_hat: Vector, codec: Codec, *, seed: Seeds, out: Vector | None = None
) -> Vector:
    """A sender's public copy after its next frame: ``x_hat + Q(x - x_hat)``, [P] or [N, P].

    What :meth:`ChocoSender.step` computes through the frame's bytes (the codec contract makes
    ``compress`` equal ``from_bytes(to_bytes(...))``), for the simulator, which builds no bytes.
    ``seed`` is the frame's codec seed (:func:`frame_seed`), one per row for a batch. ``out``
    (x_hat's shape and dtype, may be ``x_hat`` itself) receives the result without allocating.

    >>> next_public_copy(torch.tensor([1.5, 2.0]), torch.zeros(2), RawCodec(), seed=0)
    tensor([1.5000, 2.0000])
    """
    delta = codec.compress(x - x_hat, seed=seed).to(x_hat.dtype)
    return x_hat + delta if out is None else torch.add(x_hat, delta, out=out)


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
        """The public copy every receiver holds once it has applied all frames so far.

        :meth:`step` replaces it with a new tensor; the one it replaces becomes the buffer of
        the step after, so hold a ``clone()`` to keep it."""
        self._spare: torch.Tensor | None = None

    def step(self, x: Vector, *, seed: int) -> Frame:
        """Advance the public copy towards ``x`` and return the frame that tells receivers.

        ``seed`` is the sender's stable seed; the codec gets ``frame_seed(seed, seq)``. Raises
        NonFiniteValues (and changes nothing) if ``x - x_hat`` is not finite.
        """
        if x.shape != self.x_hat.shape:
            raise ValueError(f"x has shape {tuple(x.shape)}, expected ({self.n},)")
        seq = self.next_seq
        # One kept buffer takes x - x_hat and then the new public copy, in place, so a round
        # makes no frame-sized tensor (same operations, same bits as ``x_hat + q``).
        buffer = self._buffer(x)
        diff = x - self.x_hat if buffer is None else torch.sub(x, self.x_hat, out=buffer)
        payload = self.codec.to_bytes(diff, seed=frame_seed(seed, seq))
        q = self._decoded(payload, diff)
        x_hat = self.x_hat + q if buffer is None else torch.add(self.x_hat, q, out=buffer)
        del q, diff
        if seq % self.keyframe_interval == 0:
            del payload  # the delta is not sent: free it before the keyframe's bytes exist
            payload = _RAW.to_bytes(x_hat)
            # Receivers decode fp32; a float64 sender must hold exactly what they hold.
            self._from_raw(payload, x_hat)
            frame = Frame(
                kind="key", seq=seq, base=None, codec=_RAW.spec, n=self.n, payload=payload
            )
        else:
            spec = self.codec.spec
            frame = Frame(
                kind="delta", seq=seq, base=seq - 1, codec=spec, n=self.n, payload=payload
            )
        self._spare, self.x_hat = self.x_hat, x_hat
        self.next_seq = seq + 1
        return frame

    def _buffer(self, x: Vector) -> torch.Tensor | None:
        """The kept buffer for ``x - x_hat`` (the public copy before last, swapped out), or None
        where an in-place result would differ: x widens the dtype, needs grad, or is elsewhere.
        """
        x_hat = self.x_hat
        if (
            torch.result_type(x, x_hat) != x_hat.dtype
            or x.requires_grad
            or x.device != x_hat.device
        ):
            return None
        spare = self._spare
        if (
            spare is None
            or spare is x_hat
            or spare.dtype != x_hat.dtype
            or spare.shape != x_hat.shape
        ):
            # The first step, or ``x_hat`` was replaced from outside (a resume).
            spare = torch.empty_like(x_hat)
        return spare

    def _decoded(self, payload: bytes, diff: torch.Tensor) -> torch.Tensor:
        """``from_bytes(payload)`` in x_hat's dtype: for fp32 ``raw``, ``diff`` itself (its bytes
        are the payload), after the same finiteness check ``from_bytes`` makes."""
        if type(self.codec) is RawCodec and diff.dtype == torch.float32:
            check_finite(diff, "raw")
            return diff
        return self.codec.from_bytes(payload, self.n).to(self.x_hat.dtype)

    def _from_raw(self, payload: bytes, x_hat: torch.Tensor) -> None:
        """Set ``x_hat`` to what a receiver decodes from its keyframe ``payload``."""
        if x_hat.dtype == torch.float32:
            check_finite(x_hat, "raw")  # the payload holds x_hat's very bits
        else:
            x_hat.copy_(_RAW.from_bytes(payload, self.n))

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
        base = self._copies[sender]
        if type(codec) is RawCodec and self.dtype == torch.float32:
            # Add the payload's values where they lie: the same fp32 sums as ``base + q``,
            # without a frame-sized tensor of q first.
            q_values = codec.view(frame.payload, self.n)
            copy = torch.empty_like(base)
            with np.errstate(over="ignore"):  # inf, as torch gives, is refused just below
                np.add(base.numpy(), q_values, out=copy.numpy())
        else:
            copy = base + codec.from_bytes(frame.payload, self.n).to(self.dtype)
        check_values(copy, f"delta {frame.seq} from {sender!r} leaves", max_abs=self.max_abs)
        return copy


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
