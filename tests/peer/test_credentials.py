"""Signing keys and trust lists on disk, and ``[security]`` in peer.toml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peer.config import PeerConfig, config_from_dict
from peer.security.credentials import (
    load_credentials,
    load_signing_key,
    write_signing_key,
    write_trust,
)
from protocol.errors import ConfigError
from protocol.signing import SigningKey


def _config(tmp_path: Path, **security: object) -> PeerConfig:
    return config_from_dict(
        {
            "identity": {"peer": "p0", "swarm": "s"},
            "topology": {"family": "ring", "size": 3, "node": 0},
            "learning": {"task": "consensus"},
            "security": security,
        },
        base_dir=tmp_path,
    )


def test_a_key_is_written_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "p0.key"
    key = SigningKey.generate()
    write_signing_key(path, key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_signing_key(path).public_bytes() == key.public_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        write_signing_key(path, SigningKey.generate())
    assert load_signing_key(path).public_bytes() == key.public_bytes()


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p0.key"
    write_signing_key(path, SigningKey.generate())
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="mode 644; expected 600"):
        load_signing_key(path)


def test_security_section_loads_key_and_trust(tmp_path: Path) -> None:
    key = SigningKey.generate()
    write_signing_key(tmp_path / "p0.key", key)
    write_trust(tmp_path / "trust.toml", {"p0": key.public_bytes(), "p.1 x": bytes(32)})
    config = _config(tmp_path, signing_key="p0.key", trust="trust.toml")
    assert config.security.required
    creds = load_credentials(config.security)
    assert creds.key is not None
    assert creds.trust is not None
    assert creds.trust.peers == {"p0", "p.1 x"}
    assert creds.trust.required


def test_signatures_can_be_checked_without_being_required(tmp_path: Path) -> None:
    write_trust(tmp_path / "trust.toml", {"p0": bytes(32)})
    config = _config(tmp_path, trust="trust.toml", require_signatures=False)
    creds = load_credentials(config.security)
    assert creds.trust is not None
    assert not creds.trust.required


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[peers]\np0 = 'abc'\n", "key of 'p0': expected 64 hex digits"),
        ("p0 = 'x'\n", "expected one table [peers]"),
        ("[peers\n", "security.trust"),
        ('[peers]\n"a/b" = "00"\n', "peer id 'a/b'"),
    ],
)
def test_a_bad_trust_list_is_one_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "trust.toml").write_text(text)
    config = _config(tmp_path, trust="trust.toml")
    with pytest.raises(ConfigError) as caught:
        load_credentials(config.security)
    assert problem in str(caught.value)


def test_required_signatures_need_a_trust_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"security\.require_signatures"):
        _config(tmp_path, require_signatures=True)


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"security\.signing_key"):
        _config(tmp_path, signing_key="nope.key")
