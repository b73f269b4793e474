"""The ``[security]`` section of ``peer.toml``: frame signatures and the trust list.

Kept apart from :mod:`peer.config.sections` (which it extends) so that each module stays small.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from protocol.errors import ConfigError

__all__ = ["SecurityConfig"]


@dataclass(frozen=True, kw_only=True)
class SecurityConfig:
    SECTION: ClassVar[str] = "security"
    signing_key: Path | None = None
    """This peer's Ed25519 private key (PEM, PKCS#8, mode 0600): every frame and presence it
    publishes is signed with it."""
    trust: Path | None = None
    """The trust list (TOML: ``[peers]``, peer id = hex of the raw 32-byte public key)."""
    require_signatures: bool | None = None
    """Refuse unsigned frames and presence; default true when ``trust`` is set."""

    def __post_init__(self) -> None:
        if self.require_signatures and self.trust is None:
            raise ConfigError(
                "security.require_signatures = True: expected false unless security.trust is "
                "set (signatures are checked against the trust list)"
            )

    @property
    def required(self) -> bool:
        """Whether unsigned messages are refused."""
        if self.require_signatures is None:
            return self.trust is not None
        return self.require_signatures
