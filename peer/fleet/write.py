"""``rumor init``: one folder per device from a :class:`~peer.fleet.plan.FleetPlan`.

::

    DIR/peers/NAME/peer.toml     the device's config (relative paths: copy the folder whole)
    DIR/peers/NAME/graph.json    the fleet's graph, node names = device names (family topologies)
    DIR/peers/NAME/*.py          the plug-in files named in the description
    DIR/fleet.md                 what each device must hold, and the commands to deploy it

With ``secure``, ``rumor secure init DIR`` makes the CA, the broker's TLS files and ACL, and per
device its certificate, keys and trust list in the same folders (peer.toml then points at them).
"""

from __future__ import annotations

import copy
import json
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from peer.config import PeerConfig, config_from_dict
from peer.fleet.plan import Device, FleetPlan
from peer.fleet.summary import fleet_summary
from protocol.errors import ConfigError

__all__ = ["InitResult", "check_out", "init_fleet", "peer_tables"]

GRAPH = "graph.json"
CHECKPOINTS = "/var/lib/rumor/checkpoints"
"""Where a device keeps its checkpoints unless the description says otherwise: the systemd
unit's StateDirectory (deploy/rumor-peer.service)."""
_TLS = {"tls_ca": "ca.crt", "tls_cert": "client.crt", "tls_key": "client.key"}
_SECURITY = {"signing_key": "signing.key", "trust": "trust.toml", "require_signatures": True}


@dataclass(frozen=True)
class InitResult:
    configs: dict[str, PeerConfig]
    summary: Path


def _merge(
    base: Mapping[str, Mapping[str, object]], over: Mapping[str, Mapping[str, object]]
) -> dict[str, dict[str, object]]:
    out = {name: dict(table) for name, table in copy.deepcopy(dict(base)).items()}
    for name, table in over.items():
        out.setdefault(name, {}).update(copy.deepcopy(dict(table)))
    return out


def peer_tables(plan: FleetPlan, index: int, *, secure: bool) -> dict[str, dict[str, object]]:
    """Device ``index``'s peer.toml as TOML tables (only what is set, paths relative)."""
    device = plan.devices[index]
    tables = _merge(plan.sections, device.sections)
    tables["identity"] = {"peer": device.name, "swarm": plan.swarm, "prefix": plan.prefix}
    if plan.family is None:
        tables["topology"] = {"membership": True, "seed": plan.seed}
    else:
        tables["topology"] = {"file": GRAPH, "seed": plan.seed}
    learning = tables.setdefault("learning", {})
    learning.setdefault("peers", len(plan.devices))
    learning.setdefault("partition_index", index)
    broker = tables["broker"] = {**plan.broker, **tables.get("broker", {})}
    broker.setdefault("port", 8883 if secure else 1883)
    tables.setdefault("storage", {}).setdefault("checkpoint_dir", CHECKPOINTS)
    if secure:
        broker.update(_TLS)
        tables["security"] = dict(_SECURITY)
    return {"identity": tables.pop("identity"), "topology": tables.pop("topology"), **tables}


def _toml_value(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    raise ConfigError(f"{where} = {value!r}: expected a string, number or boolean")


def to_toml(tables: Mapping[str, Mapping[str, object]], *, header: str) -> str:
    lines = [header]
    for section, table in tables.items():
        lines += ["", f"[{section}]"]
        lines += [f"{k} = {_toml_value(v, f'{section}.{k}')}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _validated(text: str, device: Device, folder: Path) -> PeerConfig:
    try:
        return config_from_dict(tomllib.loads(text), base_dir=folder, check_files=False)
    except ConfigError as exc:
        raise ConfigError(f"device {device.name!r}: {exc}") from exc


def _graph(plan: FleetPlan) -> str:
    """The family graph over the devices in order, as node-link JSON with their names."""
    import networkx as nx

    from topology import build_graph

    assert plan.family is not None
    try:
        graph = build_graph(plan.family, len(plan.devices), seed=plan.seed)
    except ConfigError as exc:
        raise ConfigError(f"topology.family = {plan.family!r}: {exc}") from exc
    if graph.is_directed():
        raise ConfigError(f"topology.family = {plan.family!r}: builds a directed graph")
    named = nx.relabel_nodes(graph, dict(enumerate(plan.names)))
    return json.dumps(nx.node_link_data(named, edges="edges"), indent=1)


def check_out(out: Path) -> None:
    """ConfigError if ``out`` already holds a fleet (nothing is ever overwritten)."""
    if (out / "peers").exists() or (out / "fleet.md").exists():
        raise ConfigError(f"--out {str(out)!r} already holds a fleet; choose another directory")


def _secure(plan: FleetPlan, out: Path) -> None:
    from peer.security.swarm import SwarmPlan, init_swarm

    port = plan.broker.get("port", 8883)
    init_swarm(
        out,
        SwarmPlan(
            swarm=plan.swarm,
            prefix=plan.prefix,
            broker_host=str(plan.broker["host"]),
            broker_port=port if isinstance(port, int) else 8883,
            topology=plan.family or "membership",
            peers=plan.names,
        ),
    )


def init_fleet(plan: FleetPlan, out: Path, *, secure: bool = False) -> InitResult:
    """Write every device's folder and the summary; nothing is written if a config is bad."""
    check_out(out)
    graph = None if plan.family is None else _graph(plan)
    texts = {}
    for index, device in enumerate(plan.devices):
        tables = peer_tables(plan, index, secure=secure)
        header = f"# rumor peer {device.name!r} of fleet {plan.swarm!r}, written by rumor init"
        texts[device.name] = to_toml(tables, header=header)
        folder = out / "peers" / device.name
        _validated(texts[device.name], device, folder)
    if secure:
        _secure(plan, out)
    configs = {}
    for device in plan.devices:
        folder = out / "peers" / device.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "peer.toml").write_text(texts[device.name], encoding="utf-8")
        if graph is not None:
            (folder / GRAPH).write_text(graph, encoding="utf-8")
        for file in (*plan.files, *device.files):
            shutil.copyfile(file, folder / file.name)
        configs[device.name] = _validated(texts[device.name], device, folder)
    summary = out / "fleet.md"
    summary.write_text(fleet_summary(plan, configs, out, secure=secure), encoding="utf-8")
    return InitResult(configs=configs, summary=summary)
