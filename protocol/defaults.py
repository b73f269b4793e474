"""Learning defaults shared by the daemon (``peer.config``), ``rumor up`` and the simulator.

Each fact has one value, here: a swarm and its simulation run the same way unless told otherwise.
One local SGD step per gossip round is CHOCO-SGD as published; a deployment whose rounds are
dominated by network time may well raise it (``learning.local_steps``, ``--local-steps``).

>>> LOCAL_STEPS, BATCH_SIZE, LEARNING_RATE, CONSENSUS_DIM
(1, 32, 0.05, 32)
"""

from __future__ import annotations

from typing import Final

__all__ = ["BATCH_SIZE", "CONSENSUS_DIM", "LEARNING_RATE", "LOCAL_STEPS"]

LOCAL_STEPS: Final = 1
"""Local SGD steps per gossip round."""
BATCH_SIZE: Final = 32
"""Minibatch size of each local step."""
LEARNING_RATE: Final = 0.05
"""Local SGD learning rate."""
CONSENSUS_DIM: Final = 32
"""Vector length of the ``consensus`` task (pure averaging, no model)."""
