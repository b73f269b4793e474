"""The ``peer``, ``up`` and ``watch`` subcommands, through their own parser."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from peer.commands import register
from peer.config import load_config
from protocol.errors import ConfigError

MEMBERSHIP = '[identity]\npeer = "a"\n[topology]\nmembership = true\n'
MEMBERSHIP += "[learning]\npeers = 4\npartition_index = 1\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rumor")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "peer.toml"
    path.write_text(body)
    return path


def test_print_config_applies_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(
        tmp_path,
        MEMBERSHIP,
    )
    args = _parser().parse_args(
        ["peer", "--config", str(path), "--set", "gossip.rounds=7", "--print-config"]
    )
    assert args.handler(args) == 0
    printed = tmp_path / "printed.toml"
    printed.write_text(capsys.readouterr().out)
    assert load_config(printed).gossip.rounds == 7


def test_bad_config_value_names_the_key(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        MEMBERSHIP + '[gossip]\nmode = "eager"\n',
    )
    args = _parser().parse_args(["peer", "--config", str(path), "--print-config"])
    with pytest.raises(ConfigError, match=r"gossip\.mode"):
        args.handler(args)


def test_up_rejects_a_single_peer(tmp_path: Path) -> None:
    args = _parser().parse_args(["up", "--peers", "1", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="--peers 1"):
        args.handler(args)


@pytest.mark.parametrize(
    ("extra_config", "extra_args", "named"),
    [
        ("", ["--stats-file", "/nonexistent-dir/stats.jsonl"], "--stats-file"),
        ('[logging]\nfile = "/nonexistent-dir/peer.log"\n', [], "logging.file"),
        ('[storage]\ncheckpoint_dir = "/proc/rumor-cannot-be-here"\n', [], "checkpoint_dir"),
    ],
)
def test_unwritable_paths_are_config_errors_before_any_round(
    tmp_path: Path, extra_config: str, extra_args: list[str], named: str
) -> None:
    body = MEMBERSHIP + 'task = "consensus"\n'
    path = _config(tmp_path, body + extra_config)
    args = _parser().parse_args(["peer", "--config", str(path), *extra_args])
    with pytest.raises(ConfigError, match=named):
        args.handler(args)
