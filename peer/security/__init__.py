"""Keys, trust lists and the swarm material of ``rumor secure`` (X.509, Mosquitto files).

:mod:`peer.security.credentials` reads and writes a peer's signing key and trust list;
:mod:`peer.security.material` generates a swarm's CA, certificates and broker files.
"""

from peer.security.credentials import (
    Credentials,
    load_credentials,
    load_signing_key,
    load_trust,
    write_signing_key,
    write_trust,
)

__all__ = [
    "Credentials",
    "load_credentials",
    "load_signing_key",
    "load_trust",
    "write_signing_key",
    "write_trust",
]
