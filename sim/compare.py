"""``rumor compare``: overlay runs of ``rumor sim``, ``rumor sweep`` and ``rumor up``.

Each RUN_DIR holds a rounds.jsonl (one run: sim or up) or a curves.jsonl (a sweep: one curve per
setting and seed). One PNG shows the mean peer metric with its min-max band and the consensus
distance, against rounds and against bytes sent; the table gives each curve's final values and
the largest gap between any two curves' mean metric at a round they both evaluated.

>>> a = [{"round": 0, "acc_mean": 0.1}, {"round": 10, "acc_mean": 0.8}]
>>> b = [{"round": 0, "acc_mean": 0.1}, {"round": 10, "acc_mean": 0.75}]
>>> gap = largest_gap([("a", a), ("b", b)], "acc_mean")
>>> (gap[0], gap[1], gap[2], round(gap[3], 3))
('a', 'b', 10, 0.05)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from protocol.errors import ConfigError

__all__ = ["Curve", "compare_table", "largest_gap", "load_curves", "metric_of", "plot_compare"]

Record = Mapping[str, object]
Curve = tuple[str, Sequence[Record]]

_MAX_LINES = 1_000_000


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    records = []
    try:
        with path.open(encoding="utf-8") as stream:
            for number, line in enumerate(stream, 1):
                if number > _MAX_LINES:
                    raise ConfigError(f"{str(path)!r}: more than {_MAX_LINES} lines")
                if not line.strip():
                    continue
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ConfigError(f"{str(path)!r} line {number}: not a JSON object")
                records.append(data)
    except OSError as exc:
        raise ConfigError(f"{str(path)!r}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{str(path)!r}: not JSON lines ({exc})") from exc
    return records


def _kind(run: Path) -> str:
    """``up`` for a rumor up run directory, else ``sim``."""
    try:
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "sim"
    return "up" if isinstance(summary, dict) and "broker" in summary else "sim"


def load_curves(runs: Sequence[Path]) -> list[Curve]:
    """Every run's curves, labelled ``DIR (sim)``, ``DIR (up)`` or ``DIR: setting seed S``."""
    curves: list[Curve] = []
    for run in runs:
        if (run / "rounds.jsonl").is_file():
            records = [r for r in _read_jsonl(run / "rounds.jsonl") if "round" in r]
            curves.append((f"{run.name} ({_kind(run)})", records))
        elif (run / "curves.jsonl").is_file():
            grouped: dict[str, list[Record]] = {}
            for record in _read_jsonl(run / "curves.jsonl"):
                setting = f"{record.get('topology')} {record.get('codec')} {record.get('failures')}"
                name = f"{run.name}: {setting} seed {record.get('seed')}"
                grouped.setdefault(name, []).append(record)
            curves.extend(grouped.items())
        else:
            raise ConfigError(
                f"{str(run)!r}: no rounds.jsonl or curves.jsonl (not a run directory)"
            )
    if not curves:
        raise ConfigError("no runs to compare")
    return curves


def metric_of(curves: Sequence[Curve]) -> str:
    """The mean-metric key the curves share (``acc_mean``, ``mse_mean``, ...), or
    ``consensus_distance`` when they have none."""
    for _, records in curves:
        for record in records:
            for key, value in record.items():
                if key.endswith("_mean") and "honest" not in key and value is not None:
                    return key
    return "consensus_distance"


def _values(records: Sequence[Record], key: str) -> dict[int, float]:
    out = {}
    for record in records:
        r, v = record.get("round"), record.get(key)
        if type(r) is int and isinstance(v, int | float) and not isinstance(v, bool):
            out[r] = float(v)
    return out


def largest_gap(curves: Sequence[Curve], key: str) -> tuple[str, str, int, float] | None:
    """(curve, curve, round, gap): the largest |difference| of ``key`` between two curves at a
    round both evaluated; None with fewer than two curves sharing a round."""
    best: tuple[str, str, int, float] | None = None
    series = [(label, _values(records, key)) for label, records in curves]
    for i, (la, a) in enumerate(series):
        for lb, b in series[i + 1 :]:
            for r in sorted(a.keys() & b.keys()):
                gap = abs(a[r] - b[r])
                if best is None or gap > best[3]:
                    best = (la, lb, r, gap)
    return best


def compare_table(curves: Sequence[Curve], key: str) -> str:
    """Final values per curve, and the largest gap between curves."""
    base = key.removesuffix("_mean")
    header = ["run", "round", key, f"{base}_min", f"{base}_max", "consensus", "MB sent"]
    rows = [header]
    for label, records in curves:
        last = records[-1] if records else {}
        cells = [label, last.get("round")]
        cells += [last.get(k) for k in (key, f"{base}_min", f"{base}_max", "consensus_distance")]
        sent = last.get("bytes_sent")
        cells.append(sent / 1e6 if isinstance(sent, int | float) else None)
        rows.append([_cell(c) for c in cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    gap = largest_gap(curves, key)
    if gap is not None:
        lines.append(f"largest gap in {key}: {gap[3]:.4f} at round {gap[2]} ({gap[0]} vs {gap[1]})")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value else f"{value:.4f}"
    return str(value)


def plot_compare(curves: Sequence[Curve], path: Path, *, key: str, title: str) -> None:
    """One PNG: the metric (mean line, min-max band) and the consensus distance, against
    rounds (left) and MB sent (right)."""
    from sim.plots import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    base = key.removesuffix("_mean")
    try:
        for col, x in enumerate(("round", "bytes_sent")):
            for label, records in curves:
                xs, mean, low, high = _band(records, x, key, f"{base}_min", f"{base}_max")
                if xs:
                    line = axes[0][col].plot(xs, mean, label=label)[0]
                    if low:
                        axes[0][col].fill_between(xs, low, high, alpha=0.15, color=line.get_color())
                cx, cd, _, _ = _band(records, x, "consensus_distance", "", "")
                kept = [(a, b) for a, b in zip(cx, cd, strict=True) if b > 0]
                if kept:
                    axes[1][col].plot([a for a, _ in kept], [b for _, b in kept], label=label)
            for row, y in enumerate((key, "consensus_distance")):
                ax = axes[row][col]
                ax.set_xlabel("MB sent (all peers)" if x == "bytes_sent" else "round")
                ax.set_ylabel(y.replace("_", " ") + (" (min-max band)" if row == 0 else ""))
                ax.grid(True, alpha=0.3)
                if row == 1 and ax.lines:
                    ax.set_yscale("log")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def _band(
    records: Sequence[Record], x: str, y: str, low: str, high: str
) -> tuple[list[float], list[float], list[float], list[float]]:
    """x, y and (when every point has both) the band's low and high."""
    xs, ys, lo, hi = [], [], [], []
    for record in records:
        xv, yv = record.get(x), record.get(y)
        if not (isinstance(xv, int | float) and isinstance(yv, int | float)):
            continue
        xs.append(float(xv) / (1e6 if x == "bytes_sent" else 1.0))
        ys.append(float(yv))
        a, b = record.get(low), record.get(high)
        lo.append(float(a) if isinstance(a, int | float) else float(yv))
        hi.append(float(b) if isinstance(b, int | float) else float(yv))
    if not low:
        return xs, ys, [], []
    return xs, ys, lo, hi
