"""Where a peer's resident memory goes before any gossip: torch, imports, its data, a step.

One process builds what ``rumor peer`` builds for peer 0 of N (its Fashion-MNIST share and the
model), trains three steps and evaluates once, printing the resident set (``VmRSS``) and its
peak (``VmHWM``) after each stage. Linux only (``/proc/self/status``).

    python bench/peer_memory.py --peers 2 --model mlp:hidden=1258
"""

from __future__ import annotations

import argparse
import sys


def _rss() -> str:
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    now, peak = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    return f"RSS {now:.0f} MB, peak {peak:.0f} MB"


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--peers", type=int, default=2)
    parser.add_argument("--model", default="mlp:hidden=1258")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print(f"torch imported: {_rss()}")
    import aiomqtt  # noqa: F401  (what the daemon imports besides torch)

    import peer.runtime.daemon  # noqa: F401
    from peer.config import config_from_dict
    from peer.runtime.learning import load_learner

    print(f"rumor's daemon imported: {_rss()}")
    config = config_from_dict(
        {
            "identity": {"peer": "p0"},
            "topology": {"family": "ring", "size": args.peers, "node": 0},
            "learning": {"model": args.model, "threads": 1},
        }
    )
    learner = load_learner(config, index=0, peers=args.peers)
    print(f"data share and model loaded ({learner.num_params} parameters): {_rss()}")
    x = learner.start.clone()
    for r in range(3):
        x, _ = learner.train(x, r)
    print(f"three training steps: {_rss()}")
    learner.accuracy(x)
    print(f"one held-out evaluation: {_rss()}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
