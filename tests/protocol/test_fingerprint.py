import hashlib
import subprocess
import sys

import pytest
import torch

from protocol.errors import ConfigError
from protocol.fingerprint import canonical_layout, fingerprint, model_layout

MLP = [
    ("0.weight", (64, 784), "float32"),
    ("0.bias", (64,), "float32"),
    ("2.weight", (10, 64), "float32"),
    ("2.bias", (10,), "float32"),
]


def test_fingerprint_is_sha256_of_the_documented_text() -> None:
    text = (
        "rumor-layout-v1\n"
        "0.weight (64,784) float32\n0.bias (64) float32\n"
        "2.weight (10,64) float32\n2.bias (10) float32\n"
    )
    assert canonical_layout(MLP) == text.encode()
    assert fingerprint(MLP) == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_fingerprint_is_the_same_in_a_fresh_process_with_another_hash_seed() -> None:
    code = f"from protocol.fingerprint import fingerprint; print(fingerprint({MLP!r}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=str(__import__("pathlib").Path(__file__).parents[2]),
    )
    assert out.stdout.strip() == fingerprint(MLP)


@pytest.mark.parametrize(
    "changed",
    [
        [MLP[1], MLP[0], *MLP[2:]],  # order is the flattening order
        [("0.weight", (784, 64), "float32"), *MLP[1:]],  # transposed shape
        [("0.weight", (64, 784), "float16"), *MLP[1:]],  # dtype
        [("first.weight", (64, 784), "float32"), *MLP[1:]],  # name
        MLP[:3],  # a parameter less
        [("0.weight", (64, 78, 4), "float32"), *MLP[1:]],  # same digits, other shape
    ],
)
def test_any_change_of_layout_changes_the_fingerprint(
    changed: list[tuple[str, tuple[int, ...], str]],
) -> None:
    assert fingerprint(changed) != fingerprint(MLP)


def test_model_layout_reads_names_shapes_and_dtypes_of_a_torch_module() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    assert model_layout(model) == MLP
    assert fingerprint(model_layout(model.double())) != fingerprint(MLP)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ([("w", (2, True), "float32")], "shape \\(2, True\\) of 'w'"),
        ([("w", (-1,), "float32")], "shape \\(-1,\\)"),
        ([("w", [2], "float32")], "shape \\[2\\]"),
        ([("my weight", (2,), "float32")], "parameter name 'my weight'"),
        ([("w", (2,), "")], "dtype ''"),
        ([("w", (2,))], "layout entry \\('w', \\(2,\\)\\)"),
    ],
)
def test_invalid_layouts_are_config_errors(layout: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        fingerprint(layout)  # type: ignore[arg-type]
