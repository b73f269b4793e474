"""Where a peer's resident memory goes: stage by stage in one process, then in a real swarm.

Part 1 builds, in this process, what ``rumor peer`` builds for peer 0 of N (the configuration of
``bench/swarm.py``: Fashion-MNIST, iid, a ring, one local step, signed raw frames) and prints,
after each stage, the resident set now, its peak so far (``VmRSS``, ``VmHWM``) and how much the
stage raised the peak: torch, the daemon's other imports (networkx and cryptography named
apart; prometheus-client comes only with ``[metrics] port``), the data share and the model, the
gossip state (the peer's model, its public copy, one copy per in-neighbour), training steps, a
held-out evaluation, a checkpoint write, then 20 exchanges with no broker (this peer's frame
encoded and signed, then decoded, verified and applied as a neighbour's): the protocol's own share
of an exchange, apart from the transport's.

Part 2 (skip with ``--rounds 0``) runs ``rumor up`` with N real peers on a Mosquitto of its own
and prints each peer's peak RSS (its own ``VmHWM``, from the stats every round writes) after round 1
(the first exchange, before any checkpoint or evaluation), after the first checkpoint
(``storage.checkpoint_every``), after the first evaluation (``learning.eval_every``) and at the
end, so what the exchange, checkpoints and evaluation add shows apart. Linux only.

    python bench/peer_memory.py --peers 2 --model mlp:hidden=1258 --rounds 20
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_MB = 1 << 20


class Stages:
    """Prints one line per stage: RSS now, peak so far, and what the stage added to the peak."""

    def __init__(self) -> None:
        self.last_peak = 0.0

    def __call__(self, what: str, detail: str = "") -> None:
        with open("/proc/self/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        now, peak = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
        added = peak - self.last_peak
        self.last_peak = peak
        note = f"  ({detail})" if detail else ""
        print(f"  {what:<44} RSS {now:5.0f} MB  peak {peak:5.0f} MB  (+{added:4.0f}){note}")


def _mb(nbytes: int) -> str:
    return f"{nbytes / _MB:.1f} MB"


def stages(args: argparse.Namespace) -> None:
    """Part 1: peer 0's memory, stage by stage, in this process."""
    mark = Stages()
    print(f"part 1: peer 0 of {args.peers} built in this process (no gossip)")
    mark("python started")
    import torch

    torch.set_num_threads(1)
    mark("torch imported", "the floor: every peer pays it")
    import networkx  # noqa: F401

    mark("+ networkx (topology)")
    import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: F401

    mark("+ cryptography (signatures)")
    import peer.runtime.daemon  # noqa: F401
    from peer.config import config_from_dict
    from peer.runtime.learning import load_learner

    mark("+ the rest of the daemon's modules")
    with tempfile.TemporaryDirectory() as tmp:
        config = config_from_dict(
            {
                "identity": {"peer": "p0"},
                "topology": {"family": "ring", "size": args.peers, "node": 0},
                "learning": {"model": args.model, "threads": 1},
                "storage": {"checkpoint_dir": tmp},
            }
        )
        learner = load_learner(config, index=0, peers=args.peers)
        _after_load(mark, learner, config, args)


def _held(samples: Any) -> int:
    """Bytes a shard holds (uint8 pixels and int64 labels, or a float Dataset)."""
    raw = getattr(samples, "raw", samples)
    tensors = [getattr(raw, name, None) for name in ("images", "labels", "x", "y")]
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def _after_load(mark: Stages, learner: Any, config: Any, args: argparse.Namespace) -> None:
    import torch

    from peer.checkpoint import CheckpointStore
    from peer.runtime.resume import snapshot
    from protocol.choco import ChocoSender
    from protocol.codecs import codec_from_spec
    from protocol.spec import parse_spec

    params = learner.num_params * learner.start.element_size()
    mark(
        "data share and model loaded",
        f"shard {len(learner.shard)} samples {_mb(_held(learner.shard))}, held-out "
        f"{len(learner.held_out)} {_mb(_held(learner.held_out))}, "
        f"{learner.num_params} parameters {_mb(params)}",
    )
    x = learner.start.clone()
    sender = ChocoSender(
        codec_from_spec(parse_spec("raw")), learner.num_params, keyframe_interval=10, dtype=x.dtype
    )
    copies = [torch.zeros_like(x) for _ in range(2)]  # a ring: two in-neighbours' copies
    mark("gossip state", "the model, its public copy, 2 neighbours' copies: 4 x parameters")
    for r in range(3):
        x, _ = learner.train(x, r)
    mark("three training steps", f"optimizer {learner.recipe.optimizer.spec!r}")
    learner.accuracy(x)
    mark("one held-out evaluation")
    assert config.storage.checkpoint_dir is not None
    state = snapshot(
        round=3,
        x=x,
        sender=sender,
        checkpoint_every=5,
        peer="p0",
        model=learner.fingerprint,
        extra=learner.state_tensors(),
        model_spec=args.model,
    )
    CheckpointStore(config.storage.checkpoint_dir).save(state)
    mark("one checkpoint written")
    del copies
    _exchanges(mark, sender, x, learner.fingerprint, rounds=20)


def _exchanges(mark: Stages, sender: Any, x: Any, model: str, *, rounds: int) -> None:
    """The protocol's share of an exchange, without a broker: each round encodes and signs
    this peer's frame, then decodes, verifies and applies it as an in-neighbour's (a
    neighbour's copy kept for 2 rounds, as the inbox does)."""
    from protocol.choco import ChocoReceiver
    from protocol.envelope import Envelope, envelope_bound, sign_envelope
    from protocol.signing import SigningKey, Trust
    from protocol.validation import Expectations, accept

    key = SigningKey.from_seed(bytes(32))
    expected = Expectations(
        swarm="s",
        senders=frozenset({"p1"}),
        model=model,
        n_params=sender.n,
        max_bytes=envelope_bound(sender.n),
        trust=Trust({"p1": key.public_bytes()}),
    )
    receiver = ChocoReceiver(sender.n)
    kept: list[Any] = []
    for r in range(rounds):
        x = x + 1e-3
        env = Envelope(swarm="s", sender="p1", round=r, frame=sender.step(x, seed=1), model=model)
        data = sign_envelope(env, key)
        kept = [*kept[-1:], accept(data, expected, receiver, via="p1")[1]]
        del data, env
    mark(f"{rounds} exchanges in process", "encode + sign, decode + verify + apply; no broker")


def swarm(args: argparse.Namespace) -> None:
    """Part 2: each peer's peak RSS at the round that first exchanges, checkpoints, evaluates."""
    from peer.cli import main
    from peer.config import load_config

    argv = ["--peers", str(args.peers), "--rounds", str(args.rounds), "--model", args.model]
    argv += ["--local-steps", "1", "--codec", "raw"]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        status = main(["--log-level", "WARNING", "up", *argv, "--out", str(run)])
        if status != 0:
            print(f"part 2: rumor up exited {status}; no swarm figures")
            return
        config = load_config(run / "p0" / "peer.toml")
        every = {
            "checkpoint_every": config.storage.checkpoint_every,
            "eval_every": config.learning.eval_every,
        }
        per_peer = []
        for peer_dir in sorted(run.glob("p*/stats.jsonl")):
            rows = [json.loads(line) for line in peer_dir.read_text().splitlines()]
            per_peer.append({int(row["round"]): float(row["peak_rss_mb"]) for row in rows})
    print(
        f"part 2: rumor up, {args.peers} peers, {args.rounds} rounds (exit {status}); peak RSS "
        "per peer (MB, the highest of the peers) after:"
    )
    points = [
        (1, "the first exchange"),
        (every["checkpoint_every"], "the first checkpoint"),
        (every["eval_every"], "the first evaluation"),
        (args.rounds, "the last round"),
    ]
    for r, what in sorted(points):
        if 1 <= r <= args.rounds:
            peak = max(p.get(r, float("nan")) for p in per_peer)
            print(f"  round {r:>3} ({what}): {peak:.0f} MB")


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--peers", type=int, default=2)
    parser.add_argument("--model", default="mlp:hidden=1258", help="1,000,120 parameters")
    parser.add_argument("--rounds", type=int, default=20, help="part 2's rounds (0: skip it)")
    parser.add_argument("--part1-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peers < 2 or args.rounds < 0:
        parser.error(f"--peers must be >= 2 and --rounds >= 0, got {args.peers}, {args.rounds}")
    if args.part1_only:
        try:
            stages(args)
        except Exception as exc:
            from protocol.errors import ConfigError  # not before the stages: they measure imports

            if not isinstance(exc, ConfigError):
                raise
            print(f"peer_memory.py: {exc}", file=sys.stderr)
            return 2
        return 0
    # Part 1 runs in a child of its own, so that each stage's figure starts from a bare process
    # (this one has already imported what the stages measure).
    own = ["--peers", str(args.peers), "--model", args.model]
    done = subprocess.run([sys.executable, __file__, *own, "--part1-only"], check=False)
    if done.returncode != 0:
        return done.returncode
    if args.rounds > 0:
        swarm(args)
    return 0


if __name__ == "__main__":
    sys.exit(run())
