"""mix_received with working memory kept from round to round, chunk by chunk: the same bits,
no aliasing."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from peer.runtime.gossip import MIX_CHUNK, MixScratch, mix_received
from protocol.aggregation import MEAN
from protocol.spec import Spec


class Copies:
    """The two members of Inbound that mix_received uses."""

    def __init__(self, copies: dict[str, torch.Tensor]) -> None:
        self.copies = copies
        self.pruned: list[int] = []

    def copy_for(self, peer: str, round: int, *, staleness: int | None) -> torch.Tensor | None:
        return self.copies.get(peer)

    def prune(self, round: int) -> None:
        self.pruned.append(round)


def _mix(
    x: torch.Tensor,
    scratch: MixScratch | None,
    *,
    peers: tuple[str, ...] = ("a", "b"),
    aggregator: Spec = MEAN,
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    x_hat = torch.randn(x.shape, generator=gen).to(x.dtype)
    copies = {p: torch.randn(x.shape, generator=gen).to(x.dtype) for p in peers}
    inbound: Any = Copies(copies)
    new, mixed = mix_received(
        x,
        x_hat,
        3,
        weights=dict(zip(peers, (0.3, 0.2, 0.1), strict=False)),
        inbound=inbound,
        alive=frozenset(peers),
        staleness=None,
        gamma=0.7,
        aggregator=aggregator,
        scratch=scratch,
    )
    assert mixed == len(peers)
    assert inbound.pruned == [4]
    return new


@pytest.mark.parametrize("peers", [("a",), ("a", "b"), ("a", "b", "c")])
@pytest.mark.parametrize("chunk", [1, 64, 999, 1000, MIX_CHUNK])
def test_chunk_by_chunk_mixing_gives_the_same_bits_in_kept_memory(
    chunk: int, peers: tuple[str, ...]
) -> None:
    """Chunks of any size (one parameter, a last partial chunk, the whole vector), any number
    of neighbours (one is mixed from a view): the bits of the unchunked mix, and the working
    memory is the chunk's, kept from round to round."""
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    scratch = MixScratch(x, chunk=chunk)
    for kept in (scratch.step, scratch.mixed, scratch.term):
        assert kept.dtype == torch.float64
        assert kept.shape == (min(chunk, 1000),)
        kept.fill_(float("nan"))  # leftovers must never leak into the result
    fresh = _mix(x, None, peers=peers)
    buffers = [t.data_ptr() for t in (scratch.step, scratch.mixed, scratch.term)]
    results = []
    for _ in range(2):  # a second round over the first one's leftovers: still the same bits
        reused = _mix(x, scratch, peers=peers)
        assert torch.equal(reused.view(torch.int32), fresh.view(torch.int32))
        assert reused.dtype == x.dtype
        assert [t.data_ptr() for t in (scratch.step, scratch.mixed, scratch.term)] == buffers
        results.append(reused)
    assert results[0].data_ptr() != results[1].data_ptr()  # a new vector each round


def test_a_one_million_parameter_model_mixes_in_three_mebibytes_of_float64() -> None:
    x = torch.zeros(1_000_000)
    scratch = MixScratch(x)
    kept = sum(t.numel() * t.element_size() for t in (scratch.step, scratch.mixed, scratch.term))
    assert kept == 3 * 8 * MIX_CHUNK <= 3 * 1024 * 1024
    with pytest.raises(ValueError, match="chunk"):
        MixScratch(x, chunk=0)


@pytest.mark.parametrize("rule", [MEAN, Spec("median")], ids=str)
def test_a_float64_model_never_gets_the_scratch_back(rule: Spec) -> None:
    """A float64 model's result would be the float64 step itself: the next round's mixing
    must not overwrite the one before (the mean's chunks, and a robust rule's whole step)."""
    x = torch.randn(100, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    scratch = MixScratch(x, chunk=30)
    new = _mix(x, scratch, aggregator=rule)
    kept = new.clone()
    assert torch.equal(new, _mix(x, None, aggregator=rule))
    _mix(x + 1.0, scratch, aggregator=rule)  # the next round
    assert torch.equal(new, kept)


@pytest.mark.parametrize("rule", [Spec("median"), Spec("clip", {"tau": 2.0})], ids=str)
def test_robust_rules_reuse_kept_whole_vectors_and_give_the_same_bits(rule: Spec) -> None:
    """The robust rules read the stacked copies whole: those, and the float64 step, are kept
    from round to round (allocated the first time a robust rule mixes, never for the mean)."""
    x = torch.randn(1000, generator=torch.Generator().manual_seed(2))
    scratch = MixScratch(x, chunk=64)
    _mix(x, scratch)
    assert scratch._stacked is None
    assert scratch._whole_step is None  # the mean's chunks need neither
    fresh = _mix(x, None, aggregator=rule)
    first = _mix(x, scratch, aggregator=rule)
    kept = (scratch._stacked, scratch._whole_step)
    assert all(t is not None for t in kept)
    again = _mix(x, scratch, aggregator=rule)
    assert torch.equal(first.view(torch.int32), fresh.view(torch.int32))
    assert torch.equal(again.view(torch.int32), fresh.view(torch.int32))
    assert (scratch._stacked, scratch._whole_step) == kept


def test_the_kept_stack_grows_and_holds_the_copies() -> None:
    x = torch.arange(4.0)
    scratch = MixScratch(x)
    two = scratch.stack([x, x + 1])
    assert torch.equal(two, torch.stack([x, x + 1]))
    three = scratch.stack([x + 2, x, x + 1])
    assert torch.equal(three, torch.stack([x + 2, x, x + 1]))
    again = scratch.stack([x + 3, x])
    assert torch.equal(again, torch.stack([x + 3, x]))
    assert again.data_ptr() == three.data_ptr()  # the larger buffer is kept


def test_chunked_mixing_refuses_copies_of_another_length() -> None:
    x = torch.zeros(10)
    weights = torch.tensor([0.5], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"all \[P\]"):
        MixScratch(x, chunk=4).mix_mean(x, x, weights, [torch.zeros(12)], gamma=1.0)
    with pytest.raises(ValueError, match=r"all \[P\]"):
        MixScratch(x, chunk=4).mix_mean(x, torch.zeros(9), weights, [x], gamma=1.0)
