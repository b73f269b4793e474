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
    import torch
    from torch import nn

    from peer.checkpoint import PeerState

__all__ = ["add_export_arguments", "run_export"]

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


def newest_state(source: Path) -> tuple[Path, PeerState]:
    """The newest intact checkpoint of ``source`` (defective ones are skipped, not moved)."""
    from peer.checkpoint import CheckpointError, decode_state

    problems = []
    for path in checkpoint_files(source):
        try:
            return path, decode_state(path.read_bytes(), source=str(path))
        except (CheckpointError, OSError) as exc:
            log.warning("skipping %s: %s", path, exc)
            problems.append(str(exc))
    raise ConfigError(f"{source}: no intact checkpoint ({'; '.join(problems)})")


def _peer_config_dims(checkpoint: Path) -> tuple[int, int]:
    """Input and class counts of a built-in task, from the ``peer.toml`` beside the peer's
    checkpoints (as ``rumor up`` lays them out)."""
    from peer.config import load_config

    for candidate in (checkpoint.parent / "peer.toml", checkpoint.parent.parent / "peer.toml"):
        if candidate.is_file():
            task = load_config(candidate).learning.task
            if task not in _BUILTIN_DIMS:
                raise ConfigError(f"{candidate}: cannot tell the input size of task {task!r}")
            return _BUILTIN_DIMS[task]
    raise ConfigError(
        f"{checkpoint}: a built-in model's input size comes from the peer's peer.toml, "
        "which is not beside its checkpoints/ (export the peer's folder instead)"
    )


def model_for_checkpoint(
    state: PeerState, checkpoint: Path
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A fresh module for the model recorded in ``state``, and the integer buffers kept in it.

    A plug-in model (``pkg.module:function[:k=v,...]``) is rebuilt by calling it; a built-in
    one (``logreg``, ``mlp``, ``cnn``) by its ``torch.nn`` equivalent.
    """
    from peer.tasks.models import model_from_spec
    from peer.tasks.modules import torch_module
    from peer.tasks.plugin import is_plugin, parse_plugin

    spec = state.meta.get("model", "")
    if is_plugin(spec):
        module = parse_plugin(spec).call(role="model")
    elif spec:
        module = torch_module(model_from_spec(spec, *_peer_config_dims(checkpoint)))
    else:
        raise ConfigError(f"{checkpoint}: the checkpoint records no model")
    from torch import nn

    if not isinstance(module, nn.Module):
        raise ConfigError(f"model {spec!r} returned {type(module).__name__}, not a torch.nn.Module")
    buffers = {k: v for k, v in module.state_dict().items() if not v.is_floating_point()}
    kept = {name: state.tensors[name] for name in buffers if name in state.tensors}
    return module, kept


def run_export(args: argparse.Namespace) -> int:
    from peer.export import save_safetensors, state_dict_from_vector

    path, state = newest_state(args.source)
    module, int_buffers = model_for_checkpoint(state, path)
    weights = state_dict_from_vector(module, state.params, int_buffers)
    meta = {"round": str(state.round), **{k: v for k, v in state.meta.items() if k != "codec"}}
    out = save_safetensors(weights, args.out, metadata=meta)
    sys.stdout.write(f"{out}: {len(weights)} tensors of round {state.round} from {path}\n")
    return 0
