"""What a peer checkpoints, and how it resumes from it.

The checkpoint holds the parameters, the sender's public copy ``x_hat`` and its next seq, the
learner's optimizer state (``opt.*``) and a plug-in module's integer buffers (``local.*``), and,
in its metadata, the model spec (``model_spec``) and the task's data spec (``data``); the
copies of neighbours are not kept (they come back with each neighbour's next keyframe).

Resuming never reuses a seq: frames sent after the last checkpoint, fewer than
``checkpoint_every``, may have reached neighbours, which would refuse them again as replays. So
the next seq jumps past them to a multiple of the keyframe interval, which makes the first frame
after a restart a keyframe, and every receiver resynchronises on it.

>>> resume_seq(next_seq=23, checkpoint_every=5, keyframe_interval=10)
30
>>> resume_seq(next_seq=0, checkpoint_every=1, keyframe_interval=4)
4
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from peer.checkpoint import PeerState
from protocol.choco import ChocoSender, check_values
from protocol.codecs import Codec
from protocol.errors import ConfigError, ProtocolError

__all__ = ["Resumed", "restore", "resume_seq", "snapshot", "state_problem"]


def resume_seq(*, next_seq: int, checkpoint_every: int, keyframe_interval: int) -> int:
    """The first seq after a restart: past any frame possibly sent, on a keyframe."""
    past = next_seq + checkpoint_every
    return -(-past // keyframe_interval) * keyframe_interval


def state_problem(x: torch.Tensor, x_hat: torch.Tensor, *, max_abs: float) -> str | None:
    """Why a state must not become a checkpoint (a value non-finite or beyond ``max_abs``), or
    None: a poisoned model must never replace the last good checkpoint.

    >>> state_problem(torch.ones(2), torch.zeros(2), max_abs=10.0) is None
    True
    >>> state_problem(torch.tensor([1.0, 3e36]), torch.zeros(2), max_abs=1e6)
    'the parameters: a value of magnitude 3e+36; the bound is 1e+06'
    """
    for name, values in (("the parameters:", x), ("the public copy:", x_hat)):
        try:
            check_values(values, name, max_abs=max_abs)
        except ProtocolError as exc:
            return str(exc)
    return None


def snapshot(
    *,
    round: int,
    x: torch.Tensor,
    sender: ChocoSender,
    checkpoint_every: int,
    peer: str,
    model: str,
    extra: Mapping[str, torch.Tensor] | None = None,
    model_spec: str | None = None,
) -> PeerState:
    """The checkpointable state after ``round`` rounds; ``extra`` holds the learner's
    tensors (optimizer state, integer buffers), ``model_spec`` the configured model."""
    meta = {"peer": peer, "model": model, "codec": str(sender.codec.spec)}
    if model_spec is not None:
        meta["model_spec"] = model_spec
    return PeerState(
        round=round,
        params=x.clone(),
        tensors={"x_hat": sender.x_hat.clone(), **(extra or {})},
        counters={"next_seq": sender.next_seq, "checkpoint_every": checkpoint_every},
        meta=meta,
    )


@dataclass(frozen=True, kw_only=True)
class Resumed:
    round: int
    x: torch.Tensor
    sender: ChocoSender


def restore(state: PeerState, *, codec: Codec, keyframe_interval: int, model: str) -> Resumed:
    """A sender and parameters from ``state``; ConfigError if it belongs to another model/codec."""
    meta = state.meta
    if meta.get("model") != model or meta.get("codec") != str(codec.spec):
        raise ConfigError(
            f"checkpoint of model {meta.get('model')!r} with codec {meta.get('codec')!r}; "
            f"this peer runs model {model!r} with codec {str(codec.spec)!r} "
            "(storage.checkpoint_dir belongs to another configuration: "
            "move it away or point the config elsewhere)"
        )
    x_hat = state.tensors.get("x_hat")
    if x_hat is None or x_hat.shape != state.params.shape:
        raise ConfigError("checkpoint lacks the public copy x_hat of the parameters' shape")
    sender = ChocoSender(
        codec, x_hat.numel(), keyframe_interval=keyframe_interval, dtype=x_hat.dtype
    )
    sender.x_hat = x_hat.clone()
    sender.next_seq = resume_seq(
        next_seq=int(state.counters.get("next_seq", 0)),
        checkpoint_every=int(state.counters.get("checkpoint_every", 1)),
        keyframe_interval=keyframe_interval,
    )
    return Resumed(round=state.round, x=state.params.clone(), sender=sender)
