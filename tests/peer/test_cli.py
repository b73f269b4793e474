import argparse
import signal
import subprocess
import sys

import pytest

from peer import cli
from peer.stopping import STOP_SIGNALS
from protocol.errors import ConfigError, RumorError


def _fake_commands(monkeypatch: pytest.MonkeyPatch, error: Exception | None) -> None:
    def register(subparsers: cli.Subparsers) -> None:
        parser = subparsers.add_parser("fake", help="a command for the test")

        def handler(args: argparse.Namespace) -> int:
            if error is not None:
                raise error
            return 0

        parser.set_defaults(handler=handler)

    monkeypatch.setattr(cli, "_registered_commands", lambda: [register])


@pytest.mark.parametrize(
    ("error", "status"),
    [(None, 0), (ConfigError("bad value 7 for x"), 2), (RumorError("broker gone"), 1)],
)
def test_handler_errors_map_to_exit_statuses(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception | None,
    status: int,
) -> None:
    _fake_commands(monkeypatch, error)
    try:
        result = cli.main(["fake"])
    except SystemExit as exc:
        result = int(exc.code or 0)
    assert result == status
    if isinstance(error, ConfigError):
        assert capsys.readouterr().err.strip() == "rumor fake: error: bad value 7 for x"


def test_unknown_command_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_commands(monkeypatch, None)
    with pytest.raises(SystemExit) as exc:
        cli.main(["nonsense"])
    assert exc.value.code == 2


def test_installed_command_lists_registered_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "peer", "--help"], capture_output=True, text=True, check=True
    )
    assert "topology" in result.stdout


def test_building_the_parser_does_not_import_torch() -> None:
    """`rumor --help` and `rumor topology` must stay quick on small devices, where importing
    torch takes seconds: only the commands that train or simulate import it."""
    probe = (
        "import sys; from peer.cli import _build_parser; _build_parser(); "
        "import topology; print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["--log-level", "debug", "peer", "--config", "p.toml"], "DEBUG"),
        (["peer", "--config", "p.toml", "--log-level", "warning"], "WARNING"),
        (["sim", "--log-level", "debug", "--task", "consensus"], "DEBUG"),
        (["--log-level", "ERROR", "sim", "--task", "consensus"], "ERROR"),
        (["sim", "--task", "consensus"], "INFO"),
    ],
)
def test_log_level_is_accepted_before_and_after_the_subcommand(argv: list[str], level: str) -> None:
    args = cli._build_parser().parse_args(argv)
    assert args.log_level == level


def test_a_finished_process_ignores_stop_signals_while_it_exits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SIGTERM during the interpreter's teardown must not turn a clean exit into a kill."""
    monkeypatch.setattr(cli, "main", lambda: 0)
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        with pytest.raises(SystemExit) as ended:
            cli.run()
        assert ended.value.code == 0
        assert all(signal.getsignal(sig) == signal.SIG_IGN for sig in STOP_SIGNALS)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
