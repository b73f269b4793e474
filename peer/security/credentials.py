"""A peer's signing key (PEM, PKCS#8, mode 0600) and its trust list (TOML), read and written.

A trust list names every peer whose frames are believed, with its raw Ed25519 public key in hex::

    [peers]
    p0 = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

Secret files are created 0600 and never overwritten: writing one that exists is a ConfigError.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peer.config.security import SecurityConfig
from protocol.errors import ConfigError
from protocol.signing import KEY_BYTES, SigningKey, Trust
from protocol.topics import id_problem
from protocol.types import PeerId

__all__ = [
    "Credentials",
    "load_credentials",
    "load_signing_key",
    "load_trust",
    "write_secret",
    "write_signing_key",
    "write_trust",
]


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """What a peer signs with and verifies against; both None: no signatures at all."""

    key: SigningKey | None = None
    trust: Trust | None = None


def write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and write ``data``; ConfigError if it already exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{str(path)!r} exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise ConfigError(f"{str(path)!r}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def write_signing_key(path: Path, key: SigningKey) -> None:
    pem = key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_secret(path, pem)


def load_signing_key(path: Path) -> SigningKey:
    """An Ed25519 private key from a PEM file only its owner can read."""
    where = f"security.signing_key = {str(path)!r}"
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{where}: mode {stat.S_IMODE(mode):o}; expected 600 (a secret)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where}: a {type(key).__name__}; expected an Ed25519 key")
    return SigningKey(key)


def trust_toml(keys: Mapping[PeerId, bytes]) -> str:
    lines = ["# rumor trust list: peer id = hex of its raw Ed25519 public key", "[peers]"]
    lines += [f'{json.dumps(peer)} = "{raw.hex()}"' for peer, raw in sorted(keys.items())]
    return "\n".join(lines) + "\n"


def write_trust(path: Path, keys: Mapping[PeerId, bytes]) -> None:
    """Write (or replace: it holds no secret) a trust list, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(trust_toml(keys))
    tmp.replace(path)


def read_trust_keys(path: Path) -> dict[PeerId, bytes]:
    where = f"security.trust = {str(path)!r}"
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    peers = data.get("peers")
    if not isinstance(peers, dict) or set(data) != {"peers"}:
        raise ConfigError(f"{where}: expected one table [peers] of peer id = hex key")
    keys: dict[PeerId, bytes] = {}
    for peer, value in peers.items():
        problem = id_problem(peer)
        if problem is not None:
            raise ConfigError(f"{where}: peer id {peer!r}: {problem}")
        try:
            raw = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != KEY_BYTES:
            raise ConfigError(f"{where}: key of {peer!r}: expected {2 * KEY_BYTES} hex digits")
        keys[peer] = raw
    return keys


def load_trust(path: Path, *, required: bool) -> Trust:
    return Trust(read_trust_keys(path), required=required)


def load_credentials(security: SecurityConfig) -> Credentials:
    """The key and trust list ``[security]`` names; ConfigError naming the key on bad files."""
    key = None if security.signing_key is None else load_signing_key(security.signing_key)
    trust = (
        None if security.trust is None else load_trust(security.trust, required=security.required)
    )
    return Credentials(key=key, trust=trust)
