"""``rumor export PEER_DIR_OR_CHECKPOINT --out model.safetensors``: a peer's model, for use.

The source is a checkpoint file, a checkpoint directory, or a peer's folder from ``rumor up``
(its ``checkpoints/`` are used). The newest intact checkpoint is read (nothing in the directory
is changed: a live peer may be writing there), the module is rebuilt from the model recorded in
it, and its state dict is written under the module's own names with safetensors.

Torch is imported by the handler only, so ``rumor --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from protocol.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from peer.checkpoint import SavedModel
    from peer.config import PeerConfig
    from peer.tasks.models import FlatModel

__all__ = ["add_export_arguments", "export_model", "export_peers", "run_export"]

log = logging.getLogger(__name__)

_EXAMPLES = """\
examples:
  rumor export runs/har/p0 --out har.safetensors
  rumor export /var/lib/rumor/checkpoints --out model.safetensors
  rumor export runs/har/p0/checkpoints/round-0000000040.ckpt --out har40.safetensors

Then, in Python: module.load_state_dict(safetensors.torch.load_file("har.safetensors")).
"""

# Input and class counts of the built-in tasks, for rebuilding a built-in model.
_BUILTIN_DIMS = {"synthetic": (60, 10), "fmnist": (784, 10), "mnist": (784, 10)}


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Write a peer's model (from its checkpoint) as a safetensors file."
    parser.epilog = _EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "source", type=Path, metavar="PEER_DIR_OR_CHECKPOINT", help="a peer folder or checkpoint"
    )
    parser.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")


def checkpoint_files(source: Path) -> list[Path]:
    """The checkpoint files ``source`` stands for, newest first; ConfigError if none."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise ConfigError(f"{source}: no such file or directory")
    for folder in (source / "checkpoints", source):
        found = sorted(folder.glob("round-*.ckpt"), reverse=True)
        if found:
            return found
    raise ConfigError(f"{source}: no checkpoint (round-*.ckpt) in it or in its checkpoints/")


def newest_model(source: Path) -> tuple[Path, SavedModel]:
    """The model in the newest intact checkpoint of ``source``. Defective files are skipped,
    not moved, and stray temp files are left alone: a live peer may be writing there."""
    from peer.checkpoint import CheckpointError, read_model

    problems = []
    for path in checkpoint_files(source):
        try:
            return path, read_model(path)
        except CheckpointError as exc:
            log.warning("skipping %s", exc)
            problems.append(str(exc))
    raise ConfigError(f"{source}: no intact checkpoint ({'; '.join(problems)})")


def _peer_config(checkpoint: Path) -> PeerConfig:
    """The ``peer.toml`` beside the peer's checkpoints (as ``rumor up`` lays them out)."""
    from peer.config import load_config

    for candidate in (checkpoint.parent / "peer.toml", checkpoint.parent.parent / "peer.toml"):
        if candidate.is_file():
            return load_config(candidate)
    raise ConfigError(
        f"{checkpoint}: a built-in model's input size comes from the peer's peer.toml, "
        "which is not beside its checkpoints/ (export the peer's folder instead)"
    )


def _builtin_model(spec: str, checkpoint: Path) -> FlatModel:
    """The built-in model of the peer: sized by its task, or by its data when that is a
    plug-in (loaded as the daemon loads it)."""
    from peer.tasks.models import model_from_spec

    config = _peer_config(checkpoint)
    learning = config.learning
    if learning.data is None and learning.task in _BUILTIN_DIMS:
        return model_from_spec(spec, *_BUILTIN_DIMS[learning.task])
    from peer.runtime.learning import load_learner
    from peer.runtime.neighbours import static_neighbourhood
    from peer.tasks.module import ModuleModel

    hood = static_neighbourhood(config.topology, me=config.identity.peer)
    peers = learning.peers or (hood.size if hood is not None else 1)
    index = learning.partition_index
    index = index if index is not None else (hood.index if hood is not None else 0)
    model = load_learner(config, index=index, peers=peers).model
    if model is None or isinstance(model, ModuleModel):
        raise ConfigError(f"{checkpoint}: the peer's config does not build model {spec!r}")
    return model


def model_for_checkpoint(saved: SavedModel, checkpoint: Path) -> nn.Module:
    """A fresh module for the model recorded in ``saved``: a plug-in model
    (``pkg.module:function[:k=v,...]``) is rebuilt by calling it, a built-in one (``logreg``,
    ``mlp``, ``cnn``) as its ``torch.nn`` equivalent."""
    from torch import nn

    from peer.tasks.modules import torch_module
    from peer.tasks.plugin import is_plugin, parse_plugin

    spec = saved.model_spec
    if not spec:
        raise ConfigError(f"{checkpoint}: the checkpoint records no model spec (an older peer?)")
    if is_plugin(spec):
        module = parse_plugin(spec, "model").call(role="model")
    else:
        module = torch_module(_builtin_model(spec, checkpoint))
    if not isinstance(module, nn.Module):
        raise ConfigError(f"model {spec!r} returned {type(module).__name__}, not a torch.nn.Module")
    return module


def export_model(source: Path, out: Path) -> tuple[Path, int, int]:
    """Export the newest intact checkpoint of ``source`` to ``out``; returns the checkpoint
    file, its round and the number of tensors written."""
    from peer.export import save_safetensors, state_dict_from_vector, vector_layout
    from protocol.fingerprint import fingerprint

    path, saved = newest_model(source)
    module = model_for_checkpoint(saved, path)
    if saved.fingerprint and fingerprint(vector_layout(module)) != saved.fingerprint:
        raise ConfigError(
            f"{path}: model {saved.model_spec!r} now builds a module of another layout than the "
            "peer trained (names or shapes changed since): its weights would not fit"
        )
    weights = state_dict_from_vector(module, saved.params, saved.integer_buffers)
    meta = {"round": str(saved.round), "model": saved.model_spec, "fingerprint": saved.fingerprint}
    save_safetensors(weights, out, metadata=meta)
    return path, saved.round, len(weights)


def export_peers(folders: list[Path]) -> int:
    """``rumor up``'s last step: each peer's final model to ``FOLDER/model.safetensors``.
    A peer that cannot be exported is logged and skipped; returns how many were written."""
    from protocol.errors import RumorError

    written = 0
    for folder in folders:
        try:
            export_model(folder, folder / "model.safetensors")
            written += 1
        except RumorError as exc:
            log.warning("no model.safetensors for %s: %s", folder.name, exc)
    return written


def run_export(args: argparse.Namespace) -> int:
    path, round_, count = export_model(args.source, args.out)
    sys.stdout.write(f"{args.out}: {count} tensors of round {round_} from {path}\n")
    return 0
