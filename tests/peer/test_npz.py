"""The npz file loader: real temporary .npz files, good and bad."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from peer.cli import main
from peer.tasks.errors import DataError
from peer.tasks.npz import npz_data
from protocol.errors import ConfigError


def _save(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _good(**changes: object) -> dict[str, object]:
    rng = np.random.default_rng(0)
    arrays: dict[str, object] = {
        "x_train": rng.normal(size=(10, 3, 4)),
        "y_train": rng.integers(0, 3, size=10),
        "x_test": rng.normal(size=(5, 3, 4)).astype(np.float32),
        "y_test": rng.integers(0, 3, size=5).astype(np.int32),
    }
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def test_labels_become_int64_and_inputs_float32(tmp_path: Path) -> None:
    arrays = _good(x_train=np.arange(120, dtype=np.uint8).reshape(10, 3, 4))
    path = _save(tmp_path / "d.npz", **arrays)
    (x, y), (xt, yt) = npz_data(3, 8, 1, path=str(path))
    assert (x.dtype, y.dtype, xt.dtype, yt.dtype) == (torch.float32, torch.int64) * 2
    assert x.shape == (10, 3, 4)
    assert xt.shape == (5, 3, 4)
    assert torch.equal(x, torch.arange(120.0).reshape(10, 3, 4))
    assert y.tolist() == np.asarray(arrays["y_train"]).tolist()


def test_float_targets_stay_float32_with_their_shape(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "r.npz",
        **_good(y_train=np.linspace(0, 1, 20).reshape(10, 2), y_test=np.ones((5, 2))),
    )
    (_, y), (_, yt) = npz_data(0, 1, 0, path=path)
    assert y.dtype == yt.dtype == torch.float32
    assert y.shape == (10, 2)
    assert yt.shape == (5, 2)


def test_one_feature_inputs_get_a_feature_axis(tmp_path: Path) -> None:
    path = _save(tmp_path / "f.npz", **_good(x_train=np.arange(10.0), x_test=np.zeros(5)))
    (x, _), (xt, _) = npz_data(0, 1, 0, path=path)
    assert x.shape == (10, 1)
    assert xt.shape == (5, 1)
    assert x[:, 0].tolist() == list(range(10))


def test_compressed_files_and_bool_labels_load(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    arrays = _good(y_train=np.arange(10) % 2 == 0, y_test=np.arange(5) % 2 == 1)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    (_, y), _ = npz_data(0, 1, 0, path=path)
    assert y.dtype == torch.int64
    assert y.tolist() == [1, 0] * 5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"y_test": None}, "missing array(s) y_test"),
        ({"x_train": np.array([[1.0, np.nan]] * 10)}, "array x_train has 10 non-finite"),
        ({"y_train": np.full(10, np.inf)}, "array y_train has 10 non-finite"),
        ({"y_train": np.zeros(9, dtype=int)}, "x_train has 10 samples but y_train has 9"),
        ({"x_test": np.zeros((5, 4, 3))}, "x_train samples have shape (3, 4) but x_test's"),
        ({"y_test": np.zeros(5)}, "y_train (int64 ()) and y_test (float64 ())"),
        ({"x_train": np.array(["a"] * 10)}, "array x_train has dtype <U1"),
        ({"y_train": np.zeros(10, dtype=np.complex64)}, "array y_train has dtype complex64"),
        ({"y_train": np.full(10, -1)}, "labels y_train include -1"),
        ({"y_train": np.zeros((10, 2), dtype=int)}, "integer labels y_train have shape (10, 2)"),
        ({"x_test": np.zeros((0, 3, 4)), "y_test": np.zeros(0, int)}, "x_test has shape (0, 3, 4)"),
        ({"x_test": np.float32(1.0)}, "array x_test has shape ()"),
    ],
)
def test_bad_arrays_name_file_and_array(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    path = _save(tmp_path / "bad.npz", **_good(**changes))
    with pytest.raises(DataError) as info:
        npz_data(0, 1, 0, path=path)
    text = str(info.value)
    assert str(path) in text
    assert message in text
    assert "\n" not in text


def test_object_arrays_are_refused_without_unpickling(tmp_path: Path) -> None:
    ragged = np.empty(10, dtype=object)
    ragged[:] = [[1.0]] * 10
    path = _save(tmp_path / "obj.npz", **_good(x_train=ragged))
    with pytest.raises(DataError, match=r"array x_train cannot be read: object dtype"):
        npz_data(0, 1, 0, path=path)


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04broken"])
def test_unreadable_files_are_config_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"junk\.npz: not a readable numpy \.npz file"):
        npz_data(0, 1, 0, path=path)


def test_single_array_npy_and_missing_file(tmp_path: Path) -> None:
    npy = tmp_path / "one.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(DataError, match="holds a single array"):
        npz_data(0, 1, 0, path=npy)
    with pytest.raises(DataError, match=r"nope\.npz: no such file"):
        npz_data(0, 1, 0, path=tmp_path / "nope.npz")


def _blobs(path: Path) -> Path:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 5)) * 3
    y = rng.integers(0, 3, size=300)
    x = centres[y] + rng.normal(size=(300, 5))
    return _save(path, x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])


def test_rumor_sim_trains_on_an_npz_file(tmp_path: Path) -> None:
    path = _blobs(tmp_path / "device.npz")
    argv = ["sim", "--model", "mlp:hidden=8", "--data", f"npz:path={path}", "--peers", "3"]
    argv += ["--rounds", "5", "--lr", "0.1", "--threads", "1", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    final = json.loads((tmp_path / "run" / "summary.json").read_text())["final"]
    assert final["acc_mean"] > 0.8  # chance is 1/3


def test_rumor_sim_refuses_a_bad_npz_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save(tmp_path / "bad.npz", **_good(y_test=None))
    with pytest.raises(SystemExit) as info:
        main(["sim", "--model", "mlp", "--data", f"npz:path={path}", "--peers", "2"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}: missing array(s) y_test" in err
    assert err.count("\n") == 1
