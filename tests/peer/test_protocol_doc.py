"""docs/protocol.md, appendices B and C: model layouts and telemetry keys, checked against code."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as fn

from peer.runtime.stats import RoundStats, to_json
from peer.tasks.models import model_from_spec
from protocol.fingerprint import fingerprint

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def _block(marker: str) -> str:
    after = DOC.split(f"<!-- {marker} -->", 1)[1]
    return after.split("```text\n", 1)[1].split("```", 1)[0]


def documented_layout(model: str, d: int, h: int, c: int) -> list[tuple[str, tuple[int, ...]]]:
    lines = dict(line.rsplit(": ", 1) for line in _block("model-layouts").strip().splitlines())
    sizes = {"D": d, "H": h, "C": c}
    out = []
    for name, dims in re.findall(r"([\w.]+) \(([^)]*)\)", lines[model]):
        out.append((name, tuple(sizes[x] if x in sizes else int(x) for x in dims.split(","))))
    return out


@pytest.mark.parametrize(
    ("spec", "doc_name", "d", "h", "c"),
    [
        ("logreg", "logreg", 60, 0, 3),
        ("mlp:hidden=32", "mlp:hidden=H", 20, 32, 5),
        ("mlp", "mlp:hidden=H", 784, 64, 10),
        ("cnn", "cnn", 784, 0, 10),
        ("cnn", "cnn", 784, 0, 2),
    ],
)
def test_the_documented_layout_is_the_models(
    spec: str, doc_name: str, d: int, h: int, c: int
) -> None:
    model = model_from_spec(spec, d, c)
    assert [(n, s) for n, s, _ in model.layout] == documented_layout(doc_name, d, h, c)
    assert {dtype for _, _, dtype in model.layout} == {"float32"}


def test_the_documented_fingerprints_and_sizes() -> None:
    for spec in ("logreg", "mlp", "cnn"):
        model = model_from_spec(spec, 784, 10)
        row = re.search(rf"\| `{spec}` \| ([\d,]+) \| `([0-9a-f]{{16}})` \|", DOC)
        assert row is not None, spec
        assert int(row[1].replace(",", "")) == model.num_params
        assert row[2] == fingerprint(model.layout)
    assert "fingerprint `" + fingerprint([("params", (100,), "float64")]) + "`" in DOC


def _numpy_logits(spec: str, flat: np.ndarray, x: np.ndarray, d: int, c: int) -> np.ndarray:
    """The documented function, from the documented layout: row-major slices, y = W x + b."""
    h = 7
    tensors, offset = [], 0
    for _, shape in documented_layout("logreg" if spec == "logreg" else "mlp:hidden=H", d, h, c):
        size = math.prod(shape)
        tensors.append(flat[offset : offset + size].reshape(shape, order="C"))
        offset += size
    assert offset == flat.size
    if spec == "logreg":
        w1, b1 = tensors
        return np.asarray(x @ w1.T + b1)
    w1, b1, w2, b2 = tensors
    return np.asarray(np.maximum(x @ w1.T + b1, 0) @ w2.T + b2)


@pytest.mark.parametrize("spec", ["logreg", "mlp:hidden=7"])
def test_a_flat_vector_read_as_documented_gives_the_models_logits(spec: str) -> None:
    d, c = 6, 4
    model = model_from_spec(spec, d, c)
    gen = torch.Generator().manual_seed(1)
    flat = torch.randn(model.num_params, generator=gen)
    x = torch.randn(5, d, generator=gen)
    expected = _numpy_logits(spec, flat.double().numpy(), x.double().numpy(), d, c)
    np.testing.assert_allclose(model.forward(flat, x).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_the_cnn_reads_its_flat_vector_as_documented() -> None:
    model = model_from_spec("cnn", 784, 3)
    flat = torch.randn(model.num_params, generator=torch.Generator().manual_seed(2))
    x = torch.randn(2, 784, generator=torch.Generator().manual_seed(3))
    parts, offset = [], 0
    for _, shape in documented_layout("cnn", 784, 0, 3):
        parts.append(flat[offset : offset + math.prod(shape)].reshape(shape))
        offset += math.prod(shape)
    w1, b1, w2, b2, w3, b3, w4, b4 = parts
    a = fn.max_pool2d(fn.relu(fn.conv2d(x.reshape(2, 1, 28, 28), w1, b1)), 2)
    a = fn.max_pool2d(fn.relu(fn.conv2d(a, w2, b2)), 2).reshape(2, 256)
    expected = fn.linear(fn.relu(fn.linear(a, w3, b3)), w4, b4)
    torch.testing.assert_close(model.forward(flat, x), expected, rtol=1e-4, atol=1e-5)


def test_the_documented_telemetry_keys_are_the_ones_sent() -> None:
    table = DOC.split("<!-- telemetry-keys -->", 1)[1]
    documented = re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE)
    stats = RoundStats(
        round=1,
        train_loss=float("nan"),
        accuracy=None,
        neighbours=2,
        alive=1,
        received=1,
        bytes_out=10,
        bytes_in=20,
        rejected={"replayed_message": 2},
    )
    sent = json.loads(to_json(stats, peer="p0", swarm="lab"))
    assert sorted(documented) == sorted(sent)
    timings = re.search(r"`timings` \| object \|.*", table)
    assert timings is not None
    assert sorted(re.findall(r"`(\w+)`", timings[0])[1:]) == sorted(sent["timings"])
    assert sent["train_loss"] is None
    assert sent["rejected_total"] == 2
