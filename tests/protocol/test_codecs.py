"""Codec properties: the base.py contract, shapes and dtypes, batching, and error bounds."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codecs import CODEC_NAMES, Codec, codec_from_spec, default_gamma
from protocol.errors import ConfigError, UnknownCodec
from protocol.spec import Spec

SPECS = (
    "raw",
    "fp16",
    "int8",
    "int8:block=7",
    "topk:fraction=0.1",
    "topk:fraction=1",
    "sign",
    "randk:fraction=0.1",
    "randk:fraction=0.5",
)
CODECS = [codec_from_spec(s) for s in SPECS]
IDS = list(SPECS)


def vectors(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * scale


def bits(x: torch.Tensor) -> torch.Tensor:
    """Bit patterns, so that -0.0 != 0.0 and equal NaNs compare equal."""
    return x.contiguous().view(torch.int32)


sizes = st.integers(min_value=0, max_value=300)
seeds = st.integers(min_value=0, max_value=2**64 - 1)
scales = st.sampled_from([1e-30, 1e-6, 1.0, 1e3, 1e30])


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
@settings(max_examples=25, deadline=None)
@given(n=sizes, data_seed=st.integers(0, 2**31), seed=seeds, scale=scales)
def test_bytes_decode_to_exactly_what_compress_returns(
    codec: Codec, n: int, data_seed: int, seed: int, scale: float
) -> None:
    x = vectors(data_seed, (n,), scale)
    payload = codec.to_bytes(x, seed=seed)
    assert isinstance(payload, bytes)
    assert len(payload) == codec.payload_size(n)
    decoded = codec.from_bytes(payload, n)
    assert decoded.dtype == torch.float32
    assert decoded.shape == (n,)
    assert torch.equal(bits(decoded), bits(codec.compress(x, seed=seed)))


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 5), n=sizes, data_seed=st.integers(0, 2**31), first=seeds)
def test_batched_compress_agrees_row_by_row(
    codec: Codec, rows: int, n: int, data_seed: int, first: int
) -> None:
    x = vectors(data_seed, (rows, n))
    row_seeds = [(first + 7919 * i) % 2**64 for i in range(rows)]
    batched = codec.compress(x, seed=row_seeds)
    assert batched.shape == x.shape
    assert batched.dtype == torch.float32
    for i in range(rows):
        assert torch.equal(bits(batched[i]), bits(codec.compress(x[i], seed=row_seeds[i])))


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
def test_compress_keeps_the_dtype_and_computes_in_float32(codec: Codec) -> None:
    x64 = vectors(1, (3, 100)).double() * 1.000000001
    out = codec.compress(x64, seed=[1, 2, 3])
    assert out.dtype == torch.float64
    if codec.spec.name == "raw":
        assert torch.equal(out, x64)  # the exact identity, at any precision
    else:
        expected = codec.compress(x64.float(), seed=[1, 2, 3]).double()
        assert torch.equal(out, expected)


def test_raw_compress_is_a_copy() -> None:
    x = torch.ones(3)
    out = codec_from_spec("raw").compress(x)
    out += 1
    assert torch.equal(x, torch.ones(3))


def test_an_int_seed_is_used_for_every_row_of_a_batch() -> None:
    codec = codec_from_spec("randk:fraction=0.1")
    x = vectors(2, (3, 50))
    out = codec.compress(x, seed=5)
    for i in range(3):
        assert torch.equal(out[i], codec.compress(x[i], seed=5))
    with pytest.raises(ValueError, match="got 2 seeds, expected 3"):
        codec.compress(x, seed=[1, 2])


@pytest.mark.parametrize(
    ("spec", "sizes_by_n"),
    [
        ("raw", {0: 0, 1: 4, 1000: 4000}),
        ("fp16", {0: 0, 1: 2, 1000: 2000}),
        ("int8", {0: 0, 1: 5, 256: 260, 257: 265}),
        ("topk:fraction=0.01", {0: 0, 1: 8, 100: 8, 101: 16, 50_890: 8 * 509}),
        ("sign", {0: 4, 1: 5, 8: 5, 9: 6}),
        ("randk:fraction=0.25", {0: 8, 1: 12, 8: 16, 9: 20}),
    ],
)
def test_payload_sizes_follow_the_documented_layouts(spec: str, sizes_by_n: dict[int, int]) -> None:
    codec = codec_from_spec(spec)
    assert {n: codec.payload_size(n) for n in sizes_by_n} == sizes_by_n


# Error bounds ------------------------------------------------------------------------------------

FASHION = Path("/usr/share/datasets/fashion-mnist")


def fashion_rows(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first test images [count, 784] in [0, 1] and labels, or random stand-ins if absent."""
    images, labels = FASHION / "t10k-images-idx3-ubyte.gz", FASHION / "t10k-labels-idx1-ubyte.gz"
    if not images.exists() or not labels.exists():
        g = torch.Generator().manual_seed(0)
        return torch.rand(count, 784, generator=g), torch.randint(0, 10, (count,), generator=g)
    with gzip.open(images) as f:
        pixels = np.frombuffer(f.read(16 + 784 * count)[16:], dtype=np.uint8)
    with gzip.open(labels) as f:
        classes = np.frombuffer(f.read(8 + count)[8:], dtype=np.uint8)
    x = torch.from_numpy(pixels.reshape(count, 784).astype(np.float32) / 255)
    return x, torch.from_numpy(classes.astype(np.int64))


@pytest.fixture(scope="module")
def trained_weights() -> torch.Tensor:
    """The flat parameters of a 784-32-10 MLP after 30 SGD steps on Fashion-MNIST rows."""
    torch.manual_seed(0)
    x, y = fashion_rows(1024)
    model = torch.nn.Sequential(torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with torch.no_grad():
        before = float(torch.nn.functional.cross_entropy(model(x), y))
    for step in range(30):  # plain SGD by hand: building torch.optim.SGD costs seconds here
        batch = slice(32 * step % 1024, 32 * step % 1024 + 32)
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        params = list(model.parameters())
        with torch.no_grad():
            for param, grad in zip(params, torch.autograd.grad(loss, params), strict=True):
                param.sub_(0.1 * grad)
    with torch.no_grad():
        after = float(torch.nn.functional.cross_entropy(model(x), y))
    assert after < before - 0.1  # it trained: these are not just the initial weights
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def relative_error(codec: Codec, x: torch.Tensor) -> float:
    return float((codec.compress(x) - x).norm() / x.norm())


@pytest.mark.parametrize(("spec", "bound"), [("fp16", 1e-3), ("int8", 1e-2)])
@pytest.mark.parametrize("scale", [1e-4, 1.0, 100.0])
def test_dense_codecs_meet_their_error_bound_on_gaussian_vectors(
    spec: str, bound: float, scale: float
) -> None:
    x = vectors(3, (20_000,), scale)
    assert relative_error(codec_from_spec(spec), x) <= bound


@pytest.mark.parametrize(("spec", "bound"), [("fp16", 1e-3), ("int8", 1e-2)])
def test_dense_codecs_meet_their_error_bound_on_trained_weights(
    spec: str, bound: float, trained_weights: torch.Tensor
) -> None:
    assert relative_error(codec_from_spec(spec), trained_weights) <= bound


def test_int8_error_is_what_uniform_quantisation_predicts() -> None:
    # Step s = absmax / 127 per block, error ~ U(-s/2, s/2): RMS s / sqrt(12).
    x = vectors(4, (64 * 256,))
    step = x.reshape(64, 256).abs().amax(dim=1) / 127
    predicted = math.sqrt(float((step**2).mean() / 12)) / float(x.pow(2).mean().sqrt())
    assert relative_error(codec_from_spec("int8"), x) == pytest.approx(predicted, rel=0.1)


def test_fp16_saturates_instead_of_overflowing() -> None:
    out = codec_from_spec("fp16").compress(torch.tensor([1e6, -1e6, 1.0]))
    assert out.tolist() == [65504.0, -65504.0, 1.0]


# Top-k and rand-k --------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 400), fraction=st.floats(1e-3, 1.0), data_seed=st.integers(0, 2**31))
def test_topk_keeps_exactly_the_k_largest_magnitudes(
    n: int, fraction: float, data_seed: int
) -> None:
    x = vectors(data_seed, (n,))
    k = max(1, math.ceil(fraction * n))
    out = codec_from_spec(Spec("topk", {"fraction": fraction})).compress(x)
    largest = set(x.abs().sort(descending=True).indices[:k].tolist())
    kept = set(out.nonzero().flatten().tolist())
    assert kept == largest
    assert torch.equal(out[list(kept)], x[list(kept)])


def splitmix64_outputs(seed: int, count: int) -> list[int]:
    """Reference SplitMix64 (Steele, Lea, Flood 2014), written from its definition."""
    mask, state, out = 2**64 - 1, seed, []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out


@pytest.mark.parametrize(("seed", "n", "fraction"), [(0, 10, 0.3), (2**64 - 1, 1000, 0.013)])
def test_randk_keeps_the_documented_stratified_subset(seed: int, n: int, fraction: float) -> None:
    k = math.ceil(fraction * n)
    expected = [
        j * n // k + z % ((j + 1) * n // k - j * n // k)
        for j, z in enumerate(splitmix64_outputs(seed, k))
    ]
    x = torch.arange(1, n + 1, dtype=torch.float32)
    out = codec_from_spec(Spec("randk", {"fraction": fraction})).compress(x, seed=seed)
    assert out.nonzero().flatten().tolist() == expected
    assert out[expected].tolist() == [float(i + 1) for i in expected]


def test_randk_subsets_change_with_the_seed_and_cover_entries_evenly() -> None:
    codec = codec_from_spec("randk:fraction=0.1")
    kept = torch.stack([codec.compress(torch.ones(100), seed=s) for s in range(2000)]) != 0
    assert len({tuple(row.nonzero().flatten().tolist()) for row in kept}) > 1990
    frequency = kept.float().mean(dim=0)  # each entry: Bernoulli(0.1) over 2000 seeds
    assert float(frequency.min()) > 0.07
    assert float(frequency.max()) < 0.13


# Byte layouts, against independent encodings -----------------------------------------------------


def test_byte_layouts_match_their_docstrings() -> None:
    import struct

    x = torch.tensor([0.5, -3.0, 2.0, 0.0, -0.25], dtype=torch.float32)
    assert codec_from_spec("raw").to_bytes(x) == struct.pack("<5f", *x.tolist())
    assert codec_from_spec("fp16").to_bytes(x) == struct.pack("<5e", *x.tolist())
    int8 = codec_from_spec("int8:block=3").to_bytes(x)
    scales = (np.float32(3.0) / np.float32(127), np.float32(0.25) / np.float32(127))
    codes = [21, -127, 85, 0, -127]  # round(0.5 / (3/127)) = round(21.17) = 21, ...
    assert int8 == struct.pack("<2f5b", *scales, *codes)
    topk = codec_from_spec("topk:fraction=0.4").to_bytes(x)
    assert topk == struct.pack("<2I2f", 1, 2, -3.0, 2.0)
    sign = codec_from_spec("sign").to_bytes(x)
    assert sign == struct.pack("<fB", 5.75 / 5, 0b10010)
    randk = codec_from_spec("randk:fraction=0.4").to_bytes(x, seed=3)
    kept = [
        j * 5 // 2 + z % ((j + 1) * 5 // 2 - j * 5 // 2)
        for j, z in enumerate(splitmix64_outputs(3, 2))
    ]
    assert randk == struct.pack("<Q2f", 3, *x[kept].tolist())


# Registry ----------------------------------------------------------------------------------------


def test_registry_builds_every_codec_and_reports_canonical_specs() -> None:
    assert set(CODEC_NAMES) == {"raw", "fp16", "int8", "topk", "sign", "randk"}
    for name in CODEC_NAMES:
        codec = codec_from_spec(name)
        assert isinstance(codec, Codec)
        assert codec.spec.name == name
        assert codec_from_spec(codec.spec) == codec
    assert str(codec_from_spec("int8").spec) == "int8:block=256"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("zip", "unknown codec 'zip'"),
        ("raw:level=3", "unknown parameter"),
        ("int8:block=0", "block=0"),
        ("int8:block=2.5", "block=2.5"),
        ("topk:fraction=0", "fraction=0"),
        ("topk:fraction=1.5", "fraction=1.5"),
        ("randk:fraction=nan", "fraction=nan"),
        ("randk:fraction=abc", "fraction='abc'"),
        ("topk:fraction=true", "fraction=True"),
    ],
)
def test_bad_specs_raise_config_error_or_unknown_codec(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        codec_from_spec(spec)
    with pytest.raises(UnknownCodec, match=fragment):
        codec_from_spec(spec, from_network=True)


def test_default_gamma_is_one_for_dense_codecs_and_shrinks_with_sparsity() -> None:
    assert [default_gamma(s) for s in ("raw", "fp16", "int8")] == [1.0, 1.0, 1.0]
    assert 0.4 <= default_gamma("sign") <= 0.6
    topk = [default_gamma(f"topk:fraction={f}") for f in (0.01, 0.1, 0.5, 1.0)]
    assert topk == sorted(topk)
    assert topk[1] < 0.5  # a prototype diverged with top-10% at gamma 0.5
    assert topk[-1] == 1.0
    assert default_gamma("randk:fraction=0.1") <= 0.1


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
def test_inputs_that_need_grad_or_batches_for_to_bytes(codec: Codec) -> None:
    x = torch.randn(30, requires_grad=True)
    assert torch.equal(codec.from_bytes(codec.to_bytes(x), 30), codec.compress(x))
    assert not codec.compress(x).requires_grad
    with pytest.raises(ValueError, match=r"one vector \[P\], got shape \(2, 15\)"):
        codec.to_bytes(x.reshape(2, 15))
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 5\)"):
        codec.compress(x.reshape(2, 3, 5))
