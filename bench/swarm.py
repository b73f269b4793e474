"""Benchmark: N real peers over a local Mosquitto (``rumor up``), against the raw broker.

For each N it runs ``rumor up`` (Fashion-MNIST, MLP, ring) and reports, per round (the first,
which waits for peers still starting, left out) and averaged over peers: the time spent
training, encoding, publishing, waiting for neighbours, decoding and mixing; the MB/s the broker
delivered to peers; and each peer's peak RSS (MiB, from ``ru_maxrss``), next to the peak of a
process that only imports torch, the floor any peer pays. In the same run it times a raw aiomqtt
publish/subscribe of the same payload size, so gossip throughput reads as a fraction of what the
broker can move.

    python bench/swarm.py --peers 4 8 16 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

from peer.broker import Broker
from peer.cli import main
from protocol.topics import peer_name

PHASES = ("train", "encode", "publish", "wait", "decode", "mix", "total")


def _torch_floor_mb() -> float:
    """Peak RSS (MiB) of a Python process that imports torch and nothing else."""
    code = "import resource, torch; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout) / 1024


def _stats(run: Path, peers: int) -> list[list[dict[str, object]]]:
    out = []
    for j in range(peers):
        path = run / peer_name(j) / "stats.jsonl"
        out.append([json.loads(line) for line in path.read_text().splitlines()])
    return out


async def _raw_mbps(port: int, size: int, count: int) -> float:
    """MB/s of ``count`` QoS 1 messages of ``size`` bytes from one client to another."""
    payload = bytes(size)
    async with (
        aiomqtt.Client("127.0.0.1", port, identifier="bench-sub") as sub,
        aiomqtt.Client("127.0.0.1", port, identifier="bench-pub") as pub,
    ):
        await sub.subscribe("bench/raw", qos=1)
        start = time.perf_counter()
        for _ in range(count):
            await pub.publish("bench/raw", payload, qos=1)
        got = 0
        async for _ in sub.messages:
            got += 1
            if got == count:
                break
        return size * count / (time.perf_counter() - start) / 1e6


def _up(argv: list[str], security: str) -> int:
    flag = {"signed": [], "secure": ["--secure"], "insecure": ["--insecure"]}[security]
    return main(["--log-level", "WARNING", "up", *argv, *flag])


def bench(
    peers: int, rounds: int, model: str, steps: int, security: str = "signed"
) -> dict[str, object]:
    """``security``: rumor up's default (signed), --secure (its own TLS broker; no raw figure)
    or --insecure."""
    argv = ["--peers", str(peers), "--rounds", str(rounds), "--model", model]
    argv += ["--local-steps", str(steps)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        argv += ["--out", str(out / "run")]
        start = time.perf_counter()
        if security == "secure":
            status = _up(argv, security)
            wall = time.perf_counter() - start
            per_peer = _stats(out / "run", peers)
            frame = max(1, per_peer[0][-1]["bytes_out"] // rounds)  # type: ignore[operator]
            raw = 0.0
        else:
            with Broker.start_sync(log_dir=out / "broker") as broker:
                status = _up([*argv, "--broker", broker.address], security)
                wall = time.perf_counter() - start
                per_peer = _stats(out / "run", peers)
                frame = max(1, per_peer[0][-1]["bytes_out"] // rounds)  # type: ignore[operator]
                raw = asyncio.run(_raw_mbps(broker.port, frame, 200))
    # Round 1 waits for neighbours still starting (gossip.startup_grace_s): a start-up cost,
    # counted in the whole run's figure, not in a round's.
    rows = [s for peer in per_peer for s in peer[1:]]
    phases = {p: statistics.mean(r["timings"][p] for r in rows) for p in PHASES}  # type: ignore[index]
    delivered = sum(peer[-1]["bytes_in"] for peer in per_peer)  # type: ignore[misc]
    return {
        "peers": peers,
        "status": status,
        "wall_s": wall,
        "round_s": phases,
        "frame_bytes": frame,
        "delivered_mb_s": delivered / 1e6 / max(wall, 1e-9),
        # Peers run their rounds side by side: what the broker delivered per round of rounds.
        "gossip_mb_s": delivered / 1e6 / max(rounds * phases["total"], 1e-9),
        "raw_mb_s": raw,
        "peak_rss_mb": max(peer[-1]["peak_rss_mb"] for peer in per_peer),  # type: ignore[type-var]
    }


def _print(result: dict[str, object]) -> None:
    phases = result["round_s"]
    assert isinstance(phases, dict)
    split = " ".join(f"{p} {1000 * phases[p]:.1f}" for p in PHASES)
    print(
        f"N={result['peers']:>2}  per round (ms): {split}\n"
        f"      gossip through the broker {result['gossip_mb_s']:.1f} MB/s during rounds "
        f"({result['delivered_mb_s']:.1f} over the whole run, start-up included); raw aiomqtt "
        f"{result['raw_mb_s']:.1f} MB/s at {result['frame_bytes']} B; peak RSS per peer "
        f"{result['peak_rss_mb']:.0f} MB; wall {result['wall_s']:.1f} s"
    )


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--peers", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--local-steps", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--security",
        choices=["signed", "secure", "insecure"],
        default="signed",
        help="rumor up's default (signed frames), --secure (TLS too) or --insecure",
    )
    args = parser.parse_args(argv)
    floor = _torch_floor_mb()
    print(f"a process that only imports torch peaks at {floor:.0f} MB")
    results: list[dict[str, object]] = []
    for n in args.peers:
        result = bench(n, args.rounds, args.model, args.local_steps, args.security)
        result["torch_floor_mb"] = floor
        _print(result)
        results.append(result)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run())
