"""User plug-ins: the flat-vector layout of a module, its fingerprint, and bad plug-ins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from peer.cli import main
from peer.runtime.stats import log_line, to_json
from peer.tasks import Dataset, PeerData, TaskSpec, build_task
from peer.tasks.learner import local_sgd
from peer.tasks.module import ModuleModel, module_layout
from peer.tasks.plugin import PluginError, is_plugin, parse_plugin
from peer.tasks.recipe import Recipe
from peer.up.report import render_table
from protocol.errors import ConfigError
from protocol.fingerprint import fingerprint
from tests.peer.runtime_helpers import peer_config, run_memory_swarm

MODS = "tests.peer.plugins.usermods"


def test_layout_walks_state_dict_order_and_keeps_integer_buffers_local() -> None:
    model = ModuleModel(f"{MODS}:bnnet:hidden=4")
    state = model.module.state_dict()
    floating = [k for k, v in state.items() if v.is_floating_point()]
    assert [name for name, _, _ in model.layout] == floating
    assert list(model.local) == ["1.num_batches_tracked"]
    x = model.init(seed=0)
    expected = torch.cat([state[k].reshape(-1) for k in floating])
    assert torch.equal(x, expected)
    assert model.num_params == x.numel() == sum(state[k].numel() for k in floating)
    # buffers are in the vector but not trained
    assert int(model.mask.sum()) == model.num_params - 8
    y = torch.arange(float(model.num_params))
    model.load(y)
    assert float(model.module.state_dict()["1.running_var"][0]) == y[6 * 4 + 4 + 4 + 4]


def test_fingerprints_differ_between_architectures() -> None:
    a = ModuleModel(f"{MODS}:bnnet:hidden=4").layout
    b = ModuleModel(f"{MODS}:bnnet:hidden=5").layout
    c = ModuleModel(f"{MODS}:bnnet:hidden=4,bias=true").layout
    assert len({fingerprint(a), fingerprint(b), fingerprint(c)}) == 3
    assert fingerprint(a) == fingerprint(ModuleModel(f"{MODS}:bnnet:hidden=4", seed=3).layout)


def test_module_layout_rejects_float64() -> None:
    with pytest.raises(PluginError, match="float64"):
        module_layout(torch.nn.Linear(2, 2).double())


def test_same_seed_same_start() -> None:
    a, b = ModuleModel(f"{MODS}:bnnet", seed=1), ModuleModel(f"{MODS}:bnnet", seed=1)
    assert torch.equal(a.init(seed=1), b.init(seed=1))
    assert not torch.equal(a.init(seed=1), a.init(seed=2))


def test_plugin_references() -> None:
    ref = parse_plugin("pkg.mod:net:channels=3,classes=6,name=x")
    assert (ref.module, ref.function, dict(ref.kwargs)) == (
        "pkg.mod",
        "net",
        {"channels": 3, "classes": 6, "name": "x"},
    )
    assert str(ref) == "pkg.mod:net:channels=3,classes=6,name=x"
    assert not is_plugin("mlp:hidden=3")
    assert not is_plugin("cnn")
    assert is_plugin("a:b")
    with pytest.raises(PluginError, match="key=value"):
        parse_plugin("pkg.mod:net:channels")


def _spec(**kwargs: object) -> TaskSpec:
    base: dict[str, object] = {
        "task": "consensus",
        "peers": 2,
        "data": f"{MODS}:blobs",
        "model": f"{MODS}:bnnet",
    }
    return TaskSpec(**(base | kwargs))  # type: ignore[arg-type]


BAD = {
    "import error": ({"model": "no_such_module_xyz:net"}, "cannot import no_such_module_xyz"),
    "missing function": ({"model": f"{MODS}:nope"}, "has no function 'nope'"),
    "not a module": ({"model": f"{MODS}:not_a_module"}, "must return a torch.nn.Module"),
    "input misfit": ({"model": f"{MODS}:bnnet:inputs=5"}, "do not fit targets"),
    "output misfit": (
        {"model": f"{MODS}:regressor", "data": f"{MODS}:blobs:classes=3"},
        "do not fit targets",
    ),
    "mse misfit": ({"loss": "mse", "metric": "mse"}, "do not fit targets"),
    "nan loss": ({"model": f"{MODS}:nan_net"}, "loss at the first step is nan"),
    "data raises": ({"data": f"{MODS}:raises"}, "sensor offline"),
    "data not pairs": ({"data": f"{MODS}:not_pairs"}, "pair of tensors"),
    "bad kwarg": ({"model": f"{MODS}:bnnet:colour=red"}, "unexpected keyword argument"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_plugins_fail_in_one_line_naming_the_plugin(case: str) -> None:
    changes, message = BAD[case]
    with pytest.raises(ConfigError, match=message) as info:
        build_task(_spec(**changes))
    text = str(info.value)
    assert "\n" not in text
    named = str(changes.get("model", changes.get("data", MODS)))
    assert named.split(":")[0] in text or "mse" in text


@pytest.mark.parametrize(
    "bad",
    [
        ["--model", "no_such_module_xyz:net"],
        ["--model", f"{MODS}:nan_net"],
        ["--data", f"{MODS}:not_pairs"],
        ["--metric", "no_such_module_xyz:score"],
    ],
    ids=["import", "nan", "data", "metric"],
)
def test_rumor_up_rejects_a_bad_plugin_before_launching_anything(
    bad: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["up", "--peers", "2", "--rounds", "1", "--out", str(out), "--broker", "127.0.0.1:9"]
    argv += ["--data", f"{MODS}:blobs", "--model", f"{MODS}:bnnet", *bad]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert bad[1].split(":")[0] in err
    assert not out.exists(), "rumor up created its run directory before checking"


async def test_a_regression_daemon_reports_mse_in_telemetry_and_the_up_table() -> None:
    learning = {
        "data": f"{MODS}:line",
        "model": f"{MODS}:regressor",
        "loss": "mse",
        "metric": "mse",
        "optimizer": "adam",
        "lr": 0.02,
        "local_steps": 4,
        "batch_size": 8,
        "eval_every": 1,  # the first round's metric too
    }
    configs = [peer_config(i, 2, family="complete", rounds=6, learning=learning) for i in range(2)]
    results = await run_memory_swarm(configs)
    stats = results[0][0]
    first, last = stats[0], stats[-1]
    assert last.metric == "mse"
    assert last.accuracy is not None
    assert first.accuracy is not None
    assert last.accuracy < first.accuracy
    telemetry = json.loads(to_json(last, peer="p0", swarm="t"))
    assert telemetry["mse"] == last.accuracy
    assert telemetry["metric"] == "mse"
    assert telemetry["higher_is_better"] is False
    assert "accuracy" not in telemetry
    assert " mse " in log_line(last)
    row = {"peer": "p0", "metric": "mse", "higher_is_better": False, "mse": 0.25}
    table = render_table([{**row, "rounds": 6, "bytes_sent": 1, "rejected": 0, "exit_status": 0}])
    assert table.splitlines()[0].split()[1] == "mse"
    assert "mean mse 0.2500 over 1 peers (lower is better)" in table


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_every_peer_draws_its_own_dropout_masks_reproducibly(dropout: float) -> None:
    model = ModuleModel(f"{MODS}:bnnet:dropout={dropout}")
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    shard = Dataset(x, y, 3)
    data = PeerData.from_shards([shard, shard])  # two peers with the same samples
    indices = torch.randint(0, 16, (1, 3, 8)).expand(2, 3, 8)  # and the same batches
    start = model.init(seed=0).expand(2, -1).clone()
    recipe = Recipe.from_specs(optimizer="adam", lr=0.01)

    def train() -> torch.Tensor:
        out, _ = local_sgd(
            model,
            start,
            data,
            steps=3,
            batch_size=8,
            lr=0.01,
            seed=0,
            round=0,
            indices=indices,
            recipe=recipe,
        )
        return out

    first, again = train(), train()
    assert torch.equal(first, again), "randomness is fixed by (seed, round)"
    assert torch.equal(first[0], first[1]) == (dropout == 0.0)


def test_rumor_peer_rejects_a_bad_plugin_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "peer.toml"
    config.write_text(
        '[identity]\npeer = "p0"\n[topology]\nfamily = "ring"\nsize = 4\nnode = 0\n'
        f'[broker]\nport = 9\n[learning]\ndata = "{MODS}:blobs"\nmodel = "{MODS}:nan_net"\n'
    )
    with pytest.raises(SystemExit) as info:
        main(["peer", "--config", str(config)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{MODS}:nan_net" in err
    assert "loss at the first step is nan" in err


def test_a_diverged_daemon_step_leaves_the_optimizer_state_alone() -> None:
    from peer.runtime.learning import load_learner

    learning = {"data": f"{MODS}:blobs", "model": f"{MODS}:bnnet", "optimizer": "adam"}
    learner = load_learner(peer_config(0, 2, learning=learning), index=0, peers=2)
    x, _ = learner.train(learner.start, 0)
    saved = {k: v.clone() for k, v in learner.state_tensors().items()}
    assert float(saved["opt.step"]) == 1.0
    broken = x.clone()
    broken[0] = float("nan")
    diverged, _ = learner.train(broken, 1)
    assert not bool(torch.isfinite(diverged).all())
    after = learner.state_tensors()
    assert all(torch.equal(after[k], v) for k, v in saved.items() if k.startswith("opt."))
    again, _ = learner.train(x, 1)
    assert float(learner.state_tensors()["opt.step"]) == 2.0
    assert bool(torch.isfinite(again).all())
