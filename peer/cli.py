"""The ``rumor`` command: a thin dispatcher over the subcommands each package registers.

Packages declare their subcommands in the ``rumor.commands`` entry-point group (see
pyproject.toml); each entry is a ``register(subparsers)`` function that adds one or more parsers
and sets ``handler`` on them. Loading them by entry point keeps peer/ from importing sim/.

A handler takes the parsed arguments and returns an exit status. It turns them into a frozen
config at once; namespaces travel no further. Exit statuses: 0 success, 1 a runtime error,
2 bad input (arguments, config, files), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import NoReturn, TypeAlias

from peer.stopping import STOP_SIGNALS
from protocol.errors import ConfigError, RumorError

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "Subparsers", "main", "run"]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[argparse.Namespace], int]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

log = logging.getLogger("rumor")

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_EXAMPLES = """\
examples:
  rumor up --peers 8 --topology ring --rounds 100 --partition dirichlet:alpha=0.1
  rumor peer --config peer.toml
  rumor watch --broker 127.0.0.1:1883 --swarm local
  rumor sim --task consensus --topology ring --peers 16 --rounds 200
  rumor sweep --task fmnist --topologies complete,torus,ring --target-acc 0.7 --out runs/t
  rumor topology random_regular:d=4 --nodes 1000

rumor COMMAND --help shows every option of a command. Exit status: 0 done, 1 runtime error,
2 bad input (arguments, config, files), 130 interrupted.
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rumor",
        description="Decentralized gossip learning over MQTT, and a simulator for it.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(parser, default="INFO")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _registered_commands():
        register(subparsers)
    for sub in subparsers.choices.values():
        # After the subcommand too (``rumor sim --log-level DEBUG``); SUPPRESS keeps a value
        # given before the subcommand when none is given after it.
        _add_common(sub, default=argparse.SUPPRESS)
    return parser


def _add_common(parser: argparse.ArgumentParser, *, default: str) -> None:
    """The options every subcommand takes, before or after its name."""
    parser.add_argument(
        "--log-level",
        default=default,
        type=str.upper,
        choices=_LOG_LEVELS,
        help="logging threshold on stderr (default: INFO)",
    )


def _registered_commands() -> list[Callable[[Subparsers], None]]:
    entries = sorted(entry_points(group="rumor.commands"), key=lambda e: e.name)
    return [entry.load() for entry in entries]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rumor`` with ``argv`` (default: the process arguments); return the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        parser.exit(EXIT_USAGE, f"rumor {args.command}: error: {exc}\n")
    except RumorError as exc:
        log.error("%s", exc)
        return EXIT_ERROR
    except KeyboardInterrupt:
        log.warning("interrupted")
        return EXIT_INTERRUPTED


def run() -> NoReturn:
    """The ``rumor`` process: :func:`main`, then exit with its status.

    Once the command has finished there is nothing left for a stop signal to stop, but the
    interpreter's teardown (torch's modules) takes a moment: a SIGTERM then, with its default
    action back, ended a peer that had finished cleanly as killed (-15) instead of 0.
    """
    status = main()
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(status)


if __name__ == "__main__":
    run()
