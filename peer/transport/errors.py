"""Errors of the transport seam, converted from aiomqtt/paho where they enter.

::

    RumorError
    └── TransportError        the broker cannot be reached, or an MQTT operation failed
        └── NotConnectedError publish attempted while the link is down (the message is dropped)
"""

from __future__ import annotations

from protocol.errors import RumorError

__all__ = ["NotConnectedError", "TransportError"]


class TransportError(RumorError):
    """The broker cannot be reached, or an MQTT operation failed."""


class NotConnectedError(TransportError):
    """A publish was attempted while the link to the broker is down; nothing was sent.

    Gossip tolerates loss: the runtime counts it and carries on training.
    """
