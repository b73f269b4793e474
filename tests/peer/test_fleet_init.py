"""``rumor init``: per-device configs from one fleet description."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from peer.cli import main
from peer.config import load_config
from peer.runtime.neighbours import static_neighbourhood

EXAMPLE = Path(__file__).parents[2] / "deploy" / "fleet.example.toml"

BASE = """
[swarm]
name = "lab"
[broker]
host = "gw"
[topology]
family = "ring"
[learning]
task = "consensus"
[[devices]]
name = "a"
[[devices]]
name = "b"
[[devices]]
name = "c"
"""


def _init(tmp_path: Path, text: str, *extra: str) -> int:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(text)
    return main(["init", str(fleet), "--out", str(tmp_path / "out"), *extra])


def test_the_example_gives_one_loadable_config_per_device(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["init", str(EXAMPLE), "--out", str(out)]) == 0
    names = ["kitchen", "garage", "attic"]
    configs = [load_config(out / "peers" / n / "peer.toml") for n in names]
    assert [c.identity.peer for c in configs] == names
    assert [c.learning.partition_index for c in configs] == [0, 1, 2]
    assert {c.learning.peers for c in configs} == {3}
    assert configs[0].availability.hours == "22:00-06:00"
    assert configs[2].availability.battery_min == 40  # the device's own value wins
    assert configs[0].metrics.port == 9108
    hoods = [static_neighbourhood(c.topology, me=c.identity.peer) for c in configs]
    assert hoods[0] is not None
    assert sorted(hoods[0].neighbours) == ["attic", "garage"]  # the ring, in device order
    summary = (out / "fleet.md").read_text()
    for name in names:
        assert f"## {name} ({name}.lan)" in summary
    assert "/usr/share/datasets/fashion-mnist" in summary


def test_secure_adds_credentials_that_the_configs_point_at(tmp_path: Path) -> None:
    assert _init(tmp_path, BASE, "--secure") == 0
    out = tmp_path / "out"
    for name in "abc":
        folder = out / "peers" / name
        config = load_config(folder / "peer.toml")  # checks that every named file exists
        assert config.security.signing_key == folder / "signing.key"
        assert config.broker.tls_cert == folder / "client.crt"
        assert config.broker.port == 8883
        assert (folder / "client.key").stat().st_mode & 0o077 == 0
    assert (out / "broker" / "mosquitto.conf").is_file()
    assert "client.key, signing.key" in (out / "fleet.md").read_text()


def test_membership_and_plugin_files(tmp_path: Path) -> None:
    (tmp_path / "mysensors.py").write_text("def net(): ...\n")
    text = BASE.replace('family = "ring"', "membership = true").replace(
        '[swarm]\nname = "lab"', '[swarm]\nname = "lab"\nfiles = ["mysensors.py"]'
    )
    text = text.replace('task = "consensus"', 'task = "consensus"\nmodel = "mysensors:net"')
    assert _init(tmp_path, text) == 0
    folder = tmp_path / "out" / "peers" / "b"
    config = load_config(folder / "peer.toml")
    assert config.topology.membership
    assert (folder / "mysensors.py").is_file()
    assert not (folder / "graph.json").exists()
    assert "the Python module mysensors" in (tmp_path / "out" / "fleet.md").read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('name = "lab"', 'nam = "lab"'), "swarm.nam: unknown key"),
        (('host = "gw"', 'hots = "gw"'), "broker.host: missing"),
        (('name = "b"', 'name = "a"'), "the name 'a' is used twice"),
        (('name = "b"', 'name = "b/x"'), r"devices\[1\]\.name = 'b/x'"),
        (('family = "ring"', 'family = "torus"'), "topology.family = 'torus'"),
        (("[learning]", "[gossip]\nroundz = 3\n[learning]"), "device 'a': gossip.roundz"),
        (("[learning]", "[availability]\nhours = '9-5'\n[learning]"), "availability.hours"),
        (("[learning]", "[identity]\npeer = 'x'\n[learning]"), r"\[identity\]: written by"),
        (('[[devices]]\nname = "c"', ""), "at least two device"),
        (("[learning]", "[broker]\n[learning]"), "invalid TOML"),
    ],
)
def test_a_bad_description_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], message: str
) -> None:
    text = BASE.replace(*change, 1)
    if change[1] == "":
        text = BASE.replace('[[devices]]\nname = "b"\n[[devices]]\nname = "c"', "")
    with pytest.raises(SystemExit) as exit_info:
        _init(tmp_path, text)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("rumor init: error: fleet"), err  # it names the file
    assert "fleet.toml" in err
    assert re.search(message, err), err
    assert not (tmp_path / "out" / "peers").exists()


def test_an_existing_fleet_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _init(tmp_path, BASE) == 0
    with pytest.raises(SystemExit):
        _init(tmp_path, BASE)
    assert "already holds a fleet" in capsys.readouterr().err
