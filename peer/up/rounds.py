"""``rumor up --out``'s rounds.jsonl: the simulator's fields, from the peers' snapshots.

After the run every peer's model snapshots (``rumor peer --snapshot-dir``) are evaluated on the
task's whole test set, as ``rumor sim`` evaluates its peers, so the two files compare line by
line (``rumor compare``). Per evaluated round: the metric's mean, min and max over the peers up in
that round (``acc_*`` for accuracy), the metric of the average model, the mean test loss and
training loss, the consensus distance over all peers (a peer that is down counts with its last
model, as the simulator's frozen row), and cumulative bytes sent and received by all peers (their
transports' counters, which include telemetry; a restarted peer's counters continue). ``alive``
is the number of peers the failure schedule has up; ``stale_pairs`` and ``wall_s`` are null.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from peer.config import PeerConfig
from peer.runtime.learning import task_spec
from peer.snapshots import read_snapshot, snapshot_rounds
from peer.tasks import build_task
from peer.tasks.learner import evaluate
from peer.tasks.plugin import metric_key
from peer.tasks.task import Task
from peer.up.failures import alive_at
from protocol.failures import Crash

__all__ = ["consensus_distance", "eval_rounds", "write_rounds"]


def eval_rounds(rounds: int, every: int) -> list[int]:
    """The rounds the simulator evaluates: the start, every ``every``-th and the last.

    >>> eval_rounds(25, 10)
    [0, 10, 20, 25]
    """
    return sorted(set(range(0, rounds + 1, every)) | {rounds})


def consensus_distance(x: torch.Tensor) -> float:
    """(1/N) sum_i ||x_i - x_bar||^2 over the rows of ``x``, in float64 (the simulator's).

    >>> consensus_distance(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
    1.0
    """
    x64 = x.detach().to(torch.float64)
    return float((x64 - x64.mean(dim=0)).pow(2).sum(dim=1).mean())


def _series(stats: Path) -> dict[int, dict[str, float | None]]:
    """Round -> train_loss and cumulative bytes of one peer; counters carried across restarts."""
    out: dict[int, dict[str, float | None]] = {}
    offset = {"bytes_out": 0.0, "bytes_in": 0.0}
    last = {"bytes_out": 0.0, "bytes_in": 0.0}
    try:
        lines = stats.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if not isinstance(data, dict) or type(data.get("round")) is not int:
            continue
        row: dict[str, float | None] = {}
        for key in ("bytes_out", "bytes_in"):
            value = float(data.get(key) or 0)
            if value < last[key]:  # a restarted process counts from zero again
                offset[key] += last[key]
            last[key] = value
            row[key] = value + offset[key]
        loss = data.get("train_loss")
        row["train_loss"] = float(loss) if isinstance(loss, int | float) else None
        out[data["round"]] = row
    return out


def _at(series: dict[int, dict[str, float | None]], round: int) -> dict[str, float | None]:
    earlier = [r for r in series if r <= round]
    return series[max(earlier)] if earlier else {}


def _model(folder: Path, round: int, start: torch.Tensor) -> torch.Tensor:
    """The peer's snapshot at ``round``, else its newest earlier one, else ``start``."""
    directory = folder / "snapshots"
    earlier = [r for r in snapshot_rounds(directory) if r <= round]
    return read_snapshot(directory, max(earlier)) if earlier else start


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def write_rounds(
    out: Path, folders: list[Path], config: PeerConfig, *, periods: list[Crash], every: int
) -> Path | None:
    """Evaluate the snapshots in each peer folder and write ``out``/rounds.jsonl."""
    learning, peers = config.learning, len(folders)
    rounds = config.gossip.rounds
    if rounds is None:
        return None
    spec = task_spec(config, peers)
    task = build_task(spec)
    start = task.init_params(seed=learning.seed)
    key = metric_key(learning.metric)
    prefix = "acc" if key == "accuracy" else key
    series = [_series(folder / "stats.jsonl") for folder in folders]
    path = out / "rounds.jsonl"
    with path.open("w", encoding="utf-8") as stream:
        for r in eval_rounds(rounds, every):
            x = torch.stack([_model(f, r, start[i]) for i, f in enumerate(folders)])
            x = x.to(start.dtype)
            live = [i for i in range(peers) if alive_at(periods, i, max(r - 1, 0))]
            rows = [_at(s, r) for s in series]
            losses = [v for row in rows if (v := row.get("train_loss")) is not None]
            record: dict[str, object] = {"round": r}
            record |= _evaluate(task, x, live, prefix)
            record |= {
                "train_loss": _finite(sum(losses) / len(losses)) if losses else None,
                "consensus_distance": _finite(consensus_distance(x)),
                "bytes_sent": int(sum(row.get("bytes_out") or 0 for row in rows)),
                "bytes_delivered": int(sum(row.get("bytes_in") or 0 for row in rows)),
                "alive": len(live),
                "stale_pairs": None,
                "wall_s": None,
            }
            stream.write(json.dumps(record, allow_nan=False) + "\n")
    return path


def _evaluate(task: Task, x: torch.Tensor, live: list[int], prefix: str) -> dict[str, object]:
    model, test = task.model, task.test
    if model is None or test is None or not live:
        return {}
    if task.tests is None:
        metric, loss = evaluate(model, x[live], test, recipe=task.recipe)
    else:
        pairs = [evaluate(model, x[i : i + 1], task.tests[i], recipe=task.recipe) for i in live]
        metric = torch.cat([m for m, _ in pairs])
        loss = torch.cat([v for _, v in pairs])
    avg, _ = evaluate(model, x.mean(dim=0, keepdim=True), test, recipe=task.recipe)
    return {
        f"{prefix}_mean": _finite(float(metric.mean())),
        f"{prefix}_min": _finite(float(metric.min())),
        f"{prefix}_max": _finite(float(metric.max())),
        f"{prefix}_avg_model": _finite(float(avg[0])),
        f"{prefix}_honest_mean": None,
        f"{prefix}_honest_worst": None,
        "test_loss": _finite(float(loss.mean())),
    }
