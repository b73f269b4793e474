import gzip
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from peer.tasks import idx_io
from peer.tasks.data import (
    FASHION_MNIST_ROOT,
    DataError,
    Dataset,
    DatasetMissing,
    IdxSplit,
    PeerData,
    load_fashion_mnist,
    load_idx_pair,
    load_mnist,
    load_raw_split,
    synthetic_fedprox,
)
from peer.tasks.idx import clear_cache, read_idx
from protocol.errors import ConfigError


def idx_bytes(values: list[int], dims: list[int], *, magic: bytes | None = None) -> bytes:
    head = magic if magic is not None else bytes([0, 0, 0x08, len(dims)])
    return head + struct.pack(f">{len(dims)}I", *dims) + bytes(values)


def write_pair(
    root: Path, images: list[int], labels: list[int], *, gz: bool = False, prefix: str = "train"
) -> tuple[Path, Path]:
    n = len(labels)
    stems = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }[prefix]
    img_path, lbl_path = root / stems[0], root / stems[1]
    blobs = (idx_bytes(images, [n, 2, 2]), idx_bytes(labels, [n]))
    if gz:
        img_path, lbl_path = img_path.with_suffix(".gz"), lbl_path.with_suffix(".gz")
        blobs = (gzip.compress(blobs[0]), gzip.compress(blobs[1]))
    img_path.write_bytes(blobs[0])
    lbl_path.write_bytes(blobs[1])
    return img_path, lbl_path


IMAGES = [0, 255, 0, 255, 255, 255, 0, 0, 51, 102, 153, 204]  # 3 images of 2x2


@pytest.mark.parametrize("gz", [False, True])
def test_idx_pair_decodes_and_standardises(tmp_path: Path, gz: bool) -> None:
    img, lbl = write_pair(tmp_path, IMAGES, [3, 0, 9], gz=gz)
    ds = load_idx_pair(img, lbl)
    assert ds.shape == (3, 4)
    assert ds.num_classes == 10
    assert ds.x.dtype == torch.float32
    assert ds.y.tolist() == [3, 0, 9]
    pixels = torch.tensor(IMAGES, dtype=torch.float64) / 255
    expected = (pixels - pixels.mean()) / pixels.std(correction=0)
    torch.testing.assert_close(ds.x.reshape(-1).double(), expected, rtol=0, atol=1e-6)


def test_idx_pair_uses_given_stats(tmp_path: Path) -> None:
    img, lbl = write_pair(tmp_path, IMAGES, [1, 1, 1])
    ds = load_idx_pair(img, lbl, stats=(0.5, 0.25))
    assert ds.x[0].tolist() == pytest.approx([-2.0, 2.0, -2.0, 2.0])


@pytest.mark.parametrize(
    ("corrupt", "fragment"),
    [
        (lambda b: b"\x00\x00\x0d\x03" + b[4:], "bad IDX magic"),  # float type code
        (lambda b: b"\x01\x00" + b[2:], "bad IDX magic"),
        (lambda b: b[:4][:3] + b"\x02" + b[4:], "2 dimension"),
        (lambda b: b[:-1], "data has 11 bytes"),
        (lambda b: b + b"\x00", "data has 13 bytes"),
        (lambda b: b[:6], "truncated IDX header"),
    ],
)
def test_corrupt_images_name_file_and_problem(
    tmp_path: Path, corrupt: Callable[[bytes], bytes], fragment: str
) -> None:
    img, lbl = write_pair(tmp_path, IMAGES, [0, 1, 2])
    img.write_bytes(corrupt(img.read_bytes()))
    with pytest.raises(DataError, match=fragment) as info:
        load_idx_pair(img, lbl)
    assert str(img) in str(info.value)


def test_mismatched_counts_and_label_range(tmp_path: Path) -> None:
    img, lbl = write_pair(tmp_path, IMAGES, [0, 1, 2])
    lbl.write_bytes(idx_bytes([0, 1], [2]))
    with pytest.raises(DataError, match=r"3 images but .* 2 labels"):
        load_idx_pair(img, lbl)
    lbl.write_bytes(idx_bytes([0, 1, 10], [3]))
    with pytest.raises(DataError, match=r"label 10 outside \[0, 10\)"):
        load_idx_pair(img, lbl)


def test_broken_gzip_is_a_data_error(tmp_path: Path) -> None:
    img, lbl = write_pair(tmp_path, IMAGES, [0, 1, 2], gz=True)
    img.write_bytes(img.read_bytes()[:20])
    with pytest.raises(DataError, match="cannot read"):
        load_idx_pair(img, lbl)


def test_missing_files_say_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissing, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)
    with pytest.raises(DatasetMissing, match="--data-path DIR") as info:
        load_mnist(tmp_path / "nowhere")
    assert isinstance(info.value, ConfigError)  # the CLI exits 2 on it


def test_mnist_loader_reads_both_splits_with_train_stats(tmp_path: Path) -> None:
    write_pair(tmp_path, IMAGES, [0, 1, 2], gz=True)
    write_pair(tmp_path, [255] * 4, [5], prefix="t10k")
    train, test = load_mnist(tmp_path)
    assert len(train) == 3
    assert len(test) == 1
    pixels = torch.tensor(IMAGES, dtype=torch.float64) / 255
    expected = (1.0 - pixels.mean()) / pixels.std(correction=0)
    assert test.x[0].tolist() == pytest.approx([float(expected)] * 4, rel=1e-6)


@pytest.mark.skipif(not FASHION_MNIST_ROOT.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist() -> None:
    train, test = load_fashion_mnist()
    assert train.shape == (60000, 784)
    assert test.shape == (10000, 784)
    assert train.num_classes == test.num_classes == 10
    assert torch.bincount(train.y).tolist() == [6000] * 10
    assert torch.bincount(test.y).tolist() == [1000] * 10
    assert int(train.y[0]) == 9  # the first training image is an ankle boot
    assert float(train.x.mean()) == pytest.approx(0.0, abs=1e-3)
    assert float(train.x.std()) == pytest.approx(1.0, abs=1e-3)
    # standardised with the training stats (mean 0.2860, std 0.3530): test mean is near 0 too
    assert abs(float(test.x.mean())) < 0.02


def test_synthetic_shapes_determinism_and_heterogeneity() -> None:
    train, test = synthetic_fedprox(1.0, 1.0, 4, samples_per_peer=50, test_samples=300, seed=3)
    again, _ = synthetic_fedprox(1.0, 1.0, 4, samples_per_peer=50, test_samples=300, seed=3)
    other, _ = synthetic_fedprox(1.0, 1.0, 4, samples_per_peer=50, test_samples=300, seed=4)
    assert [d.shape for d in train] == [(50, 60)] * 4
    assert test.shape == (300, 60)
    assert torch.equal(train[2].x, again[2].x)
    assert torch.equal(train[2].y, again[2].y)
    assert not torch.equal(train[2].x, other[2].x)
    # beta = 1 shifts each peer's inputs by its own mean; variances fall as j^-1.2
    means = torch.stack([d.x.mean(0) for d in train])
    assert float(means[:, 0].std()) > 0.3
    var = torch.cat([d.x - d.x.mean(0) for d in train]).var(0)
    assert float(var[0]) == pytest.approx(1.0, rel=0.3)
    assert float(var[59]) == pytest.approx(60**-1.2, rel=0.3)
    assert len(torch.unique(test.y)) >= 5


def test_synthetic_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="alpha and beta"):
        synthetic_fedprox(-1.0, 0.0, 2, samples_per_peer=5, seed=0)
    with pytest.raises(ConfigError, match="samples_per_peer must be >= 1, got 0"):
        synthetic_fedprox(0.0, 0.0, 2, samples_per_peer=0, seed=0)


def test_peer_data_offsets_and_validation() -> None:
    data = Dataset(torch.arange(10.0).view(5, 2), torch.tensor([0, 1, 0, 1, 1]), 2)
    pd = PeerData.from_partition(data, [torch.tensor([4, 0]), torch.tensor([2, 1, 3])])
    assert pd.offsets.tolist() == [0, 2, 5]
    assert pd.sizes.tolist() == [2, 3]
    assert pd.shard(1).x[:, 0].tolist() == [4.0, 2.0, 6.0]
    assert pd.shard(0).y.tolist() == [1, 0]
    with pytest.raises(ConfigError, match="at least one sample"):
        PeerData(pd.x, pd.y, torch.tensor([0, 0, 5]), 2)
    with pytest.raises(ConfigError, match="from 0 to 5"):
        PeerData(pd.x, pd.y, torch.tensor([0, 2, 4]), 2)
    with pytest.raises(ConfigError, match="int64"):
        Dataset(torch.zeros(2, 1), torch.tensor([0, 1], dtype=torch.int32), 2)


def random_split(root: Path, *, train: int, test: int, gz: bool, seed: int) -> None:
    """Train and test IDX files of 3x3 images with random pixels and labels."""
    g = torch.Generator().manual_seed(seed)
    for prefix, n in (("train", train), ("t10k", test)):
        pixels = torch.randint(256, (n * 9,), generator=g).tolist()
        labels = torch.randint(10, (n,), generator=g).tolist()
        img, _ = write_pair(root, [0] * n * 4, labels, gz=gz, prefix=prefix)
        blob = idx_bytes(pixels, [n, 3, 3])
        img.write_bytes(gzip.compress(blob) if gz else blob)


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read 20 bytes at a time: two 9-pixel rows per slice, so slices split files and rows."""
    monkeypatch.setattr(idx_io, "_SLICE", 20)


@pytest.mark.usefixtures("small_slices")
@pytest.mark.parametrize("gz", [False, True])
def test_streamed_rows_equal_the_whole_file_bitwise(tmp_path: Path, gz: bool) -> None:
    random_split(tmp_path, train=37, test=11, gz=gz, seed=1)
    train_raw, test_raw = load_raw_split(tmp_path, dataset="mnist")
    assert train_raw.images.shape == (37, 9)
    split = IdxSplit.locate(tmp_path, dataset="mnist")
    assert torch.equal(split.train_labels, train_raw.labels)
    assert torch.equal(split.test_labels, test_raw.labels)
    rows = torch.tensor([36, 0, 5, 5, 17, 1])  # unsorted, a repeat, both ends
    own, held = split.rows(rows, torch.arange(2, 11, 3))
    assert torch.equal(own.raw.images, train_raw.images[rows])
    assert own.stats == train_raw.pixel_stats()
    # the simulator's floats for the same rows: identical, not merely close
    stats = train_raw.pixel_stats()
    expected = train_raw.to_dataset(stats, rows=rows)
    got = own.subset(torch.arange(len(own)))
    assert torch.equal(got.x, expected.x)
    assert torch.equal(got.y, expected.y)
    assert torch.equal(held.subset(torch.tensor([2, 0])).x, test_raw.to_dataset(stats).x[[8, 2]])


def test_stream_histogram_and_stats_match_a_brute_force_count(tmp_path: Path) -> None:
    random_split(tmp_path, train=50, test=3, gz=True, seed=2)
    split = IdxSplit.locate(tmp_path, dataset="mnist")
    images, counts = idx_io.scan_images(split.train_images, torch.tensor([], dtype=torch.int64))
    assert images.shape == (0, 9)
    raw = gzip.decompress(split.train_images.read_bytes())[16:]
    assert counts.tolist() == [raw.count(bytes([v])) for v in range(256)]
    pixels = torch.tensor(list(raw), dtype=torch.float64) / 255
    mean, std = idx_io.pixel_stats(counts)
    assert mean == pytest.approx(float(pixels.mean()), rel=1e-12)
    assert std == pytest.approx(float(pixels.std(correction=0)), rel=1e-12)


@pytest.mark.usefixtures("small_slices")
@pytest.mark.parametrize(
    ("corrupt", "fragment"),
    [(lambda b: b[:-1], "data has 11 bytes"), (lambda b: b + b"\x00" * 30, "data has 42 bytes")],
)
def test_streaming_names_short_and_long_files(
    tmp_path: Path, corrupt: Callable[[bytes], bytes], fragment: str
) -> None:
    img, _ = write_pair(tmp_path, IMAGES, [0, 1, 2])
    img.write_bytes(corrupt(img.read_bytes()))
    with pytest.raises(DataError, match=fragment) as info:
        idx_io.scan_images(img, torch.tensor([0]))
    assert str(img) in str(info.value)


def test_streaming_rejects_rows_outside_the_file(tmp_path: Path) -> None:
    img, _ = write_pair(tmp_path, IMAGES, [0, 1, 2])
    with pytest.raises(DataError, match="row 3 asked for; the file has rows 0 to 2"):
        idx_io.scan_images(img, torch.tensor([0, 3]))


def test_locate_checks_labels_against_the_image_header(tmp_path: Path) -> None:
    random_split(tmp_path, train=4, test=2, gz=False, seed=0)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes([1, 2, 3], [3]))
    with pytest.raises(DataError, match=r"has 4 images but .*train-labels.* has 3 labels"):
        IdxSplit.locate(tmp_path, dataset="mnist")


def test_cache_is_shared_until_cleared(tmp_path: Path) -> None:
    img, _ = write_pair(tmp_path, IMAGES, [0, 1, 2])
    first = read_idx(img, ndim=3)
    assert read_idx(img, ndim=3) is first
    assert read_idx(img, ndim=3, cached=False) is not first
    clear_cache()
    again = read_idx(img, ndim=3)
    assert again is not first
    assert torch.equal(again, first)
