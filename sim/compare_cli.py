"""``rumor compare RUN_DIR ...``: the command line of :mod:`sim.compare`."""

from __future__ import annotations

import argparse
from pathlib import Path

from sim.compare import compare_table, load_curves, metric_of, plot_compare

__all__ = ["register_compare"]

_EXAMPLES = """\
examples:
  rumor compare runs/sim-crash runs/up-crash --out runs/crash.png
  rumor compare runs/sweep runs/up-ring

Each RUN_DIR is the --out of rumor sim, rumor sweep or rumor up.
"""


def register_compare(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="overlay runs of rumor sim, sweep and up: one plot and a table",
        description="Overlay the mean peer metric (min-max band) and consensus distance of "
        "several runs, against rounds and bytes; print final values and the largest gap.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, help="the PNG to write (default: compare.png here)")
    parser.add_argument("--title", help="the plot's title")
    parser.set_defaults(handler=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    curves = load_curves(args.runs)
    key = metric_of(curves)
    print(compare_table(curves, key))
    out = args.out or Path("compare.png")
    title = args.title or " vs ".join(label for label, _ in curves)
    plot_compare(curves, out, key=key, title=title)
    print(f"wrote {out}")
    return 0
