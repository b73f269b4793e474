"""``rumor secure``: a swarm's whole secure deployment in one directory.

::

    DIR/swarm.toml              what the swarm is: name, prefix, broker, peers, revoked, keys
    DIR/ca.crt, DIR/ca.key      the swarm CA (the key signs new peers; keep it off the devices)
    DIR/trust.toml              peer id -> Ed25519 public key, of the peers not revoked
    DIR/broker/                 server.crt/.key, mosquitto.conf (TLS, client certificates, ACL),
                                acl (each peer writes only its own topics; watch only reads)
    DIR/peers/ID/               peer.toml, client.crt/.key, signing.key, ca.crt, trust.toml:
                                everything one device needs, relative paths
    DIR/watch/                  client.crt/.key for ``rumor watch`` (read-only identity)

Secret files are 0600 and never overwritten: running ``init`` on a directory that has a swarm is
an error, and ``add-peer`` refuses a name that has keys. Revoking a peer drops it from the trust
list and the ACL, in DIR and in every remaining peer's folder (copy them to the devices).
"""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from peer.security.credentials import trust_toml, write_signing_key
from peer.security.mosquitto import acl_text, mosquitto_conf, peer_toml
from peer.security.x509 import (
    Authority,
    issue_client,
    issue_server,
    new_authority,
    write_cert,
    write_key,
)
from protocol.errors import ConfigError
from protocol.signing import SigningKey
from protocol.topics import check_id

__all__ = ["WATCH", "SwarmPlan", "add_peer", "init_swarm", "load_plan", "revoke_peer"]

WATCH = "watch"
"""The read-only identity for ``rumor watch``; no peer may take this name."""


@dataclass(frozen=True, kw_only=True)
class SwarmPlan:
    """The contents of ``swarm.toml``."""

    swarm: str
    prefix: str = "rumor"
    broker_host: str = "127.0.0.1"
    broker_port: int = 8883
    topology: str = "ring"
    """A topology family over the peers in order, or ``membership``."""
    peers: tuple[str, ...] = ()
    revoked: tuple[str, ...] = ()
    keys: dict[str, str] = field(default_factory=dict)
    """Peer id -> hex of its Ed25519 public key (revoked ones included, for the record)."""

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(p for p in self.peers if p not in self.revoked)


def _toml(plan: SwarmPlan) -> str:
    lines = [
        "# rumor secure: the swarm's plan (rumor secure add-peer / revoke keep it current)",
        f"swarm = {json.dumps(plan.swarm)}",
        f"prefix = {json.dumps(plan.prefix)}",
        f"broker_host = {json.dumps(plan.broker_host)}",
        f"broker_port = {plan.broker_port}",
        f"topology = {json.dumps(plan.topology)}",
        f"peers = {json.dumps(list(plan.peers))}",
        f"revoked = {json.dumps(list(plan.revoked))}",
        "[keys]",
        *(f"{json.dumps(p)} = {json.dumps(k)}" for p, k in plan.keys.items()),
    ]
    return "\n".join(lines) + "\n"


def load_plan(directory: Path) -> SwarmPlan:
    path = directory / "swarm.toml"
    try:
        data = tomllib.loads(path.read_text())
        return SwarmPlan(
            swarm=str(data["swarm"]),
            prefix=str(data["prefix"]),
            broker_host=str(data["broker_host"]),
            broker_port=int(data["broker_port"]),
            topology=str(data["topology"]),
            peers=tuple(str(p) for p in data["peers"]),
            revoked=tuple(str(p) for p in data["revoked"]),
            keys={str(k): str(v) for k, v in data["keys"].items()},
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{str(path)!r}: not a rumor secure swarm ({exc})") from exc


def _check_name(name: str, plan: SwarmPlan) -> None:
    check_id(name, what="peer id")
    if name == WATCH:
        raise ConfigError(f"peer id {name!r} is reserved for the read-only watch identity")
    if name in plan.peers:
        raise ConfigError(f"peer {name!r} is already in swarm {plan.swarm!r} (ids are not reused)")


def _issue_peer(directory: Path, ca: Authority, name: str) -> str:
    """A peer's folder with its certificate and keys; returns its public signing key (hex)."""
    folder = directory / "peers" / name
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = issue_client(ca, name)
    write_key(folder / "client.key", key)
    write_cert(folder / "client.crt", cert)
    signing = SigningKey.generate()
    write_signing_key(folder / "signing.key", signing)
    shutil.copyfile(directory / "ca.crt", folder / "ca.crt")
    return signing.public_bytes().hex()


def _publish(directory: Path, plan: SwarmPlan) -> None:
    """Rewrite everything derived from the plan (nothing secret): plan, trust lists, ACL, conf,
    and the peer.toml of any peer that has none yet."""
    (directory / "swarm.toml").write_text(_toml(plan))
    trust = trust_toml({p: bytes.fromhex(plan.keys[p]) for p in plan.active})
    (directory / "trust.toml").write_text(trust)
    broker = directory / "broker"
    (broker / "acl").write_text(acl_text(plan.prefix, plan.swarm, plan.active, watch=WATCH))
    (broker / "mosquitto.conf").write_text(mosquitto_conf(directory.resolve(), plan.broker_port))
    for index, name in enumerate(plan.peers):
        folder = directory / "peers" / name
        if name in plan.revoked:
            (folder / "trust.toml").unlink(missing_ok=True)
            continue
        (folder / "trust.toml").write_text(trust)
        config = folder / "peer.toml"
        if not config.exists():
            config.write_text(peer_toml(plan, name, index))


def init_swarm(directory: Path, plan: SwarmPlan) -> SwarmPlan:
    """Generate a new swarm's material in ``directory`` (which must hold no swarm yet)."""
    check_id(plan.swarm, what="--swarm")
    if (directory / "swarm.toml").exists() or (directory / "ca.key").exists():
        raise ConfigError(
            f"{str(directory)!r} already holds a swarm; refusing to overwrite its keys "
            "(use rumor secure add-peer, or another directory)"
        )
    names = plan.peers
    if len(set(names)) != len(names) or not names:
        raise ConfigError(f"--peers {','.join(names)!r}: expected distinct peer ids")
    for name in names:
        _check_name(name, replace(plan, peers=()))
    (directory / "broker").mkdir(parents=True, exist_ok=True)
    ca = new_authority(plan.swarm)
    write_key(directory / "ca.key", ca.key)
    write_cert(directory / "ca.crt", ca.cert)
    hosts = list(dict.fromkeys([plan.broker_host, "localhost", "127.0.0.1"]))
    server, server_key = issue_server(ca, hosts)
    write_key(directory / "broker" / "server.key", server_key)
    write_cert(directory / "broker" / "server.crt", server)
    watch = directory / WATCH
    watch.mkdir(exist_ok=True)
    cert, key = issue_client(ca, WATCH)
    write_key(watch / "client.key", key)
    write_cert(watch / "client.crt", cert)
    shutil.copyfile(directory / "ca.crt", watch / "ca.crt")
    keys = {name: _issue_peer(directory, ca, name) for name in names}
    plan = replace(plan, keys=keys)
    _publish(directory, plan)
    return plan


def add_peer(directory: Path, name: str) -> SwarmPlan:
    plan = load_plan(directory)
    _check_name(name, plan)
    ca = Authority.load(directory / "ca.crt", directory / "ca.key")
    key = _issue_peer(directory, ca, name)
    plan = replace(plan, peers=(*plan.peers, name), keys={**plan.keys, name: key})
    _publish(directory, plan)
    return plan


def revoke_peer(directory: Path, name: str) -> SwarmPlan:
    plan = load_plan(directory)
    if name not in plan.active:
        raise ConfigError(f"peer {name!r} is not an active peer of swarm {plan.swarm!r}")
    plan = replace(plan, revoked=(*plan.revoked, name))
    _publish(directory, plan)
    return plan
