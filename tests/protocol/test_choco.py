"""CHOCO senders and receivers: averaging, identical public copies, gaps, replays, atomicity."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import torch

from protocol.choco import ChocoReceiver, ChocoSender, next_public_copy
from protocol.codecs import codec_from_spec, default_gamma
from protocol.errors import (
    InconsistentLength,
    MalformedMessage,
    NonFiniteValues,
    ProtocolError,
    ReplayedMessage,
    UnknownBase,
    UnknownCodec,
)
from protocol.frame import Frame
from protocol.mixing import choco_update, mix_weights, neighbour_sum
from protocol.seeds import frame_seed, frame_seeds, sender_seed, sender_seeds
from protocol.spec import Spec

P = 64


def ring_weights(n: int) -> torch.Tensor:
    """Metropolis-Hastings weights of a ring: 1/3 to self and to each side."""
    w = torch.zeros(n, n)
    for i in range(n):
        for j in (i - 1, i, i + 1):
            w[i, j % n] = 1 / 3
    return w


class Network:
    """N peers, each with a ChocoSender and a ChocoReceiver, gossiping over dense weights W."""

    def __init__(self, spec: str, w: torch.Tensor, *, keyframe_interval: int) -> None:
        n = w.shape[0]
        self.w = w
        self.codec = codec_from_spec(spec)
        self.x = torch.randn(n, P, generator=torch.Generator().manual_seed(1))
        self.senders = [
            ChocoSender(self.codec, P, keyframe_interval=keyframe_interval) for _ in range(n)
        ]
        self.receivers = [ChocoReceiver(P) for _ in range(n)]

    def neighbours(self, i: int) -> list[int]:
        return [j for j in range(self.w.shape[0]) if j != i and self.w[i, j] > 0]

    def round(self, gamma: float) -> None:
        frames = [s.step(self.x[i], seed=i) for i, s in enumerate(self.senders)]
        new_x = self.x.clone()
        for i, receiver in enumerate(self.receivers):
            js = self.neighbours(i)
            copies = torch.stack([receiver.apply(str(j), frames[j]) for j in js])
            weights = mix_weights(self.w[i, js].double(), copies.dtype)
            mix, total = neighbour_sum(weights, copies)
            new_x[i] = choco_update(self.x[i], self.senders[i].x_hat, mix, total, gamma=gamma)
        self.x = new_x


def test_raw_codec_with_gamma_one_is_plain_weighted_averaging() -> None:
    w = ring_weights(5)
    w[0, 2], w[0, 0] = 0.25, 1 / 3 - 0.25  # one chord, so W is not circulant
    net = Network("raw", w, keyframe_interval=3)
    expected = net.x.clone()
    for _ in range(7):
        net.round(gamma=1.0)
        expected = w @ expected
        torch.testing.assert_close(net.x, expected)


@pytest.mark.parametrize("keyframe_interval", [1, 7, 1000])
def test_topk_public_copies_stay_identical_over_50_rounds(keyframe_interval: int) -> None:
    spec = "topk:fraction=0.1"
    net = Network(spec, ring_weights(6), keyframe_interval=keyframe_interval)
    start = float(((net.x - net.x.mean(0)) ** 2).sum())
    for t in range(50):
        net.x += 0.01 * torch.randn(net.x.shape, generator=torch.Generator().manual_seed(t))
        net.round(gamma=default_gamma(spec))
        for j, sender in enumerate(net.senders):
            for i in ((j - 1) % 6, (j + 1) % 6):
                copy = net.receivers[i].copy_of(str(j))
                assert copy is not None
                assert torch.equal(copy, sender.x_hat)
    assert float(((net.x - net.x.mean(0)) ** 2).sum()) < 0.1 * start  # and it did gossip


def chain(
    spec: str, rounds: int, *, keyframe_interval: int, dtype: torch.dtype = torch.float32
) -> Iterator[tuple[ChocoSender, Frame]]:
    """A sender stepping towards a drifting target; yields (sender, frame) per round."""
    sender = ChocoSender(codec_from_spec(spec), P, keyframe_interval=keyframe_interval, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(P, dtype=dtype)
    for _ in range(rounds):
        x = x + torch.randn(P, generator=g, dtype=dtype)
        yield sender, sender.step(x, seed=42)


def test_after_a_dropped_delta_deltas_are_refused_until_the_next_keyframe() -> None:
    receiver = ChocoReceiver(P)
    outcomes: list[tuple[int, str]] = []
    for sender, frame in chain("topk:fraction=0.2", 12, keyframe_interval=5):
        if frame.seq == 2:
            continue  # lost in transit
        try:
            receiver.apply("a", frame)
        except UnknownBase as exc:
            outcomes.append((frame.seq, str(exc)))
            assert receiver.last_seq("a") == 1
            continue
        outcomes.append((frame.seq, "ok"))
        copy = receiver.copy_of("a")
        assert copy is not None
        assert torch.equal(copy, sender.x_hat)
    gap = (
        "delta {} from 'a' applies to frame {}, but the receiver holds frame 1; "
        "waiting for the next keyframe"
    )
    assert outcomes == [(0, "ok"), (1, "ok"), (3, gap.format(3, 2)), (4, gap.format(4, 3))] + [
        (s, "ok") for s in range(5, 12)
    ]


def test_a_delta_from_an_unknown_sender_waits_for_a_keyframe() -> None:
    frames = [f for _, f in chain("sign", 3, keyframe_interval=10)]
    receiver = ChocoReceiver(P)
    with pytest.raises(UnknownBase, match="holds no frame"):
        receiver.apply("a", frames[1])
    assert receiver.senders == frozenset()


def test_replays_and_old_frames_are_rejected() -> None:
    frames = [f for _, f in chain("int8", 4, keyframe_interval=2)]
    receiver = ChocoReceiver(P)
    for frame in frames:
        receiver.apply("a", frame)
    for old in frames:
        with pytest.raises(ReplayedMessage, match=f"seq {old.seq} from 'a' is not newer than 3"):
            receiver.apply("a", old)
    receiver.apply("b", frames[0])  # seqs are per sender


def test_a_forced_keyframe_lets_a_newcomer_join_mid_stream() -> None:
    codec = codec_from_spec("topk:fraction=0.1")
    sender, newcomer = ChocoSender(codec, P, keyframe_interval=100), ChocoReceiver(P)
    xs = torch.randn(6, P, generator=torch.Generator().manual_seed(4))
    for x in xs[:3]:
        sender.step(x, seed=1)
    sender.force_keyframe()
    key = sender.step(xs[3], seed=1)
    assert key.kind == "key"
    assert torch.equal(newcomer.apply("a", key), sender.x_hat)
    for x in xs[4:]:
        assert torch.equal(newcomer.apply("a", sender.step(x, seed=1)), sender.x_hat)


def corrupted(frame: Frame) -> list[tuple[Frame, type[ProtocolError]]]:
    replace = dataclasses.replace
    nan = torch.full((P,), float("nan")).numpy().tobytes()
    return [
        (frame, ReplayedMessage),
        (replace(frame, seq=frame.seq + 2, base=frame.seq + 1), UnknownBase),
        (replace(frame, seq=frame.seq + 1, base=frame.seq, n=P + 1), InconsistentLength),
        (replace(frame, seq=frame.seq + 1, base=frame.seq, payload=b"\0"), InconsistentLength),
        (replace(frame, seq=frame.seq + 1, base=frame.seq, codec=Spec("zip")), UnknownCodec),
        (
            replace(frame, seq=frame.seq + 1, base=frame.seq, codec=Spec("raw"), payload=nan),
            NonFiniteValues,
        ),
        (
            replace(frame, seq=frame.seq + 1, codec=Spec("raw"), payload=bytes(4 * P), kind="key"),
            MalformedMessage,
        ),
        (replace(frame, seq=frame.seq + 1, base=None, kind="key"), UnknownCodec),
    ]


def test_a_receiver_is_unchanged_by_any_rejected_frame() -> None:
    frames = [f for _, f in chain("topk:fraction=0.1", 3, keyframe_interval=10)]
    receiver = ChocoReceiver(P, max_abs=float("inf"))  # no magnitude bound: overflow to inf
    for frame in frames:
        receiver.apply("a", frame)
    huge = torch.full((P,), 3e38).numpy().tobytes()  # a finite delta; twice it is not
    receiver.apply(
        "a", dataclasses.replace(frames[2], seq=3, base=2, codec=Spec("raw"), payload=huge)
    )
    held = receiver.copy_of("a")
    assert held is not None
    before = (receiver.last_seq("a"), held.clone())
    last = dataclasses.replace(frames[2], seq=3, base=2)
    overflow = dataclasses.replace(last, seq=4, base=3, codec=Spec("raw"), payload=huge)
    cases: list[tuple[Frame, type[ProtocolError]]] = [*corrupted(last), (overflow, NonFiniteValues)]
    for bad, error in cases:
        with pytest.raises(error):
            receiver.apply("a", bad)
        assert receiver.last_seq("a") == before[0]
        assert receiver.senders == {"a"}
        after = receiver.copy_of("a")
        assert after is not None
        assert torch.equal(after, before[1])


def test_float64_senders_and_receivers_stay_identical() -> None:
    receiver = ChocoReceiver(P, dtype=torch.float64)
    for sender, frame in chain("randk:fraction=0.25", 10, keyframe_interval=4, dtype=torch.float64):
        assert torch.equal(receiver.apply("a", frame), sender.x_hat)
        assert sender.x_hat.dtype == torch.float64


def test_the_simulator_reproduces_senders_with_batched_compress() -> None:
    """The vectorised engine's CHOCO step equals what each daemon's sender does, bit for bit."""
    codec = codec_from_spec("randk:fraction=0.1")
    peer_seeds = [3, 1, 4, 1_000_003]
    senders = [ChocoSender(codec, P, keyframe_interval=1000) for _ in peer_seeds]
    x_hat = torch.zeros(len(peer_seeds), P)
    g = torch.Generator().manual_seed(2)
    for seq in range(6):
        x = torch.randn(len(peer_seeds), P, generator=g)
        x_hat = next_public_copy(x, x_hat, codec, seed=frame_seeds(peer_seeds, seq))
        for i, sender in enumerate(senders):
            sender.step(x[i], seed=peer_seeds[i])
            assert torch.equal(sender.x_hat, x_hat[i])


def test_frame_seeds_differ_across_senders_and_frames() -> None:
    seen = {frame_seed(seed, seq) for seed in range(50) for seq in range(50)}
    assert len(seen) == 2500


def test_batched_frame_seeds_equal_the_scalar_ones() -> None:
    seeds = [0, 1, 2**32 + 5, 2**64 - 1, -3]
    seqs = [0, 7, 2**31, 12, 1]
    assert frame_seeds(seeds, seqs) == [frame_seed(s, q) for s, q in zip(seeds, seqs, strict=True)]
    assert frame_seeds(seeds, 4) == [frame_seed(s, 4) for s in seeds]
    # Known value, from the definition: mix(0x9E3779B97F4A7C15), SplitMix64's first output for 0.
    assert frame_seed(0, 0) == 0xE220A8397B1DCDAF


def _splitmix64(state: int, i: int) -> int:
    """docs/protocol.md's definition, written out again independently."""
    m = 2**64
    z = (state + i * 0x9E3779B97F4A7C15) % m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % m
    return z ^ (z >> 31)


@pytest.mark.parametrize(
    ("run_seed", "peer"), [(0, 0), (3, 1), (65536, 7), (2**63 + 5, 99_999), (1, 2**40)]
)
def test_sender_seed_follows_the_documented_formula(run_seed: int, peer: int) -> None:
    stable = _splitmix64(_splitmix64(run_seed % 2**64, 1), peer + 1)
    assert sender_seed(run_seed, peer) == stable
    assert frame_seed(stable, 12) == _splitmix64(stable, 13)


def test_sender_seeds_have_no_peer_limit_and_do_not_collide() -> None:
    """100,000 peers (past the old 65,536 limit), and run seeds 65,536 apart give new streams."""
    many = sender_seeds(0, 100_000)
    assert len(set(many.tolist())) == 100_000
    assert [sender_seed(0, i) for i in (0, 65_536, 99_999)] == many[[0, 65_536, 99_999]].tolist()
    pairs = {sender_seed(seed, peer) for seed in (0, 1, 65_536, 2**32) for peer in range(2_000)}
    assert len(pairs) == 4 * 2_000
    assert not set(sender_seeds(65_536, 10).tolist()) & set(sender_seeds(0, 10).tolist())
    with pytest.raises(ValueError, match="peer_index -1"):
        sender_seed(0, -1)


def test_sender_validation() -> None:
    with pytest.raises(ValueError, match="keyframe_interval=0"):
        ChocoSender(codec_from_spec("raw"), 3, keyframe_interval=0)
    sender = ChocoSender(codec_from_spec("raw"), 3, keyframe_interval=2)
    with pytest.raises(ValueError, match=r"shape \(4,\), expected \(3,\)"):
        sender.step(torch.zeros(4), seed=0)
    with pytest.raises(NonFiniteValues):
        sender.step(torch.tensor([1.0, float("inf"), 0.0]), seed=0)
    assert sender.next_seq == 0
    assert torch.equal(sender.x_hat, torch.zeros(3))
