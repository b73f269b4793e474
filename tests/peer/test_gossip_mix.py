"""mix_received with working memory kept from round to round: the same bits, no aliasing."""

from __future__ import annotations

from typing import Any

import torch

from peer.runtime.gossip import MixScratch, mix_received


class Copies:
    """The two members of Inbound that mix_received uses."""

    def __init__(self, copies: dict[str, torch.Tensor]) -> None:
        self.copies = copies
        self.pruned: list[int] = []

    def copy_for(self, peer: str, round: int, *, staleness: int | None) -> torch.Tensor | None:
        return self.copies.get(peer)

    def prune(self, round: int) -> None:
        self.pruned.append(round)


def _mix(x: torch.Tensor, scratch: MixScratch | None) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    x_hat = torch.randn(x.shape, generator=gen).to(x.dtype)
    copies = {p: torch.randn(x.shape, generator=gen).to(x.dtype) for p in ("a", "b")}
    inbound: Any = Copies(copies)
    new, mixed = mix_received(
        x,
        x_hat,
        3,
        weights={"a": 0.3, "b": 0.2},
        inbound=inbound,
        alive=frozenset({"a", "b"}),
        staleness=None,
        gamma=0.7,
        scratch=scratch,
    )
    assert mixed == 2
    assert inbound.pruned == [4]
    return new


def test_the_scratch_gives_the_same_bits_and_is_reused() -> None:
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    scratch = MixScratch(x)
    for kept in (scratch.step, scratch.mixed, scratch.term):
        assert kept.dtype == torch.float64
        assert kept.shape == x.shape
        kept.zero_()
    fresh = _mix(x, None)
    buffers = [t.data_ptr() for t in (scratch.step, scratch.mixed, scratch.term)]
    stacked = None
    for _ in range(2):  # a second round over the first one's leftovers: still the same bits
        reused = _mix(x, scratch)
        assert torch.equal(reused, fresh)
        assert reused.dtype == x.dtype
        assert torch.equal(scratch.step.to(x.dtype), reused)  # the work was done in the scratch
        assert [t.data_ptr() for t in (scratch.step, scratch.mixed, scratch.term)] == buffers
        now = scratch.stack([x, x]).data_ptr()  # the copies were stacked in kept memory
        assert stacked is None or now == stacked
        stacked = now


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


def test_a_float64_model_never_gets_the_scratch_back() -> None:
    x = torch.randn(100, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    scratch = MixScratch(x)
    new = _mix(x, scratch)
    assert torch.equal(new, _mix(x, None))
    kept = {t.data_ptr() for t in (scratch.step, scratch.mixed, scratch.term)}
    assert new.data_ptr() not in kept  # next round's mixing must not overwrite it
