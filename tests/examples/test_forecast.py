"""The forecasting example: shapes, determinism, and that a model beats the training mean."""

from __future__ import annotations

import pytest
import torch

from examples import forecast


def test_shapes_and_dtypes() -> None:
    (x, y), (xt, yt) = forecast.data(1, 3, seed=0, window=12)
    assert x.shape == (forecast.HOURS * 4 // 5 - 12, 12)
    assert y.shape == (x.shape[0], 1)
    assert xt.shape == (3 * forecast.HOURS // 5, 12)
    assert yt.shape == (xt.shape[0], 1)
    assert {x.dtype, y.dtype, xt.dtype, yt.dtype} == {torch.float32}
    assert forecast.net(window=12)(x).shape == y.shape


def test_targets_are_the_readings_after_each_window() -> None:
    readings = torch.tensor(forecast.series(0, seed=4), dtype=torch.float32)
    (x, y), (xt, yt) = forecast.data(0, 1, seed=4)
    assert torch.equal(x[5], readings[5:29])
    assert float(y[5, 0]) == float(readings[29])
    assert float(yt[-1, 0]) == float(readings[-1])
    assert float(xt[0, -1]) == float(readings[len(x) + 23])  # test windows follow training ones


def test_determinism_by_seed_and_peers_differ() -> None:
    a, b = forecast.data(2, 4, seed=3), forecast.data(2, 4, seed=3)
    assert torch.equal(a[0][0], b[0][0])
    assert torch.equal(a[1][1], b[1][1])
    assert not torch.equal(a[0][0], forecast.data(2, 4, seed=4)[0][0])
    assert not torch.equal(a[0][0], forecast.data(1, 4, seed=3)[0][0])
    assert torch.equal(a[1][0], forecast.data(0, 4, seed=3)[1][0])  # one shared test set


@pytest.mark.parametrize(("peer", "peers", "window"), [(3, 3, 24), (0, 3, 0), (0, 3, 60)])
def test_bad_arguments_say_which(peer: int, peers: int, window: int) -> None:
    with pytest.raises(ValueError, match="expected"):
        forecast.data(peer, peers, 0, window=window)


def test_a_plain_training_loop_beats_the_training_mean_by_half() -> None:
    peers = 4
    parts = [forecast.data(p, peers, seed=0)[0] for p in range(peers)]
    x, y = torch.cat([a for a, _ in parts]), torch.cat([b for _, b in parts])
    _, (xt, yt) = forecast.data(0, peers, seed=0)
    baseline = float(((yt - y.mean()) ** 2).mean())
    torch.manual_seed(0)
    model = forecast.net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    for _ in range(15):
        for batch in torch.split(torch.randperm(len(x)), 32):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x[batch]), y[batch]).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    with torch.no_grad():
        mse = float(((model(xt) - yt) ** 2).mean())
    assert mse <= 0.5 * baseline
