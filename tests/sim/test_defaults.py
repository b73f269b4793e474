"""One value per learning default: the daemon, ``rumor up`` and the simulator agree."""

from __future__ import annotations

import argparse

from peer.config import LearningConfig
from peer.tasks import TaskSpec
from peer.up.settings import UpConfig, add_up_arguments
from protocol import defaults
from sim.config import SimConfig


def _up_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_up_arguments(parser)
    return parser.parse_args([])


def test_local_steps_batch_and_lr_have_one_default_everywhere() -> None:
    sim, daemon = SimConfig(), LearningConfig()
    up = _up_arguments()
    for name, value in (
        ("local_steps", defaults.LOCAL_STEPS),
        ("batch_size", defaults.BATCH_SIZE),
        ("lr", defaults.LEARNING_RATE),
    ):
        field = UpConfig.__dataclass_fields__[name].default
        assert getattr(sim, name) == getattr(daemon, name) == getattr(up, name) == field == value


def test_the_consensus_dimension_has_one_default() -> None:
    spec = TaskSpec(task="consensus", peers=2)
    assert SimConfig().dim == spec.dim == defaults.CONSENSUS_DIM
