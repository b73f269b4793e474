"""Export: a flat vector back into a module's state dict, safetensors files, ``rumor export``."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch

from examples import forecast, har
from peer.checkpoint import CheckpointStore, PeerState, encode_state
from peer.cli import main
from peer.export import (
    ExportError,
    save_safetensors,
    state_dict_from_vector,
    vector_layout,
    vector_size,
)
from peer.tasks.dataset import Dataset
from peer.tasks.learner import evaluate
from peer.tasks.models import model_from_spec
from peer.tasks.module import ModuleModel
from peer.tasks.modules import torch_module
from peer.tasks.recipe import Recipe
from protocol.errors import ConfigError
from protocol.fingerprint import fingerprint


def _trained_har() -> tuple[ModuleModel, torch.Tensor]:
    """The HAR example's module after a few Adam steps: BatchNorm statistics moved, and
    ``num_batches_tracked`` counted."""
    model = ModuleModel("examples.har:net", seed=3)
    (x, y), _ = har.data(0, 4, seed=0)
    optimizer = torch.optim.Adam(model.module.parameters(), lr=0.01)
    model.module.train()
    for start in range(0, 96, 32):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            model.module(x[start : start + 32]), y[start : start + 32]
        )
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return model, model.flatten()


def test_the_vector_follows_the_layout_contract() -> None:
    model, vector = _trained_har()
    state = state_dict_from_vector(har.net(), vector)
    assert list(state) == list(model.module.state_dict())
    for name, tensor in model.module.state_dict().items():
        if tensor.is_floating_point():
            assert torch.equal(state[name], tensor), name
    assert vector_size(har.net()) == model.num_params == vector.numel()


def test_integer_buffers_are_taken_from_the_peer_or_kept() -> None:
    _, vector = _trained_har()
    fresh = har.net()
    counts = {"1.num_batches_tracked": torch.tensor(3), "5.num_batches_tracked": torch.tensor(3)}
    state = state_dict_from_vector(fresh, vector, counts)
    assert int(state["1.num_batches_tracked"]) == 3
    assert int(state_dict_from_vector(fresh, vector)["5.num_batches_tracked"]) == 0
    with pytest.raises(ConfigError, match=r"int_buffers name\(s\) 0.weight"):
        state_dict_from_vector(fresh, vector, {"0.weight": torch.tensor(1)})
    with pytest.raises(ConfigError, match=r"integer buffer '1\.num_batches_tracked'"):
        state_dict_from_vector(fresh, vector, {"1.num_batches_tracked": torch.zeros(2)})


@pytest.mark.parametrize("size", [0, 10, 6773])
def test_a_vector_of_another_length_is_refused(size: int) -> None:
    with pytest.raises(ConfigError, match=rf"shape \({size},\); this module's floating-point"):
        state_dict_from_vector(har.net(), torch.zeros(size))


def test_entries_are_fresh_copies() -> None:
    vector = torch.zeros(vector_size(forecast.net()))
    state = state_dict_from_vector(forecast.net(), vector)
    vector += 1
    assert all(float(t.abs().sum()) == 0 for t in state.values())


def test_safetensors_round_trip_reproduces_the_metric(tmp_path: Path) -> None:
    model, vector = _trained_har()
    _, (xt, yt) = har.data(0, 4, seed=0)
    test = Dataset(xt, yt, 6)
    metric, _ = evaluate(model, vector, test, recipe=Recipe.from_specs(optimizer="adam"))
    path = save_safetensors(state_dict_from_vector(har.net(), vector), tmp_path / "har.safetensors")
    fresh = har.net()
    fresh.load_state_dict(safetensors.torch.load_file(path))
    fresh.eval()
    with torch.no_grad():
        again = (fresh(xt).argmax(1) == yt).double().mean()
    assert abs(float(again) - float(metric)) <= 1e-6
    assert [p.name for p in tmp_path.iterdir()] == ["har.safetensors"]  # no temp file left


def test_saving_into_a_missing_directory_is_an_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"cannot write .*nowhere"):
        save_safetensors({"w": torch.zeros(2)}, tmp_path / "nowhere" / "m.safetensors")


@pytest.mark.parametrize("spec", ["logreg", "mlp:hidden=16", "cnn"])
def test_built_in_models_have_equivalent_torch_modules(spec: str) -> None:
    flat = model_from_spec(spec, 784, 10)
    params = flat.init(seed=1) + 0.01
    module = torch_module(flat)
    module.load_state_dict(state_dict_from_vector(module, params))
    x = torch.randn(5, 784, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(module(x), flat.forward(params, x), atol=1e-5)


def _checkpoint(
    folder: Path,
    model: str,
    params: torch.Tensor,
    *,
    layout: torch.nn.Module | None = None,
    **tensors: torch.Tensor,
) -> Path:
    """A checkpoint as a daemon writes it; its fingerprint is that of ``layout``'s module."""
    meta = {"peer": "p0", "model_spec": model, "codec": "raw"}
    if layout is not None:
        meta["model"] = fingerprint(vector_layout(layout))
    state = PeerState(round=12, params=params, tensors=tensors, meta=meta)
    return CheckpointStore(folder / "checkpoints").save(state)


def test_rumor_export_of_a_plug_in_peer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, vector = _trained_har()
    counts = {"local.1.num_batches_tracked": torch.tensor(3, dtype=torch.int64)}
    _checkpoint(tmp_path / "p0", "examples.har:net", torch.zeros_like(vector))  # older
    meta = {"model_spec": "examples.har:net", "model": fingerprint(model.layout)}
    newest = CheckpointStore(tmp_path / "p0" / "checkpoints").save(
        PeerState(round=40, params=vector, tensors=counts, meta=meta)
    )
    out = tmp_path / "har.safetensors"
    assert main(["export", str(tmp_path / "p0"), "--out", str(out)]) == 0
    assert f"of round 40 from {newest}" in capsys.readouterr().out
    loaded = safetensors.torch.load_file(out)
    assert int(loaded["1.num_batches_tracked"]) == 3
    fresh = har.net()
    fresh.load_state_dict(loaded)
    for name, tensor in model.module.state_dict().items():
        if tensor.is_floating_point():
            assert torch.equal(loaded[name], tensor), name


def test_rumor_export_of_a_built_in_peer_reads_its_config(tmp_path: Path) -> None:
    (tmp_path / "p1").mkdir()
    (tmp_path / "p1" / "peer.toml").write_text(
        '[identity]\npeer = "p1"\n[topology]\nfamily = "ring"\nsize = 4\nnode = 1\n'
        '[learning]\ntask = "synthetic"\nmodel = "mlp:hidden=8"\n'
    )
    flat = model_from_spec("mlp:hidden=8", 60, 10)
    params = flat.init(seed=5)
    ckpt = _checkpoint(tmp_path / "p1", "mlp:hidden=8", params, layout=torch_module(flat))
    out = tmp_path / "mlp.safetensors"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    module = torch_module(flat)
    module.load_state_dict(safetensors.torch.load_file(out))
    x = torch.randn(4, 60)
    assert torch.allclose(module(x), flat.forward(params, x), atol=1e-6)


def test_rumor_export_skips_a_corrupt_newest_checkpoint_and_changes_nothing(tmp_path: Path) -> None:
    vector = torch.zeros(vector_size(forecast.net()))
    _checkpoint(tmp_path, "examples.forecast:net", vector)
    bad = tmp_path / "checkpoints" / "round-0000000099.ckpt"
    bad.write_bytes(encode_state(PeerState(round=99, params=vector))[:-3])
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "m.safetensors")]) == 0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("nothing", "no such file or directory"),
        ("empty", "no checkpoint (round-*.ckpt)"),
        ("builtin-alone", "input size comes from the peer's peer.toml"),
        ("wrong-size", "this module's floating-point state has 833 values"),
        ("no-model", "the checkpoint records no model spec"),
        ("changed", "now builds a module of another layout than the peer trained"),
    ],
)
def test_rumor_export_bad_sources_are_one_line_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    source = tmp_path / "src"
    if setup == "empty":
        source.mkdir()
    elif setup == "builtin-alone":
        source = _checkpoint(tmp_path, "logreg", torch.zeros(610))
    elif setup == "wrong-size":
        source = _checkpoint(tmp_path, "examples.forecast:net", torch.zeros(7))
    elif setup == "changed":
        size = vector_size(forecast.net())
        source = _checkpoint(tmp_path, "examples.forecast:net", torch.zeros(size), layout=har.net())
    elif setup == "no-model":
        source = _checkpoint(tmp_path, "", torch.zeros(7))
    with pytest.raises(SystemExit) as info:
        main(["export", str(source), "--out", str(tmp_path / "m.safetensors")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_rumor_export_of_a_built_in_model_on_plug_in_data_sizes_it_by_the_data(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "p0"
    folder.mkdir()
    (folder / "peer.toml").write_text(
        '[identity]\npeer = "p0"\n[topology]\nfamily = "ring"\nsize = 3\nnode = 0\n'
        '[learning]\nmodel = "mlp:hidden=4"\ndata = "tests.peer.plugins.usermods:blobs"\n'
    )
    flat = model_from_spec("mlp:hidden=4", 6, 3)  # blobs: 6 inputs, 3 classes
    params = flat.init(seed=2)
    _checkpoint(folder, "mlp:hidden=4", params, layout=torch_module(flat))
    out = tmp_path / "m.safetensors"
    assert main(["export", str(folder), "--out", str(out)]) == 0
    loaded = safetensors.torch.load_file(out)
    assert loaded["fc1.weight"].shape == (4, 6)
    in_order = [loaded[name].reshape(-1) for name, _, _ in flat.layout]
    assert torch.equal(torch.cat(in_order), params)
