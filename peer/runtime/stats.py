"""Per-round statistics of a peer: a typed record, its telemetry JSON, and its log line.

The telemetry JSON is what ``rumor watch`` and ``rumor up`` read; its keys are the field names of
:class:`RoundStats` plus ``peer`` and ``swarm``, except that the metric's value goes under the
metric's short name (``accuracy``, ``mse``, or a plug-in's function name), with ``metric`` and
``higher_is_better`` saying which it is.

>>> s = RoundStats(round=3, train_loss=0.5, accuracy=0.8, neighbours=2, alive=2, received=2,
...                bytes_out=10, bytes_in=20, rejected={"replayed_message": 1})
>>> s.rejected_total, log_line(s)
(1, 'round 3: train loss 0.5000 acc 0.800 nbrs 2/2 got 2 out 10 B in 20 B rejected 1')
>>> json.loads(to_json(s, peer="p0", swarm="lab"))["rejected_total"]
1
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from peer.tasks.plugin import metric_key

__all__ = ["RoundStats", "Timings", "log_line", "to_json"]


@dataclass(frozen=True, kw_only=True)
class Timings:
    """Seconds spent in each phase of one round.

    The exchange is ``encode + publish + wait + decode + mix``: these five add up to the wall
    time from the end of training to the end of mixing (:attr:`exchange`).
    """

    train: float = 0.0
    encode: float = 0.0
    publish: float = 0.0
    """Publishing this round's frame, until the broker acknowledged its last chunk."""
    wait: float = 0.0
    """The sync barrier: waiting for the neighbours' frames of this round."""
    decode: float = 0.0
    """Validating and applying received frames while publishing or waiting (on the event loop);
    taken out of ``publish`` and ``wait``."""
    mix: float = 0.0
    evaluate: float = 0.0
    """The held-out evaluation (only in rounds that evaluate: ``learning.eval_every``)."""
    checkpoint: float = 0.0
    total: float = 0.0

    @property
    def exchange(self) -> float:
        """Encode, publish, wait, decode and mix: the round's gossip."""
        return self.encode + self.publish + self.wait + self.decode + self.mix


@dataclass(frozen=True, kw_only=True)
class RoundStats:
    """What one finished round reports. ``round`` counts finished rounds (1 after the first)."""

    round: int
    train_loss: float | None
    """Mean training loss of this round's local steps (None or NaN when it took none)."""
    accuracy: float | None
    """The metric on this peer's test set (accuracy unless ``metric`` says otherwise; None: the
    task has none, or no round was evaluated yet), as last measured: in round
    ``evaluated_at``."""
    neighbours: int
    """In-neighbours in the graph this round."""
    alive: int
    """Of those, alive (presence and silence timeout)."""
    received: int
    """Of those, mixed this round."""
    bytes_out: int
    bytes_in: int
    rejected: Mapping[str, int] = field(default_factory=dict)
    """Messages rejected since start, by reason (cumulative)."""
    ignored: Mapping[str, int] = field(default_factory=dict)
    """Valid frames left out of the mix since start, by reason (cumulative): ``stale_round``, a
    sync frame that came after its round was mixed."""
    timeouts: int = 0
    """Sync rounds since start whose wait ended at the round timeout with frames missing."""
    publish_failed: int = 0
    """Publishes dropped since start because the broker link was down (cumulative)."""
    timings: Timings = field(default_factory=Timings)
    peak_rss_mb: float = 0.0
    """The process's peak resident memory so far (0 where the platform does not say)."""
    dp_epsilon: float | None = None
    """Differential privacy spent so far (epsilon at ``privacy.delta``); None: DP is off."""
    done: bool = False
    """The last round of the run."""
    evaluated_at: int | None = None
    """The round (counted as ``round`` is) whose model ``accuracy`` was measured on: every
    ``learning.eval_every`` rounds and the last one; None before the first evaluation."""
    metric: str = "accuracy"
    higher_is_better: bool = True

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def to_json(stats: RoundStats, *, peer: str, swarm: str) -> str:
    """The telemetry message (JSON object; NaN becomes null)."""
    data = asdict(stats)
    data.pop("accuracy")
    data["train_loss"] = _finite(stats.train_loss)
    data[metric_key(stats.metric)] = _finite(stats.accuracy)
    data["rejected"], data["ignored"] = dict(stats.rejected), dict(stats.ignored)
    data.update(peer=peer, swarm=swarm, rejected_total=stats.rejected_total)
    return json.dumps(data, sort_keys=True)


def log_line(stats: RoundStats) -> str:
    loss = "-" if _finite(stats.train_loss) is None else f"{stats.train_loss:.4f}"
    acc = "-" if stats.accuracy is None else f"{stats.accuracy:.3f}"
    label = "acc" if stats.metric == "accuracy" else metric_key(stats.metric)
    return (
        f"round {stats.round}: train loss {loss} {label} {acc} "
        f"nbrs {stats.alive}/{stats.neighbours} "
        f"got {stats.received} out {stats.bytes_out} B in {stats.bytes_in} B "
        f"rejected {stats.rejected_total}"
    )
