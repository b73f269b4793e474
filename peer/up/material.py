"""The keys ``rumor up`` gives its peers: signing keys by default, the whole TLS swarm with
``--secure``, nothing with ``--insecure``. Made once in the run directory and reused by a later
run with the same ``--out`` (keys are never overwritten).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeAlias

from protocol.errors import ConfigError
from protocol.topics import peer_name

__all__ = ["Sections", "Security", "peer_sections", "prepare"]

Security: TypeAlias = Literal["signed", "secure", "insecure"]
Sections: TypeAlias = dict[str, dict[str, dict[str, object]]]
"""Peer id -> config section -> keys to add to its config."""


def _signed(out: Path, names: list[str]) -> Sections:
    from peer.security.credentials import load_signing_key, write_signing_key, write_trust
    from protocol.signing import SigningKey

    keys = out / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    public: dict[str, bytes] = {}
    for name in names:
        path = keys / f"{name}.key"
        if not path.exists():
            write_signing_key(path, SigningKey.generate())
        public[name] = load_signing_key(path).public_bytes()
    write_trust(keys / "trust.toml", public)
    trust = str((keys / "trust.toml").resolve())
    return {
        name: {
            "security": {
                "signing_key": str((keys / f"{name}.key").resolve()),
                "trust": trust,
                "require_signatures": True,
            }
        }
        for name in names
    }


def _secure(out: Path, names: list[str], swarm: str) -> tuple[Path, Sections]:
    from peer.security.swarm import SwarmPlan, init_swarm, load_plan

    directory = out / "secure"
    if (directory / "swarm.toml").exists():
        plan = load_plan(directory)
        if list(plan.active) != names or plan.swarm != swarm:
            raise ConfigError(
                f"{str(directory)!r} holds swarm {plan.swarm!r} with peers "
                f"{', '.join(plan.active)}; expected {swarm!r} with {', '.join(names)} "
                "(use another --out)"
            )
    else:
        init_swarm(directory, SwarmPlan(swarm=swarm, peers=tuple(names)))
    sections: Sections = {}
    for name in names:
        folder = (directory / "peers" / name).resolve()
        sections[name] = {
            "broker": {
                "tls_ca": str(folder / "ca.crt"),
                "tls_cert": str(folder / "client.crt"),
                "tls_key": str(folder / "client.key"),
            },
            "security": {
                "signing_key": str(folder / "signing.key"),
                "trust": str(folder / "trust.toml"),
                "require_signatures": True,
            },
        }
    return directory, sections


def prepare(out: Path, peers: int, swarm: str, security: Security) -> tuple[Path | None, Sections]:
    """(the ``rumor secure`` directory with ``--secure``, else None; each peer's extra config)."""
    names = [peer_name(j) for j in range(peers)]
    if security == "insecure":
        return None, {}
    if security == "signed":
        return None, _signed(out, names)
    return _secure(out, names, swarm)


def peer_sections(sections: Sections, name: str) -> dict[str, dict[str, object]]:
    return sections.get(name, {})
