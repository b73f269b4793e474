"""Keys, trust lists and the swarm material of ``rumor secure`` (X.509, Mosquitto files).

:mod:`peer.security.credentials` reads and writes a peer's signing key and trust list;
:mod:`peer.security.x509` makes certificates; :mod:`peer.security.swarm` lays out a swarm's
directory; :mod:`peer.security.cli` is ``rumor secure``. Nothing is imported here, so that the
command line stays light.
"""

__all__: list[str] = []
