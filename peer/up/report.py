"""The end of ``rumor up``: each peer's last stats line, the final table and summary.json."""

from __future__ import annotations

import json
from pathlib import Path

from peer.tasks.plugin import metric_key
from peer.up.procs import PeerProcess

__all__ = ["attack_summary", "last_stats", "peer_rows", "render_table", "write_summary"]


def last_stats(path: Path) -> dict[str, object]:
    """The last complete JSON line of a peer's stats file ({} if none)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            data = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(data, dict):
            return data
    return {}


def peer_rows(
    peers: list[PeerProcess], *, attackers: frozenset[str] = frozenset()
) -> list[dict[str, object]]:
    """One row per peer from its last stats line; ``attackers``: the peers run with
    ``--attack`` (their rows say ``"attacker": true``)."""
    rows = []
    for peer in peers:
        stats = last_stats(peer.stats)
        metric = str(stats.get("metric", "accuracy"))
        rows.append(
            {
                "peer": peer.name,
                "metric": metric,
                "higher_is_better": stats.get("higher_is_better", True),
                metric_key(metric): stats.get(metric_key(metric)),
                "train_loss": stats.get("train_loss"),
                "rounds": stats.get("round", 0),
                "bytes_sent": stats.get("bytes_out", 0),
                "bytes_received": stats.get("bytes_in", 0),
                "rejected": stats.get("rejected_total", 0),
                "rejected_by_reason": stats.get("rejected", {}),
                "publish_failed": stats.get("publish_failed", 0),
                "dp_epsilon": stats.get("dp_epsilon"),
                "exit_status": peer.process.returncode,
                "log": str(peer.log),
            }
            | ({"attacker": peer.name in attackers} if attackers else {})
        )
    return rows


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value >= 1000:
        return f"{value:.4g}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def render_table(rows: list[dict[str, object]]) -> str:
    """The final table: one line per peer, with the metric's column named after it (accuracy,
    mse, ...), then its mean and whether higher is better."""
    key = metric_key(str(rows[0].get("metric", "accuracy"))) if rows else "accuracy"
    columns: tuple[str, ...] = ("peer", key, "rounds", "bytes_sent", "rejected", "exit_status")
    if any(r.get("dp_epsilon") is not None for r in rows):  # differential privacy spent
        columns = (*columns[:3], "dp_epsilon", *columns[3:])
    widths = [max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    for row in rows:
        cells = (_cell(row.get(c)).rjust(w) for c, w in zip(columns, widths, strict=True))
        lines.append("  ".join(cells))
    values = [v for r in rows if isinstance(v := r.get(key), float)]
    if values:
        better = "higher" if rows[0].get("higher_is_better", True) else "lower"
        lines.append(
            f"mean {key} {sum(values) / len(values):.4f} over {len(values)} peers "
            f"({better} is better)"
        )
    split = _by_role(rows)
    if split is not None:
        honest, attackers = split
        names = ", ".join(str(r["peer"]) for r in rows if r.get("attacker"))
        lines.append(
            f"honest peers: mean {key} {_mean(honest)}, worst {_worst(rows, honest)} over "
            f"{len(honest)}; attackers ({names}): mean {key} {_mean(attackers)}"
        )
    return "\n".join(lines)


def _metric(rows: list[dict[str, object]], *, attacker: bool) -> list[float]:
    key = metric_key(str(rows[0].get("metric", "accuracy")))
    return [v for r in rows if r.get("attacker") is attacker and isinstance(v := r.get(key), float)]


def _by_role(rows: list[dict[str, object]]) -> tuple[list[float], list[float]] | None:
    """The honest peers' metric values and the attackers', or None without attackers."""
    if not any(r.get("attacker") for r in rows):
        return None
    return _metric(rows, attacker=False), _metric(rows, attacker=True)


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.4f}" if values else "-"


def _worst(rows: list[dict[str, object]], values: list[float]) -> str:
    if not values:
        return "-"
    higher = rows[0].get("higher_is_better", True)
    return f"{min(values) if higher else max(values):.4f}"


def attack_summary(rows: list[dict[str, object]], attack: str | None) -> dict[str, object]:
    """summary.json's ``byzantine`` entry: the attack, the attackers, and the honest peers'
    metric (mean and worst) apart from the attackers' mean; {} without attackers."""
    split = _by_role(rows)
    if attack is None or split is None:
        return {}
    honest, attackers = split
    higher = rows[0].get("higher_is_better", True)
    worst = (min if higher else max)(honest) if honest else None
    return {
        "byzantine": {
            "attack": attack,
            "peers": [r["peer"] for r in rows if r.get("attacker")],
            "honest_mean": sum(honest) / len(honest) if honest else None,
            "honest_worst": worst,
            "attackers_mean": sum(attackers) / len(attackers) if attackers else None,
        }
    }


def write_summary(path: Path, rows: list[dict[str, object]], extra: dict[str, object]) -> None:
    path.write_text(json.dumps({"peers": rows, **extra}, indent=2, sort_keys=True) + "\n")
