import math

import pytest
import torch

from peer.tasks.partition import label_entropy, partition, partition_report
from protocol.errors import ConfigError

LABELS = torch.arange(10).repeat_interleave(200)[
    torch.randperm(2000, generator=torch.Generator().manual_seed(0))
]


def check_disjoint(parts: list[torch.Tensor], total: int) -> torch.Tensor:
    used = torch.cat(parts)
    assert used.dtype == torch.int64
    assert used.numel() == torch.unique(used).numel(), "an index is used twice"
    assert int(used.min()) >= 0
    assert int(used.max()) < total
    assert all(p.numel() > 0 for p in parts)
    return used


@pytest.mark.parametrize("spec", ["iid", "dirichlet:alpha=0.1", "dirichlet:alpha=10"])
def test_iid_and_dirichlet_use_every_sample_once_in_equal_shares(spec: str) -> None:
    parts = partition(LABELS, 7, spec, seed=1)
    used = check_disjoint(parts, 2000)
    assert used.numel() == 2000
    assert sorted({p.numel() for p in parts}) == [285, 286]  # 2000 = 7 * 285 + 5


def test_same_seed_same_partition_other_seed_differs() -> None:
    a = partition(LABELS, 5, "dirichlet:alpha=0.5", seed=3)
    b = partition(LABELS, 5, "dirichlet:alpha=0.5", seed=3)
    c = partition(LABELS, 5, "dirichlet:alpha=0.5", seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


def mean_entropy(spec: str) -> float:
    parts = partition(LABELS, 20, spec, seed=0)
    return float(label_entropy(partition_report(LABELS, parts, 10).histograms).mean())


def test_dirichlet_skew_grows_as_alpha_falls() -> None:
    iid = mean_entropy("iid")
    assert iid > 0.95 * math.log2(10)  # 100 samples over 10 balanced classes
    assert mean_entropy("dirichlet:alpha=100") > 0.95 * iid
    skewed = mean_entropy("dirichlet:alpha=0.1")
    assert skewed < 0.5 * iid
    assert mean_entropy("dirichlet:alpha=0.01") < skewed


@pytest.mark.parametrize("k", [1, 2, 5])
def test_shards_give_k_pure_shards_per_peer(k: int) -> None:
    # 2000 balanced samples, 20 * k shards of 100 / k: shards never straddle a class.
    parts = partition(LABELS, 20, f"shards:k={k}", seed=2)
    check_disjoint(parts, 2000)
    size = 2000 // (20 * k)
    hist = partition_report(LABELS, parts, 10).histograms
    assert all(p.numel() == k * size for p in parts)
    assert bool((hist % size == 0).all())
    classes = (hist > 0).sum(1)
    assert int(classes.max()) <= k
    assert int(classes.min()) >= 1
    if k == 1:
        assert classes.tolist() == [1] * 20


def test_shards_leave_the_remainder_out() -> None:
    parts = partition(LABELS[:1003], 10, "shards:k=2", seed=0)
    assert sum(p.numel() for p in parts) == 1000


def test_report_summary() -> None:
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    report = partition_report(labels, [torch.tensor([0, 1]), torch.tensor([2, 3, 4, 5])], 3)
    assert report.sizes.tolist() == [2, 4]
    assert report.histograms.tolist() == [[2, 0, 0], [0, 3, 1]]
    summary = report.summary()
    assert summary["size_mean"] == 3.0
    assert summary["classes_per_peer"] == 1.5
    h2 = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert summary["label_entropy_bits"] == pytest.approx(h2 / 2)


@pytest.mark.parametrize(
    ("peers", "spec", "fragment"),
    [
        (3, "random", "unknown partition 'random'"),
        (3, "dirichlet", "alpha=<positive number>"),
        (3, "dirichlet:alpha=-1", "alpha=<positive number>, got -1"),
        (3, "shards:k=1.5", "k must be an integer"),
        (3, "iid:k=2", "unknown parameter"),
        (2001, "iid", "cannot give 2001 peers"),
        (1000, "shards:k=3", "needs 3000 samples"),
        (0, "iid", "peers must be >= 1"),
    ],
)
def test_impossible_or_malformed_partitions_are_config_errors(
    peers: int, spec: str, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        partition(LABELS, peers, spec, seed=0)
