"""``rumor up --byzantine K:attack=A,...``: which K peers attack, chosen by seed, and how.

The chosen peers are started with ``rumor peer --attack SPEC`` (the spec with its defaults made
explicit for this swarm, e.g. ALIE's z for N peers and K attackers); ``byzantine.json`` in the
run directory records them, and the report gives the honest peers' metric apart from theirs.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from protocol.attack_names import check_attack_spec, resolve_attack
from protocol.errors import ConfigError
from protocol.spec import Spec, parse_spec
from protocol.topics import peer_name

__all__ = ["SwarmAttack", "parse_swarm_attack"]


@dataclass(frozen=True, kw_only=True)
class SwarmAttack:
    """K attacking peers of a ``rumor up`` swarm and their (resolved) attack."""

    attack: Spec
    indices: tuple[int, ...]
    """The attackers' peer indices, sorted."""

    @property
    def names(self) -> list[str]:
        return [peer_name(i) for i in self.indices]

    def args_for(self, index: int) -> tuple[str, ...]:
        """The extra ``rumor peer`` arguments of peer ``index``."""
        return ("--attack", str(self.attack)) if index in self.indices else ()

    def record(self, out: Path) -> None:
        """Write ``byzantine.json`` into the run directory."""
        text = json.dumps({"attack": str(self.attack), "peers": self.names}, indent=2)
        (out / "byzantine.json").write_text(text + "\n", encoding="utf-8")


def parse_swarm_attack(text: str, *, peers: int, seed: int) -> SwarmAttack:
    """``K[:attack=A,key=value,...]`` (attack signflip by default) for a swarm of ``peers``:
    K distinct peers drawn with ``seed``.

    >>> parse_swarm_attack("2:attack=ipm", peers=6, seed=0)
    SwarmAttack(attack=Spec(name='ipm', params={'eps': 0.1}), indices=(3, 5))
    >>> parse_swarm_attack("6", peers=6, seed=0)
    Traceback (most recent call last):
    ...
    protocol.errors.ConfigError: --byzantine 6: expected 1 to 5 attacking peers (of 6)
    """
    head, _, rest = text.strip().partition(":")
    try:
        count = int(head)
    except ValueError as exc:
        raise ConfigError(
            f"--byzantine {text!r}: expected K[:attack=A,key=value,...], K a number of peers"
        ) from exc
    if not 1 <= count < peers:
        raise ConfigError(
            f"--byzantine {head}: expected 1 to {peers - 1} attacking peers (of {peers})"
        )
    params = dict(parse_spec("byzantine:" + rest).params)
    name = params.pop("attack", "signflip")
    attack = check_attack_spec(Spec(str(name), params))
    chosen = sorted(random.Random(seed).sample(range(peers), count))
    resolved = resolve_attack(attack, peers=peers, attackers=count)
    return SwarmAttack(attack=resolved, indices=tuple(chosen))
