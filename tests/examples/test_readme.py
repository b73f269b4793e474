"""README's "Use your own model and data" example, run as written: its module file and its
``rumor sim`` command (from the module's directory), and the export and load it shows."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import safetensors.torch
import torch

from peer.broker import Broker
from peer.cli import main

_README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = _README.read_text()
    start = text.index("## Use your own model and data")
    return text[start : text.index("\n## ", start + 1)]


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The README's mysensors.py in a fresh working directory."""
    blocks = re.findall(r"```python\n(.*?)```", _section(), flags=re.DOTALL)
    module = next(b for b in blocks if b.startswith("# mysensors.py"))
    (tmp_path / "mysensors.py").write_text(module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("mysensors", None)


def _command(name: str) -> list[str]:
    """The arguments of the README's ``rumor NAME`` command, continuation lines joined."""
    shell = re.search(r"```sh\n(.*?)```", _section(), flags=re.DOTALL)
    assert shell is not None
    joined = shell.group(1).replace("\\\n", " ")
    line = next(x for x in joined.splitlines() if x.startswith(f"rumor {name} "))
    return line.split("#")[0].split()[1:]


def test_the_readme_sim_command_learns(user_dir: Path) -> None:
    argv = _command("sim")
    assert main([*argv, "--threads", "1", "--quiet", "--out", str(user_dir / "run")]) == 0
    final = json.loads((user_dir / "run" / "summary.json").read_text())["final"]
    assert final["acc_mean"] >= 0.9  # the README says 0.95


@pytest.mark.slow
def test_the_readme_up_export_and_load(user_dir: Path, broker: Broker) -> None:
    argv = _command("up")
    rounds = argv.index("--rounds") + 1
    argv[rounds] = "5"
    assert main([*argv, "--broker", broker.address]) == 0
    assert main(_command("export")) == 0
    blocks = re.findall(r"```python\n(.*?)```", _section(), flags=re.DOTALL)
    loader = next(b for b in blocks if "load_file" in b)
    namespace: dict[str, object] = {}
    exec(loader, namespace)  # the README's own lines
    model = namespace["model"]
    assert isinstance(model, torch.nn.Module)
    assert set(safetensors.torch.load_file("mine.safetensors")) == set(model.state_dict())
