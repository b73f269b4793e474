import subprocess
import sys
from pathlib import Path

import pytest
import torch

from peer.config import config_from_dict
from peer.runtime.learning import load_learner
from peer.tasks import DatasetMissing, PeerData, Task, TaskSpec, build_task
from peer.tasks.data import FASHION_MNIST_ROOT, Dataset
from peer.tasks.learner import evaluate, local_sgd
from peer.tasks.models import model_from_spec
from protocol.errors import ConfigError
from tests.peer.runtime_helpers import peer_config


def test_consensus_task_starts_from_per_peer_float64_normals() -> None:
    task = build_task(TaskSpec(task="consensus", peers=50, dim=40, seed=3))
    assert task.model is None
    assert task.train is None
    assert task.partition_report is None
    assert task.num_params == 40
    assert task.dtype == torch.float64
    x = task.init_params(seed=3)
    assert x.shape == (50, 40)
    assert x.dtype == torch.float64
    assert torch.equal(x, task.init_params(seed=3))
    assert not torch.equal(x, task.init_params(seed=4))
    assert float(x.mean()) == pytest.approx(0.0, abs=0.05)
    assert float(x.std()) == pytest.approx(1.0, abs=0.05)


def test_synthetic_task_is_learnable() -> None:
    task = build_task(TaskSpec(task="synthetic", peers=20, model="logreg", seed=0))
    assert task.model is not None
    assert task.train is not None
    assert task.test is not None
    assert task.train.num_peers == 20
    assert task.train.sizes.tolist() == [100] * 20
    assert task.num_params == 60 * 10 + 10
    assert task.dtype == torch.float32
    params = task.init_params(seed=0)
    assert torch.equal(params[0], params[19])  # a shared start
    pooled = PeerData(task.train.x, task.train.y, torch.tensor([0, 2000]), 10)
    before, _ = evaluate(task.model, params[0], task.test)
    trained, _ = local_sgd(
        task.model, params[0], pooled, 0, steps=300, batch_size=32, lr=0.05, seed=0, round=0
    )
    after, _ = evaluate(task.model, trained, task.test)
    majority = float(torch.bincount(task.test.y).max()) / len(task.test)
    assert float(after) > max(0.5, majority + 0.3)
    assert float(after) > float(before) + 0.3


def test_synthetic_report_reflects_label_skew() -> None:
    task = build_task(TaskSpec(task="synthetic", peers=10, alpha=1.0, beta=1.0, seed=1))
    report = task.partition_report
    assert report is not None
    assert report.histograms.shape == (10, 10)
    assert report.histograms.sum(1).tolist() == [100] * 10
    assert task.train is not None
    for i in range(10):
        shard_labels = task.train.shard(i).y
        assert torch.equal(report.histograms[i], torch.bincount(shard_labels, minlength=10))
    assert report.summary()["label_entropy_bits"] < 3.0  # per-peer models skew the labels


@pytest.mark.skipif(not FASHION_MNIST_ROOT.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fmnist_task_partitions_the_training_set() -> None:
    task = build_task(
        TaskSpec(task="fmnist", peers=16, model="mlp", partition="dirichlet:alpha=0.1", seed=2)
    )
    assert task.train is not None
    assert task.test is not None
    assert task.model is not None
    assert len(task.test) == 10000
    assert task.model.num_params == 784 * 64 + 64 + 64 * 10 + 10
    report = task.partition_report
    assert report is not None
    assert int(report.sizes.sum()) == 60000
    assert report.sizes.tolist() == [3750] * 16
    assert report.histograms.sum(0).tolist() == [6000] * 10
    assert report.summary()["label_entropy_bits"] < 2.0  # iid would be log2(10) = 3.32


def test_missing_mnist_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissing, match="--data-path DIR"):
        build_task(TaskSpec(task="mnist", peers=2, data_path=tmp_path))
    with pytest.raises(DatasetMissing, match="apt-get install dataset-fashion-mnist"):
        build_task(TaskSpec(task="fmnist", peers=2, data_path=tmp_path))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"task": "cifar"}, "unknown task 'cifar'"),
        ({"task": "consensus", "peers": 0}, "peers must be >= 1"),
        ({"task": "consensus", "dim": 0}, "dim must be >= 1"),
        ({"task": "synthetic", "alpha": -1.0}, "alpha and beta"),
        ({"task": "synthetic", "partition": "dirichlet:alpha=1"}, "use partition iid"),
        ({"task": "fmnist", "partition": "dirichlet:alpha"}, "expected key=value"),
        ({"task": "fmnist", "model": "9x"}, "invalid name"),
        ({"task": "mnist"}, "needs a data path"),
        ({"task": "consensus", "seed": -1}, "seed must be >= 0"),
    ],
)
def test_task_spec_validation(kwargs: dict[str, object], fragment: str) -> None:
    args: dict[str, object] = {"peers": 4, **kwargs}

    def attempt() -> None:
        build_task(TaskSpec(**args))  # type: ignore[arg-type]

    with pytest.raises(ConfigError, match=fragment):
        attempt()


def make_plugin_task(spec: TaskSpec) -> Task:
    """A plug-in task: two separable blobs, one shard per peer."""
    g = torch.Generator().manual_seed(spec.seed)
    shards = []
    for _ in range(spec.peers):
        y = torch.randint(2, (30,), generator=g)
        x = torch.randn(30, 3, generator=g) + 3.0 * y[:, None].float()
        shards.append(Dataset(x, y, 2))
    test = Dataset(torch.tensor([[-3.0] * 3, [6.0] * 3]), torch.tensor([0, 1]), 2)
    model = model_from_spec(spec.model, 3, 2)
    return Task(
        name=spec.task, peers=spec.peers, model=model, train=PeerData.from_shards(shards), test=test
    )


def make_wrong_task(spec: TaskSpec) -> Task:
    return Task(name="x", peers=spec.peers + 1, dim=3)


def test_plugin_tasks_load_and_are_checked() -> None:
    task = build_task(TaskSpec(task="tests.peer.test_tasks:make_plugin_task", peers=3))
    assert task.train is not None
    assert task.train.num_peers == 3
    assert task.num_params == 8
    with pytest.raises(ConfigError, match="must return a Task for 3 peers"):
        build_task(TaskSpec(task="tests.peer.test_tasks:make_wrong_task", peers=3))
    with pytest.raises(ConfigError, match="cannot load plug-in"):
        build_task(TaskSpec(task="tests.peer.test_tasks:nothing_here", peers=3))
    with pytest.raises(ConfigError, match="cannot load plug-in"):
        build_task(TaskSpec(task="no_such_module_xyz:f", peers=3))


def test_task_validates_its_parts() -> None:
    model = model_from_spec("logreg", 3, 2)
    data = PeerData(torch.zeros(2, 4), torch.tensor([0, 1]), torch.tensor([0, 1, 2]), 2)
    test = Dataset(torch.zeros(1, 4), torch.tensor([0]), 2)
    with pytest.raises(ConfigError, match="dimension 4 with 2 classes does not fit"):
        Task(name="t", peers=2, model=model, train=data, test=test)
    with pytest.raises(ConfigError, match="2 shards for 3 peers"):
        Task(name="t", peers=3, model=model_from_spec("logreg", 4, 2), train=data, test=test)
    with pytest.raises(ConfigError, match="without a model"):
        Task(name="t", peers=3)


needs_fmnist = pytest.mark.skipif(
    not FASHION_MNIST_ROOT.is_dir(), reason="dataset-fashion-mnist not installed"
)
DAEMON_LEARNING = {
    "task": "fmnist",
    "model": "mlp:hidden=16",
    "partition": "dirichlet:alpha=0.5",
    "local_steps": 3,
    "batch_size": 8,
    "lr": 0.05,
    "seed": 0,
}


@needs_fmnist
def test_a_daemon_shard_trains_exactly_like_the_simulator() -> None:
    task = build_task(
        TaskSpec(task="fmnist", peers=4, model="mlp:hidden=16", partition="dirichlet:alpha=0.5")
    )
    assert task.train is not None
    assert task.test is not None
    assert task.model is not None
    learner = load_learner(peer_config(1, 4, learning=DAEMON_LEARNING), index=1, peers=4)
    assert learner.shard is not None
    assert torch.equal(learner.sizes, task.train.sizes)
    # the same rows in the same order, as the same floats (uint8 held, converted on demand)
    own = learner.shard.subset(torch.arange(len(learner.shard)))
    assert torch.equal(own.x, task.train.shard(1).x)
    assert torch.equal(own.y, task.train.shard(1).y)
    start = task.init_params(seed=0)[1]
    assert torch.equal(learner.start, start)
    x, expected = learner.start, start
    for r in range(3):
        x, loss = learner.train(x, r)
        expected, ref_loss = local_sgd(
            task.model, expected, task.train, 1, steps=3, batch_size=8, lr=0.05, seed=0, round=r
        )
        assert loss == float(ref_loss)
    assert not torch.equal(x, start)
    assert torch.equal(x, expected)
    acc, _ = evaluate(task.model, x, task.test.subset(torch.arange(1, 10000, 4)))
    assert learner.accuracy(x) == pytest.approx(float(acc), abs=1e-12)


_HWM = "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))"
_DAEMON_LOAD = """
from peer.config import config_from_dict
from peer.runtime.daemon import run_peer  # everything the daemon imports
from peer.config import config_from_dict
from peer.runtime.learning import load_learner
config = config_from_dict({
    "identity": {"peer": "p0", "swarm": "m"},
    "topology": {"family": "ring", "size": 4, "node": 0, "seed": 0},
    "learning": {"task": "fmnist", "model": "mlp"},
    "gossip": {"rounds": 3},
})
learner = load_learner(config, index=0, peers=4)
x = learner.start
for r in range(3):
    x, _ = learner.train(x, r)
assert learner.accuracy(x) > 0.3
"""


def _peak_mib(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code + "\n" + _HWM], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1]) / 1024


@needs_fmnist
@pytest.mark.slow
def test_a_fashion_mnist_peer_stays_under_300_mib() -> None:
    # Issue 5's target for `rumor up --task fmnist` with the MLP; before the shard was streamed
    # and kept in uint8 this peak was 373 MiB.
    torch_only = _peak_mib("import torch")
    daemon = _peak_mib(_DAEMON_LOAD)
    print(f"peak RSS: import torch {torch_only:.0f} MiB, fmnist peer 0 of 4 {daemon:.0f} MiB")
    assert daemon < 300, (torch_only, daemon)


_MODULE_DAEMON = """
from peer.config import config_from_dict
from peer.runtime.daemon import run_peer  # everything the daemon imports
from peer.config import config_from_dict
from peer.runtime.learning import load_learner
config = config_from_dict({
    "identity": {"peer": "p0", "swarm": "m"},
    "topology": {"family": "ring", "size": 4, "node": 0, "seed": 0},
    "learning": {
        "data": "tests.peer.plugins.usermods:windows",
        "model": "tests.peer.plugins.usermods:conv1d",
        "optimizer": "adam",
        "lr": 0.01,
        "local_steps": 10,
    },
    "gossip": {"rounds": 3},
})
learner = load_learner(config, index=0, peers=4)
x = learner.start
for r in range(3):
    x, _ = learner.train(x, r)
assert learner.accuracy(x) > 0.3
"""


@pytest.mark.slow
def test_a_peer_training_a_plugin_module_stays_under_300_mib() -> None:
    # A 1-D convolutional net with BatchNorm and dropout, trained with Adam through autograd.
    daemon = _peak_mib(_MODULE_DAEMON)
    print(f"peak RSS: plug-in module peer {daemon:.0f} MiB")
    assert daemon < 300, daemon


def test_a_conv_net_is_evaluated_in_chunks_of_bounded_activations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # examples/har.py's net outputs ~10,000 floats per window over its layers: 512 windows at a
    # time (the chunk for a built-in model) held ~20 MB of activations in the daemon.
    config = config_from_dict(
        {
            "identity": {"peer": "p0"},
            "topology": {"family": "ring", "size": 4, "node": 0},
            "learning": {"data": "examples.har:data", "model": "examples.har:net"},
        }
    )
    learner = load_learner(config, index=0, peers=4)
    assert learner.model is not None
    # conv 24 x 64 three times (conv, BatchNorm, ReLU), pooled 24 x 32, conv 48 x 32 three
    # times, pooled 48, flattened 48, dropout 48, linear 6, the net's output 6
    per_window = 3 * 24 * 64 + 24 * 32 + 3 * 48 * 32 + 3 * 48 + 2 * 6
    assert learner.model.activations_per_sample == per_window
    chunks: list[int] = []

    def counting(*args: object, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        chunks.append(len(args[2]))  # type: ignore[arg-type]
        return evaluate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("peer.runtime.learning.evaluate", counting)
    accuracy = learner.accuracy(learner.start)
    assert sum(chunks) == 1200
    assert max(chunks) * per_window <= 1 << 20  # 4 MiB of float32 activations
    monkeypatch.undo()
    assert accuracy == learner.accuracy(learner.start)  # the chunking does not change it


_HAR_DAEMON = """
import asyncio
from peer.config import config_from_dict
from peer.runtime.daemon import run_peer, set_threads  # everything the daemon imports
from peer.config import config_from_dict
from peer.runtime.learning import load_learner
from peer.up.settings import threads_per_peer
config = config_from_dict({
    "identity": {"peer": "p0", "swarm": "m"},
    "topology": {"family": "ring", "size": 4, "node": 0, "seed": 0},
    "learning": {
        "data": "examples.har:data",
        "model": "examples.har:net",
        "optimizer": "adam",
        "lr": 0.003,
        "local_steps": 5,
        "batch_size": 32,
        "threads": threads_per_peer(4),
    },
    "gossip": {"rounds": 5},
})
set_threads(config)


async def rounds() -> float | None:  # in worker threads, as the daemon trains and evaluates
    learner = await asyncio.to_thread(load_learner, config, index=0, peers=4)
    x = learner.start
    for r in range(5):
        x, _ = await asyncio.to_thread(learner.train, x, r)
        accuracy = await asyncio.to_thread(learner.accuracy, x)
    return accuracy


accuracy = asyncio.run(rounds())
assert accuracy > 0.3, accuracy
"""


@pytest.mark.slow
def test_a_peer_training_the_activity_example_stays_under_300_mib() -> None:
    # examples/har.py as `rumor up` runs it with 4 peers (its docstring's command): a conv net
    # with BatchNorm and dropout, Adam, evaluated on 1,200 windows every round. It peaked at
    # 295-302 MiB while evaluation took 512 windows at a time (~20 MB of activations).
    daemon = _peak_mib(_HAR_DAEMON)
    print(f"peak RSS: activity example peer {daemon:.0f} MiB")
    assert daemon < 300, daemon
