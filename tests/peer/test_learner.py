from typing import Any

import pytest
import torch

from peer.tasks import learner
from peer.tasks.data import FASHION_MNIST_ROOT, Dataset, PeerData, load_fashion_mnist
from peer.tasks.learner import batch_indices, evaluate, local_sgd
from peer.tasks.models import FlatModel, model_from_spec
from protocol.errors import ConfigError


def toy_data(peers: int = 5, dim: int = 8, classes: int = 3, *, seed: int = 0) -> PeerData:
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(3, 40, (peers,), generator=g)
    m = int(sizes.sum())
    x = torch.randn(m, dim, generator=g)
    y = (x[:, :classes].argmax(1) + (torch.rand(m, generator=g) < 0.1)) % classes
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)])
    return PeerData(x, y, offsets, classes)


def test_batch_indices_bounds_reproducibility_and_row_independence() -> None:
    sizes = torch.tensor([1, 7, 1000, 3])
    idx = batch_indices(sizes, 4, 16, seed=5, round=2)
    assert idx.shape == (4, 4, 16)
    assert idx.dtype == torch.int64
    assert int(idx.min()) >= 0
    assert bool((idx < sizes.view(-1, 1, 1)).all())
    assert bool((idx[0] == 0).all())
    assert len(torch.unique(idx[2])) > 50  # spread over the big shard
    assert torch.equal(idx, batch_indices(sizes, 4, 16, seed=5, round=2))
    assert not torch.equal(idx[2], batch_indices(sizes, 4, 16, seed=5, round=3)[2])
    assert not torch.equal(idx[2], batch_indices(sizes, 4, 16, seed=6, round=2)[2])
    # a daemon that only knows its own size (others set arbitrarily) gets the same row
    own = batch_indices(torch.tensor([9, 9, 1000, 9]), 4, 16, seed=5, round=2)
    assert torch.equal(own[2], idx[2])


def test_batch_indices_are_roughly_uniform() -> None:
    idx = batch_indices(torch.tensor([10]), 100, 100, seed=0, round=0)
    counts = torch.bincount(idx.reshape(-1), minlength=10)
    assert int(counts.min()) > 850
    assert int(counts.max()) < 1150


def reference_sgd(
    model: FlatModel, p: torch.Tensor, shard: Dataset, idx: torch.Tensor, lr: float
) -> torch.Tensor:
    """Plain per-peer SGD with autograd, the textbook way."""
    p = p.clone()
    for step_idx in idx:
        w = p.clone().requires_grad_(True)
        logits = model.forward(w, shard.x[step_idx].to(p.dtype))
        loss = torch.nn.functional.cross_entropy(logits, shard.y[step_idx])
        (g,) = torch.autograd.grad(loss, w)
        p -= lr * g
    return p


@pytest.mark.parametrize("block_floats", [None, 70])
@pytest.mark.parametrize("spec", ["logreg", "mlp:hidden=6"])
def test_local_sgd_equals_textbook_sgd_on_each_peer(
    spec: str, block_floats: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if block_floats is not None:  # peers in blocks of 2 (4 * 8 inputs per peer): 2, 2, 1
        monkeypatch.setattr(learner, "_BLOCK_FLOATS", block_floats)
    data = toy_data()
    model = model_from_spec(spec, 8, 3)
    params = torch.stack([model.init(seed=s) for s in range(5)]).double()
    new, loss = local_sgd(model, params, data, steps=3, batch_size=4, lr=0.3, seed=1, round=7)
    idx = batch_indices(data.sizes, 3, 4, seed=1, round=7)
    assert loss.shape == (5,)
    assert bool(torch.isfinite(loss).all())
    for i in range(5):
        expected = reference_sgd(model, params[i], data.shard(i), idx[i], 0.3)
        torch.testing.assert_close(new[i], expected, rtol=1e-10, atol=1e-12)
    assert not torch.equal(new, params)  # not in place by default


@pytest.mark.parametrize("spec", ["logreg", "mlp:hidden=16", "cnn"])
def test_single_peer_call_reproduces_its_row_of_the_batch(spec: str) -> None:
    data = toy_data(6, 784, 10, seed=2)
    model = model_from_spec(spec, 784, 10)
    params = model.init(seed=0).expand(6, -1).clone()
    kwargs: dict[str, Any] = {"steps": 3, "batch_size": 8, "lr": 0.05, "seed": 11, "round": 4}
    batched, losses = local_sgd(model, params, data, **kwargs)
    for i in (0, 3, 5):
        one, one_loss = local_sgd(model, params[i], data, i, **kwargs)
        assert one.shape == (model.num_params,)
        assert one_loss.dim() == 0
        torch.testing.assert_close(one, batched[i], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(one_loss, losses[i], rtol=1e-5, atol=1e-7)
        assert not torch.equal(one, params[i])


@pytest.mark.parametrize(
    ("spec", "dim", "batch"),
    [("logreg", 784, 8), ("mlp:hidden=16", 784, 8), ("logreg", 16, 8), ("mlp:hidden=64", 60, 5)],
)
def test_single_peer_training_is_bit_identical_to_its_row_with_one_thread(
    spec: str, dim: int, batch: int
) -> None:
    # Odd rows of these [N, P] buffers are not 16-byte aligned (P = 2 mod 4), which changes
    # MKL's summation order in W @ A^T unless the model aligns W (what the parity of the
    # engines and of the daemon rests on); with several threads BLAS may split differently.
    data = toy_data(4, dim, 10, seed=3)
    model = model_from_spec(spec, dim, 10)
    assert model.num_params % 4 == 2
    params = model.init(seed=1).expand(4, -1).clone()
    kwargs: dict[str, Any] = {"steps": 2, "batch_size": batch, "lr": 0.1, "seed": 5, "round": 1}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        batched, losses = local_sgd(model, params, data, **kwargs)
        for i in range(4):
            one, one_loss = local_sgd(model, params[i].clone(), data, i, **kwargs)
            assert torch.equal(one, batched[i])
            assert torch.equal(one_loss, losses[i])
    finally:
        torch.set_num_threads(threads)


def test_peer_ids_select_shards_and_precomputed_indices_match() -> None:
    data = toy_data()
    model = model_from_spec("logreg", 8, 3)
    params = model.init(seed=0).expand(2, -1).clone()
    ids = torch.tensor([4, 1])
    kwargs: dict[str, Any] = {"steps": 2, "batch_size": 5, "lr": 0.1, "seed": 0, "round": 1}
    sub, _ = local_sgd(model, params, data, ids, **kwargs)
    full, _ = local_sgd(model, model.init(seed=0).expand(5, -1).clone(), data, **kwargs)
    torch.testing.assert_close(sub, full[ids], rtol=1e-6, atol=1e-7)
    idx = batch_indices(data.sizes, 2, 5, seed=0, round=1)[ids]
    again, _ = local_sgd(model, params, data, ids, indices=idx, **kwargs)
    assert torch.equal(again, sub)


def test_stragglers_stop_early() -> None:
    data = toy_data()
    model = model_from_spec("mlp:hidden=5", 8, 3)
    params = model.init(seed=3).expand(5, -1).clone().double()
    kwargs: dict[str, Any] = {"batch_size": 4, "lr": 0.2, "seed": 2, "round": 0}
    limits = torch.tensor([3, 0, 1, 3, 2])
    new, loss = local_sgd(model, params, data, steps=3, steps_per_peer=limits, **kwargs)
    assert torch.equal(new[1], params[1])
    assert bool(torch.isnan(loss[1]))
    full, full_loss = local_sgd(model, params, data, steps=3, **kwargs)
    torch.testing.assert_close(new[[0, 3]], full[[0, 3]])
    torch.testing.assert_close(loss[[0, 3]], full_loss[[0, 3]])
    idx = batch_indices(data.sizes, 3, 4, seed=2, round=0)
    one_step = reference_sgd(model, params[2], data.shard(2), idx[2, :1], 0.2)
    torch.testing.assert_close(new[2], one_step, rtol=1e-10, atol=1e-12)


def test_inplace_updates_the_given_buffer() -> None:
    data = toy_data()
    model = model_from_spec("logreg", 8, 3)
    params = model.init(seed=0).expand(5, -1).clone()
    copy, _ = local_sgd(model, params.clone(), data, steps=2, batch_size=3, lr=0.1, seed=0, round=0)
    out, _ = local_sgd(
        model, params, data, steps=2, batch_size=3, lr=0.1, seed=0, round=0, inplace=True
    )
    assert out.data_ptr() == params.data_ptr()
    assert torch.equal(params, copy)


def test_local_sgd_argument_errors() -> None:
    data = toy_data()
    model = model_from_spec("logreg", 8, 3)
    with pytest.raises(ConfigError, match="3 parameter rows for 5 peers"):
        local_sgd(model, torch.zeros(3, 27), data, steps=1, batch_size=2, lr=0.1, seed=0, round=0)
    with pytest.raises(ConfigError, match=r"peer ids must lie in \[0, 5\)"):
        local_sgd(model, torch.zeros(27), data, 5, steps=1, batch_size=2, lr=0.1, seed=0, round=0)
    with pytest.raises(ConfigError, match="steps and batch_size"):
        batch_indices(data.sizes, 0, 2, seed=0, round=0)


@pytest.mark.parametrize("spec", ["logreg", "mlp:hidden=7", "cnn"])
def test_evaluate_matches_per_peer_computation_with_any_chunking(spec: str) -> None:
    g = torch.Generator().manual_seed(1)
    model = model_from_spec(spec, 784, 4)
    params = torch.stack([model.init(seed=s) for s in range(3)])
    test = Dataset(torch.randn(23, 784, generator=g), torch.randint(4, (23,), generator=g), 4)
    acc, loss = evaluate(model, params, test, batch=5)
    for i in range(3):
        logits = model.forward(params[i], test.x)
        expected_acc = float((logits.argmax(1) == test.y).double().mean())
        expected_loss = float(torch.nn.functional.cross_entropy(logits, test.y))
        assert float(acc[i]) == pytest.approx(expected_acc)
        assert float(loss[i]) == pytest.approx(expected_loss, rel=1e-5)
    auto_acc, auto_loss = evaluate(model, params, test)
    assert torch.equal(auto_acc, acc)
    torch.testing.assert_close(auto_loss, loss)
    one_acc, _ = evaluate(model, params[1], test)
    assert one_acc.dim() == 0
    assert float(one_acc) == float(acc[1])


@pytest.mark.skipif(not FASHION_MNIST_ROOT.is_dir(), reason="dataset-fashion-mnist not installed")
@pytest.mark.parametrize(("spec", "floor"), [("logreg", 0.7), ("mlp", 0.7)])
def test_a_few_hundred_steps_learn_fashion_mnist(spec: str, floor: float) -> None:
    train, test = load_fashion_mnist()
    model = model_from_spec(spec, 784, 10)
    one_peer = PeerData(train.x, train.y, torch.tensor([0, len(train)]), 10)
    params, _loss = local_sgd(
        model, model.init(seed=0), one_peer, 0, steps=300, batch_size=32, lr=0.05, seed=0, round=0
    )
    acc, test_loss = evaluate(model, params, Dataset(test.x[:5000], test.y[:5000], 10))
    assert float(acc) > floor  # chance is 0.1; 300 steps reach about 0.78
    assert float(test_loss) < 1.0  # log(10) = 2.30 at the start
