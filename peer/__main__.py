"""``python -m peer`` runs the ``rumor`` command."""

from peer.cli import run

run()
