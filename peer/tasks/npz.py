"""The built-in file loader for devices: ``--data npz:path=FILE``.

A device that holds its own data saves it once with numpy::

    np.savez("local.npz", x_train=X, y_train=Y, x_test=Xt, y_test=Yt)

and every peer reads its own file; ``peer``, ``peers`` and ``seed`` are ignored (the file IS
this peer's share). Inputs ``x_*`` are numeric arrays ``[M, ...]`` and become float32 (``[M]``
becomes ``[M, 1]``, one feature per sample). Targets ``y_*`` of an integer (or bool) dtype are
class labels ``[M]`` and become int64; floating-point targets ``[M, ...]`` are a regression's
and become float32.

The file is read with ``allow_pickle=False``: it can hold numbers only, never code. Anything
wrong with it (missing file or array, object or string dtypes, mismatched lengths or sample
shapes, NaN or infinity, negative labels) is a :class:`DataError` whose one line names the file
and the array.

>>> import tempfile, numpy as np
>>> path = tempfile.mkdtemp() + "/d.npz"
>>> np.savez(path, x_train=np.ones((4, 2)), y_train=np.array([0, 1, 1, 0]),
...          x_test=np.zeros((2, 2)), y_test=np.array([1, 0]))
>>> (x, y), (xt, yt) = npz_data(0, 1, 0, path=path)
>>> x.dtype, y.dtype, tuple(xt.shape), yt.tolist()
(torch.float32, torch.int64, (2, 2), [1, 0])
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import torch

from peer.tasks.errors import DataError

__all__ = ["ARRAYS", "npz_data"]

ARRAYS: Final = ("x_train", "y_train", "x_test", "y_test")

Pair = tuple[torch.Tensor, torch.Tensor]


def _read(path: Path) -> dict[str, npt.NDArray[np.generic]]:
    """The four arrays of ``path``; DataError naming the file (and array) otherwise."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (npz needs path=FILE of a numpy .npz file)")
    try:
        with path.open("rb") as stream:  # ours to close, whatever np.load makes of it
            try:
                archive = np.load(stream, allow_pickle=False)
            except (ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise DataError(f"{path}: not a readable numpy .npz file ({exc})") from exc
            return _arrays(path, archive)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


def _arrays(path: Path, archive: object) -> dict[str, npt.NDArray[np.generic]]:
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single array; expected an .npz with {', '.join(ARRAYS)}")
    missing = [name for name in ARRAYS if name not in archive.files]
    if missing:
        raise DataError(
            f"{path}: missing array(s) {', '.join(missing)}; "
            f"found {', '.join(archive.files) or 'none'}"
        )
    arrays = {}
    for name in ARRAYS:
        try:
            arrays[name] = archive[name]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            reason = "object dtype (pickled data is refused)" if "pickle" in str(exc) else exc
            raise DataError(f"{path}: array {name} cannot be read: {reason}") from exc
    return arrays


def _check_numeric(path: Path, name: str, array: npt.NDArray[np.generic]) -> None:
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"{path}: array {name} has dtype {array.dtype}; expected numbers (bool, int, float)"
        )
    if array.ndim == 0 or array.shape[0] == 0:
        raise DataError(f"{path}: array {name} has shape {array.shape}; expected [M >= 1, ...]")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise DataError(f"{path}: array {name} has {bad} non-finite value(s) (NaN or infinity)")


def _check_split(
    path: Path, split: str, x: npt.NDArray[np.generic], y: npt.NDArray[np.generic]
) -> None:
    if len(x) != len(y):
        raise DataError(f"{path}: x_{split} has {len(x)} samples but y_{split} has {len(y)}")
    if y.dtype.kind in "biu":
        if y.ndim != 1:
            raise DataError(
                f"{path}: integer labels y_{split} have shape {y.shape}; expected [{len(y)}]"
            )
        if y.min() < 0:
            raise DataError(f"{path}: labels y_{split} include {y.min()}; expected >= 0")


def _check_agree(path: Path, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
    x, xt, y, yt = arrays["x_train"], arrays["x_test"], arrays["y_train"], arrays["y_test"]
    if x.shape[1:] != xt.shape[1:]:
        raise DataError(
            f"{path}: x_train samples have shape {x.shape[1:]} but x_test's {xt.shape[1:]}"
        )
    if (y.dtype.kind == "f") != (yt.dtype.kind == "f") or y.shape[1:] != yt.shape[1:]:
        raise DataError(
            f"{path}: y_train ({y.dtype} {y.shape[1:]}) and y_test ({yt.dtype} {yt.shape[1:]}) "
            "disagree: both labels (integers) or both targets (floats) of one shape"
        )


def _tensors(x: npt.NDArray[np.generic], y: npt.NDArray[np.generic]) -> Pair:
    if x.ndim == 1:
        x = x[:, None]  # one feature per sample
    target = torch.float32 if y.dtype.kind == "f" else torch.int64
    return (
        torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32),
        torch.from_numpy(np.ascontiguousarray(y)).to(target),
    )


def npz_data(peer: int, peers: int, seed: int, *, path: str | Path) -> tuple[Pair, Pair]:
    """This device's ``((X_train, Y_train), (X_test, Y_test))`` from the .npz file ``path``
    (see the module docstring); ``peer``, ``peers`` and ``seed`` are not used."""
    del peer, peers, seed
    file = Path(path).expanduser()
    arrays = _read(file)
    for name, array in arrays.items():
        _check_numeric(file, name, array)
    for split in ("train", "test"):
        _check_split(file, split, arrays[f"x_{split}"], arrays[f"y_{split}"])
    _check_agree(file, arrays)
    return (
        _tensors(arrays["x_train"], arrays["y_train"]),
        _tensors(arrays["x_test"], arrays["y_test"]),
    )
