"""The activity-recognition example: shapes, determinism, label skew, and that it is learnable."""

from __future__ import annotations

import pytest
import torch

from examples import har


def test_shapes_and_dtypes() -> None:
    (x, y), (xt, yt) = har.data(2, 4, seed=0, samples=50)
    assert x.shape == (50, 3, har.WINDOW)
    assert y.shape == (50,)
    assert (x.dtype, y.dtype) == (torch.float32, torch.int64)
    assert xt.shape == (6 * 200, 3, har.WINDOW)
    assert torch.bincount(yt).tolist() == [200] * 6
    assert bool(torch.isfinite(x).all())
    out = har.net()(x)
    assert out.shape == (50, len(har.ACTIVITIES))


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    (x1, y1), (t1, _) = har.data(1, 4, seed=7)
    (x2, y2), (t2, _) = har.data(1, 4, seed=7)
    (x3, _), (t3, _) = har.data(1, 4, seed=8)
    assert torch.equal(x1, x2)
    assert torch.equal(y1, y2)
    assert torch.equal(t1, t2)
    assert not torch.equal(t1, t3)
    assert x1.shape != x3.shape or not torch.equal(x1, x3)


def test_every_peer_gets_its_own_windows_and_the_same_test_set() -> None:
    parts = [har.data(p, 4, seed=0, samples=100) for p in range(4)]
    rows = torch.cat([x.flatten(1) for (x, _), _ in parts])
    assert rows.shape[0] == 400
    assert torch.unique(rows, dim=0).shape[0] == 400
    assert all(torch.equal(test[0], parts[0][1][0]) for _, test in parts)


def test_labels_are_skewed_across_peers() -> None:
    peers = 8
    shares = torch.stack(
        [torch.bincount(har.data(p, peers, seed=0)[0][1], minlength=6) for p in range(peers)]
    ).double()
    shares /= shares.sum(1, keepdim=True)
    assert float(shares.max(1).values.mean()) > 0.4  # balanced would be 1/6
    assert float(shares.max(1).values.min()) > 1 / 6
    iid = har.data(0, peers, seed=0, alpha=1000.0)[0][1]
    assert float(torch.bincount(iid, minlength=6).max()) / len(iid) < 0.3


@pytest.mark.parametrize(
    ("peer", "peers", "alpha", "message"),
    [(4, 4, 1.0, "peer=4: expected"), (-1, 4, 1.0, "peer=-1"), (0, 2, 0.0, "alpha=0.0")],
)
def test_bad_arguments_say_which(peer: int, peers: int, alpha: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        har.data(peer, peers, 0, alpha=alpha)


def test_a_plain_training_loop_on_the_pooled_data_learns_it() -> None:
    """Learnability without rumor: Adam on 4 peers' pooled windows, 4 epochs."""
    pooled = [har.data(p, 4, seed=0)[0] for p in range(4)]
    x, y = torch.cat([a for a, _ in pooled]), torch.cat([b for _, b in pooled])
    _, (xt, yt) = har.data(0, 4, seed=0)
    torch.manual_seed(0)
    model = har.net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    for _ in range(4):
        model.train()
        for batch in torch.split(torch.randperm(len(x)), 32):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(xt).argmax(1) == yt).double().mean())
    assert accuracy >= 0.9
