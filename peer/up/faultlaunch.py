"""How ``rumor up`` launches peers when failures are asked for: per-peer config changes (the
stragglers' local steps, a checkpoint every round for peers that will crash), the fault plan
file each launch gets, and the driver that carries out the rest (:mod:`peer.up.faultrun`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from peer.broker import Broker
from peer.config import PeerConfig, apply_overrides
from peer.faults.plan import plan_to_json
from peer.up.failures import UpFailures, plan_for
from peer.up.faultrun import FaultDriver, Relauncher
from peer.up.procs import PeerProcess
from protocol.failures import Crash

__all__ = ["FaultLaunch"]


class FaultLaunch:
    """The failures of one run, from the launcher's side."""

    def __init__(self, failures: UpFailures, *, out: Path, peers: int, rounds: int, seed: int):
        self.failures, self.out, self.peers, self.seed = failures, out, peers, seed
        self.periods: list[Crash] = failures.down(peers, rounds, seed=seed)
        self.gate_dir = (out / "faults").resolve()
        self._launches: dict[int, int] = {}
        shutil.rmtree(self.gate_dir, ignore_errors=True)  # a previous run's gates and plans

    def configure(self, config: PeerConfig, index: int, *, local_steps: int) -> PeerConfig:
        """Fewer local steps for a straggler; a checkpoint every round for a peer that crashes
        (it must restart from where it stopped)."""
        overrides = []
        steps = self.failures.straggler_steps(self.peers, local_steps, seed=self.seed)
        if index in steps:
            overrides.append(f"learning.local_steps={steps[index]}")
        if any(c.peer == index for c in self.periods):
            overrides.append("storage.checkpoint_every=1")
        return apply_overrides(config, overrides) if overrides else config

    def args(self, index: int, *, resume_at: int | None = None) -> list[str]:
        """``--faults FILE`` for this launch of peer ``index`` (none if nothing to inject)."""
        if not self.failures.needs_plans:
            return []
        self.gate_dir.mkdir(parents=True, exist_ok=True)
        plan = plan_for(
            self.failures,
            index,
            peers=self.peers,
            periods=self.periods,
            seed=self.seed,
            gate_dir=self.gate_dir,
            resume_at=resume_at,
        )
        launch = self._launches[index] = self._launches.get(index, -1) + 1
        path = self.gate_dir / f"plan-p{index}-{launch}.json"
        path.write_text(plan_to_json(plan) + "\n")
        return ["--faults", str(path)]

    def driver(
        self, peers: list[PeerProcess], relaunch: Relauncher, broker: Broker | None
    ) -> FaultDriver:
        return FaultDriver(
            failures=self.failures,
            periods=self.periods,
            peers=peers,
            gate_dir=self.gate_dir,
            record=self.out / "failures.json",
            relaunch=relaunch,
            broker=broker,
            seed=self.seed,
        )
