"""``FLEET.toml``: one description of a fleet, read and validated into a :class:`FleetPlan`.

::

    [swarm]
    name = "home"                    # required
    prefix = "rumor"
    files = ["mysensors.py"]         # plug-in modules copied into every device's folder

    [broker]
    host = "gateway.lan"             # required; any other [broker] key of peer.toml too
    port = 1883                      # default 1883 (8883 with --secure)

    [topology]
    family = "ring"                  # a family over the devices in order ("random_regular:d=4")
    seed = 0                         # or: membership = true

    [learning]                       # every other table is a peer.toml section for every device
    task = "fmnist"

    [[devices]]
    name = "kitchen"
    host = "kitchen.lan"             # optional: where its folder goes (summary only)
    [devices.learning]               # optional: this device's own values
    data = "npz:path=/var/lib/rumor/kitchen.npz"

Every problem is a one-line :class:`ConfigError` naming the table and key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from protocol.errors import ConfigError
from protocol.topics import DEFAULT_PREFIX, id_problem

__all__ = ["Device", "FleetPlan", "SectionTables", "load_fleet", "parse_fleet"]

SectionTables = Mapping[str, Mapping[str, object]]

WRITTEN_BY_INIT = frozenset({"identity", "topology", "security"})
"""peer.toml sections that ``rumor init`` writes itself; a description may not set them."""
_TOP = frozenset({"swarm", "broker", "topology", "devices"})


@dataclass(frozen=True, kw_only=True)
class Device:
    name: str
    host: str | None = None
    files: tuple[Path, ...] = ()
    sections: SectionTables = field(default_factory=dict)
    """This device's own peer.toml values, over the fleet's."""


@dataclass(frozen=True, kw_only=True)
class FleetPlan:
    swarm: str
    devices: tuple[Device, ...]
    broker: Mapping[str, object]
    prefix: str = DEFAULT_PREFIX
    family: str | None = "ring"
    """A topology family over the devices in order; None with membership."""
    seed: int = 0
    files: tuple[Path, ...] = ()
    sections: SectionTables = field(default_factory=dict)
    """peer.toml sections for every device."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.devices)


def _table(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {value!r}")
    return value


def _keys(table: Mapping[str, object], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key; accepted: {', '.join(sorted(allowed))}"
        )


def _name(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} = {value!r}: expected a string")
    problem = id_problem(value)
    if problem is not None:
        raise ConfigError(f"{where} = {value!r}: expected a single MQTT topic level ({problem})")
    return value


def _files(value: object, where: str, base: Path) -> tuple[Path, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} = {value!r}: expected a list of file names")
    paths = tuple(base / str(v) for v in value)
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{where}: {str(path)!r} is not a file")
    return paths


def _sections(table: Mapping[str, object], where: str) -> dict[str, dict[str, object]]:
    out = {}
    for name, value in table.items():
        if name in WRITTEN_BY_INIT:
            raise ConfigError(f"{where}[{name}]: written by rumor init; leave it out")
        out[name] = _table(value, f"{where}[{name}]")
    return out


def _device(value: object, index: int, base: Path) -> Device:
    where = f"devices[{index}]"
    table = _table(value, where)
    if "name" not in table:
        raise ConfigError(f"{where}.name: missing; expected the device's peer id")
    host = table.get("host")
    if host is not None and not (isinstance(host, str) and host.strip()):
        raise ConfigError(f"{where}.host = {host!r}: expected a host name")
    rest = {k: v for k, v in table.items() if k not in ("name", "host", "files")}
    return Device(
        name=_name(table["name"], f"{where}.name"),
        host=host,
        files=_files(table.get("files", []), f"{where}.files", base),
        sections=_sections(rest, where),
    )


def _topology(table: Mapping[str, object]) -> tuple[str | None, int]:
    _keys(table, "topology", {"family", "membership", "seed"})
    seed = table.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"topology.seed = {seed!r}: expected an int >= 0")
    membership, family = table.get("membership", False), table.get("family")
    if membership is True and family is None:
        return None, seed
    if membership is not False or not isinstance(family, str | None):
        raise ConfigError("topology: expected family = NAME or membership = true, not both")
    return family or "ring", seed


def parse_fleet(data: Mapping[str, object], *, base: Path) -> FleetPlan:
    """The plan in ``data`` (a parsed FLEET.toml); ``base`` anchors its file names."""
    swarm = _table(data.get("swarm", {}), "[swarm]")
    _keys(swarm, "swarm", {"name", "prefix", "files"})
    if "name" not in swarm:
        raise ConfigError("swarm.name: missing; expected the swarm's name")
    broker = _table(data.get("broker", {}), "[broker]")
    if "host" not in broker:
        raise ConfigError("broker.host: missing; expected the broker's host name (the gateway)")
    devices = data.get("devices")
    if not isinstance(devices, list) or len(devices) < 2:
        raise ConfigError("[[devices]]: expected at least two device tables, each with a name")
    family, seed = _topology(_table(data.get("topology", {}), "[topology]"))
    plan = FleetPlan(
        swarm=_name(swarm["name"], "swarm.name"),
        prefix=_name(swarm.get("prefix", DEFAULT_PREFIX), "swarm.prefix"),
        files=_files(swarm.get("files", []), "swarm.files", base),
        broker=broker,
        family=family,
        seed=seed,
        devices=tuple(_device(d, i, base) for i, d in enumerate(devices)),
        sections=_sections({k: v for k, v in data.items() if k not in _TOP}, ""),
    )
    seen: set[str] = set()
    for name in plan.names:
        if name in seen:
            raise ConfigError(f"devices: the name {name!r} is used twice; names are peer ids")
        seen.add(name)
    return plan


def load_fleet(path: Path) -> FleetPlan:
    """Read and validate a FLEET.toml."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"fleet file {str(path)!r}: cannot read it ({exc.strerror})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"fleet file {str(path)!r}: invalid TOML ({exc})") from exc
    try:
        return parse_fleet(data, base=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from exc
