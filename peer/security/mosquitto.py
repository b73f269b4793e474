"""The text files of a secure swarm: Mosquitto's TLS listener and ACL, and each peer's TOML.

>>> print(acl_text("rumor", "lab", ["p0"], watch="watch"))  # doctest: +NORMALIZE_WHITESPACE
# rumor ACL for swarm 'lab': each peer writes only its own topics; watch reads
user p0
topic write rumor/lab/+/p0
topic write rumor/lab/+/p0/chunk/+
topic read rumor/lab/key/+
topic read rumor/lab/key/+/chunk/+
topic read rumor/lab/delta/+
topic read rumor/lab/delta/+/chunk/+
topic read rumor/lab/presence/+
topic read rumor/lab/telemetry/+
<BLANKLINE>
user watch
topic read rumor/lab/presence/+
topic read rumor/lab/telemetry/+
<BLANKLINE>
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peer.security.swarm import SwarmPlan

__all__ = ["acl_text", "mosquitto_conf", "peer_toml"]


def acl_text(prefix: str, swarm: str, peers: Sequence[str], *, watch: str) -> str:
    """Mosquitto ACL: users are certificate common names (``use_identity_as_username``)."""
    base = f"{prefix}/{swarm}"
    reads = [
        f"topic read {base}/{kind}/+{tail}"
        for kind in ("key", "delta")
        for tail in ("", "/chunk/+")
    ]
    reads += [f"topic read {base}/presence/+", f"topic read {base}/telemetry/+"]
    head = f"# rumor ACL for swarm {swarm!r}: each peer writes only its own topics; {watch} reads"
    lines = [head]
    for peer in peers:
        lines += [
            f"user {peer}",
            f"topic write {base}/+/{peer}",
            f"topic write {base}/+/{peer}/chunk/+",
            *reads,
            "",
        ]
    lines += [f"user {watch}", *reads[-2:], ""]
    return "\n".join(lines) + "\n"


def mosquitto_conf(directory: Path, port: int, *, bind: str | None = None) -> str:
    """A TLS listener that requires a client certificate from the swarm CA, takes its common
    name as the user name, allows no anonymous client and applies the ACL. Paths are absolute
    (Mosquitto resolves relative ones against its working directory)."""
    broker = directory / "broker"
    listener = f"listener {port}" + ("" if bind is None else f" {bind}")
    return "\n".join(
        [
            "# rumor secure: Mosquitto 2.x, TLS with client certificates, per-peer ACL",
            listener,
            f"cafile {directory / 'ca.crt'}",
            f"certfile {broker / 'server.crt'}",
            f"keyfile {broker / 'server.key'}",
            "tls_version tlsv1.2",
            "require_certificate true",
            "use_identity_as_username true",
            "allow_anonymous false",
            f"acl_file {broker / 'acl'}",
            "max_packet_size 1048576",
            "",
        ]
    )


def peer_toml(plan: SwarmPlan, name: str, index: int) -> str:
    """One peer's ``peer.toml``: its identity, the broker over TLS, its keys (relative paths)."""
    q = json.dumps
    size = len(plan.peers)
    if plan.topology == "membership":
        topology = ["membership = true"]
        learning = ["[learning]", f"peers = {size}", f"partition_index = {index}", ""]
    else:
        topology = [f"family = {q(plan.topology)}", f"size = {size}", f"node = {index}"]
        learning = []
    return "\n".join(
        [
            f"# rumor peer {name!r} of swarm {plan.swarm!r}, written by rumor secure.",
            "# Add [learning] and [gossip] keys as needed (docs/config.md).",
            "[identity]",
            f"peer = {q(name)}",
            f"swarm = {q(plan.swarm)}",
            f"prefix = {q(plan.prefix)}",
            "",
            "[topology]",
            *topology,
            "",
            *learning,
            "[broker]",
            f"host = {q(plan.broker_host)}",
            f"port = {plan.broker_port}",
            'tls_ca = "ca.crt"',
            'tls_cert = "client.crt"',
            'tls_key = "client.key"',
            "",
            "[security]",
            'signing_key = "signing.key"',
            'trust = "trust.toml"',
            "require_signatures = true",
            "",
        ]
    )
