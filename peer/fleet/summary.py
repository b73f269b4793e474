"""``DIR/fleet.md``: what each device of a fleet must hold, written by ``rumor init``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from peer.config import PeerConfig
from peer.fleet.plan import FleetPlan
from peer.tasks.plugin import data_ref, is_plugin, parse_plugin

__all__ = ["data_needs", "fleet_summary"]

_DATASETS = {"fmnist": "/usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist)"}
_SECRETS = ("client.key", "signing.key")


def data_needs(config: PeerConfig) -> list[str]:
    """What data and code a device needs besides its folder, one line each."""
    learning = config.learning
    needs = []
    if learning.data is not None:
        ref = data_ref(learning.data)
        if learning.data.startswith("npz"):
            needs.append(f"data: the file {ref.kwargs['path']} (relative: to the folder)")
        else:
            needs.append(f"data: whatever the data plug-in {learning.data} reads")
    elif learning.data_path is not None:
        needs.append(f"data: IDX files in {learning.data_path}")
    elif learning.task in _DATASETS:
        needs.append(f"data: {_DATASETS[learning.task]}")
    elif is_plugin(learning.task):
        needs.append(f"data: whatever the task plug-in {learning.task} reads")
    modules = sorted(
        {
            parse_plugin(v).module
            for v in (learning.task, learning.model, learning.loss, learning.metric, learning.data)
            if v is not None and is_plugin(v) and not v.startswith("npz")
        }
    )
    needs += [f"code: the Python module {m} (a file in the folder, or installed)" for m in modules]
    return needs


def _device_lines(name: str, host: str | None, config: PeerConfig, folder: Path) -> list[str]:
    files = sorted(p.name for p in folder.iterdir())
    secrets = [f for f in files if f in _SECRETS]
    where = host or name
    lines = [
        f"## {name}" + (f" ({host})" if host else ""),
        "",
        f"- folder: `{folder}` -> `/etc/rumor/` on {where}: {', '.join(files)}",
        f"  (`scp -r {folder}/. {where}:/etc/rumor/`)",
    ]
    if secrets:
        lines.append(f"- secret, mode 0600, readable by the rumor user only: {', '.join(secrets)}")
    lines += [f"- {need}" for need in data_needs(config)]
    writable = [str(config.storage.checkpoint_dir)] if config.storage.checkpoint_dir else []
    writable += [str(config.logging.file)] if config.logging.file else []
    if writable:
        lines.append(f"- writes: {', '.join(writable)}")
    if config.metrics.port is not None:
        lines.append(f"- metrics: http://{config.metrics.address}:{config.metrics.port}/metrics")
    if config.availability.active:
        a = config.availability
        rules = [f"hours {a.hours}"] if a.hours else []
        rules += ["charging only"] if a.charging_only else []
        rules += [f"battery >= {a.battery_min:g} %"] if a.battery_min is not None else []
        rules += [f"CPU busy <= {a.cpu_busy_max:g} %"] if a.cpu_busy_max is not None else []
        lines.append(f"- trains only when: {', '.join(rules)}")
    return [*lines, ""]


def fleet_summary(
    plan: FleetPlan, configs: Mapping[str, PeerConfig], out: Path, *, secure: bool
) -> str:
    broker = plan.broker
    topology = "membership" if plan.family is None else f"{plan.family} (graph.json)"
    lines = [
        f"# Fleet {plan.swarm!r}: {len(plan.devices)} devices",
        "",
        f"Broker {broker['host']}:{next(iter(configs.values())).broker.port}, topology {topology}.",
        "On each device: install rumor (docs/deploy.md), copy its folder to /etc/rumor/, then",
        "`systemctl enable --now rumor-peer` (deploy/rumor-peer.service).",
        "",
    ]
    if secure:
        lines += [
            f"Broker: `mosquitto -c {out / 'broker' / 'mosquitto.conf'}` (TLS, client "
            "certificates, ACL).",
            f"Keep `{out / 'ca.key'}` off the devices: it signs new ones (rumor secure add-peer).",
            "",
        ]
    for device in plan.devices:
        folder = out / "peers" / device.name
        lines += _device_lines(device.name, device.host, configs[device.name], folder)
    return "\n".join(lines)
