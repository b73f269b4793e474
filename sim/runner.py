"""One simulation run: builds the task, topology, codec and engine, and yields per-round stats.

The runner writes no files and draws nothing; :mod:`sim.cli` does that with what it yields.

>>> config = SimConfig(task="consensus", topology="complete", peers=4, rounds=2, dim=3)
>>> [s.consensus_distance < 1e-20 for s in Simulation(config).run()]
[True, True]
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator

import numpy as np
import torch

from protocol.aggregator_names import check_aggregator_spec
from protocol.codecs import codec_from_spec, default_gamma
from protocol.errors import ConfigError
from protocol.fingerprint import fingerprint
from protocol.privacy_accounting import PrivacyAccountant
from protocol.spec import parse_spec
from sim import attackers
from sim.config import SimConfig
from sim.device import device_sync, resolve_device
from sim.engines import EngineContext, make_engine
from sim.engines.privacy import trained
from sim.evaluation import Evaluator
from sim.failure_masks import FailureModel
from sim.metrics import SwarmRoundStats, consensus_distance, finite, metric_prefix
from sim.plan import Planner
from sim.profile import PhaseTimer
from sim.tasks import SimTask, load_task
from sim.topo import Topology, make_topology
from sim.traffic import Traffic

__all__ = ["Simulation"]

log = logging.getLogger(__name__)


class Simulation:
    """Everything one run needs, built and validated up front (errors before any work)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        if config.engine == "loop" and self.device.type != "cpu":
            if config.device != "auto":
                raise ConfigError("the loop engine (the reference) runs on cpu only")
            self.device = torch.device("cpu")
        sync = (lambda: device_sync(self.device)) if self.device.type == "cuda" else None
        self.timer = PhaseTimer(enabled=config.profile, sync=sync)
        """Wall time per phase of each round (enabled by ``profile``)."""
        self.codec = codec_from_spec(parse_spec(config.codec))
        self.gamma = default_gamma(self.codec.spec) if config.gamma is None else config.gamma
        self.topology: Topology = make_topology(config.topology, config.peers, seed=config.seed)
        self.task: SimTask = load_task(config).to(self.device)
        self.failures = FailureModel(
            config.failures,
            peers=config.peers,
            rounds=config.rounds,
            local_steps=config.local_steps,
            seed=config.seed,
        )
        self.planner = Planner(
            self.failures,
            peers=config.peers,
            keyframe_interval=config.keyframe_interval,
            seed=config.seed,
        )
        x0 = self.task.init_params
        self.num_params = x0.shape[1]
        byzantine = attackers.resolve(config.failures.byzantine, self.failures.byzantine)
        if byzantine is not None and byzantine.attack.name == "labelflip":
            attackers.poison_labels(self.task.trainer, self.failures.byzantine, task=config.task)
        context = EngineContext(
            trainer=self.task.trainer,
            codec=self.codec,
            gamma=self.gamma,
            seed=config.seed,
            byzantine=byzantine,
            aggregator=check_aggregator_spec(config.aggregator),
            privacy=config.privacy,
            timer=self.timer,
        )
        self.context = context
        self.engine = make_engine(config.engine, context, x0)
        dp = config.privacy
        self.accountant = (
            None if dp is None else PrivacyAccountant(config.peers, sigma=dp.sigma, delta=dp.delta)
        )
        """Rounds each peer trained (so released a noised update) and its epsilon; None: no DP."""
        self.evaluator = Evaluator(self.task)
        metric = self.task.recipe.metric
        self.metric_name, self.higher_is_better = metric.name, metric.higher_is_better
        self.metric_prefix = metric_prefix(metric.name)
        """Keys of the metric in records: ``{prefix}_mean``, ... (``acc`` for accuracy)."""
        layout = [("params", (self.num_params,), "float32")]
        self.traffic = Traffic(
            n=self.num_params,
            delta_payload=self.codec.payload_size(self.num_params),
            model=fingerprint(layout),
            codec=self.codec.spec,
            # The daemon's meta: samples always, the local loss when there is a model to train.
            meta={"samples": config.batch_size * config.local_steps}
            # (under DP the daemon keeps its training loss, a function of its data, to itself)
            | ({} if self.task.model is None or config.dp is not None else {"loss": 0.0}),
        )

    def initial_stats(self) -> SwarmRoundStats:
        """Round 0: the starting models, before any gossip."""
        x = self.engine.params()
        alive = self.failures.alive(0)
        return self._stats(0, x, alive, np.full(len(alive), np.nan), 0, 0, 0.0, evaluate=True)

    def run(self) -> Iterator[SwarmRoundStats]:
        """Run every round, yielding stats after each (accuracy only on evaluated rounds).

        Stops after the first round that leaves a parameter non-finite: that round is evaluated
        and yielded with ``diverged`` set.
        """
        config = self.config
        sent = delivered = 0
        start = time.perf_counter()
        timer = self.timer
        for index in range(config.rounds):
            with timer.phase("failures"):
                plan = self.planner.plan(index, self.topology.edges_at(index))
            with timer.phase("engine"):  # the vector engine splits it into its own phases
                loss = self.engine.step(plan)
            with timer.phase("bookkeeping"):
                if self.accountant is not None:
                    self.accountant.record(trained(self.context, plan))
                sizes = self.traffic.frame_sizes(
                    round=index, seqs=plan.seqs, publish=plan.alive, key=plan.keyframe
                )
                sent += int(sizes.sum())
                delivered += int(sizes[plan.src[plan.delivered]].sum())
                done = index + 1
                x = self.engine.params()
                diverged = not finite(x)
                evaluate = diverged or done % config.eval_every == 0 or done == config.rounds
                wall = time.perf_counter() - start
                losses = loss.cpu().numpy()
                stats = self._stats(
                    done, x, plan.alive, losses, sent, delivered, wall, evaluate=evaluate
                )
            timer.rounds += 1
            yield dataclasses.replace(stats, diverged=True) if diverged else stats
            if diverged:
                log.info("run diverged at round %d: parameters are no longer finite", done)
                return

    def _stats(
        self,
        done: int,
        x: torch.Tensor,
        alive: np.ndarray,
        train_loss: np.ndarray,
        sent: int,
        delivered: int,
        wall: float,
        *,
        evaluate: bool,
    ) -> SwarmRoundStats:
        trained = train_loss[np.isfinite(train_loss)]
        evaluated = evaluate or self.config.consensus
        fields: dict[str, float | None] = {}
        if evaluate and self.evaluator.has_accuracy:
            byzantine = self.failures.byzantine
            honest = ~byzantine if byzantine.any() else None
            with self.timer.phase("evaluate"):
                fields = self.evaluator.evaluate(x, alive, honest)
        return SwarmRoundStats(
            round=done,
            evaluated=evaluated,
            consensus_distance=consensus_distance(x) if evaluated else None,
            bytes_sent=sent,
            bytes_delivered=delivered,
            alive=int(alive.sum()),
            stale_pairs=self.planner.stale_pairs,
            wall_s=wall,
            train_loss=float(trained.mean()) if len(trained) else None,
            acc_mean=fields.get("acc_mean"),
            acc_min=fields.get("acc_min"),
            acc_max=fields.get("acc_max"),
            acc_avg_model=fields.get("acc_avg_model"),
            acc_honest_mean=fields.get("acc_honest_mean"),
            acc_honest_worst=fields.get("acc_honest_worst"),
            test_loss=fields.get("test_loss"),
        )
