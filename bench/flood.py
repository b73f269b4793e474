"""Hostile-input benchmark, not a test: a 3-peer swarm flooded from a plain MQTT client.

Runs ``rumor up`` (Fashion-MNIST MLP, ring, signatures on as by default) twice on a local broker:
once clean, once while a client publishes as fast as it can: random bytes, bit flips and
truncations of a real frame, frames with a huge seq or round, int8 deltas with huge blocks, chunks
with random ids and oversized bodies, spoofed and phantom presence, nested telemetry, and a
connection under each peer's old fixed client id. Reports crashes (exit status), peak RSS per
peer, rounds per second, final accuracy, rejections by reason and the size of the peer logs.

    .venv/bin/python bench/flood.py [--rounds R] [--insecure]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiomqtt

from peer.broker import Broker
from protocol.chunking import Reassembler
from protocol.envelope import decode_envelope, encode_envelope
from protocol.frame import Frame
from protocol.spec import Spec

SWARM = "local"
PEERS = ["p0", "p1", "p2"]


def _up(out: Path, broker: Broker, rounds: int, insecure: bool) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "peer", "--log-level", "WARNING", "up", "--peers", "3"]
    argv += ["--rounds", str(rounds), "--broker", broker.address, "--out", str(out)]
    argv += ["--local-steps", "10", "--swarm", SWARM] + (["--insecure"] if insecure else [])
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _attacks(real: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    env = decode_envelope(real, max_bytes=1 << 26)
    base = f"rumor/{SWARM}"
    n = env.frame.n
    huge = [
        encode_envelope(replace(env, sig=None, round=2**62)),
        encode_envelope(replace(env, sig=None, frame=replace(env.frame, seq=2**62))),
    ]
    int8 = Frame(
        kind="delta",
        seq=2**40,
        base=2**40 - 1,
        codec=Spec("int8", {"block": 2**24}),
        n=n,
        payload=bytes(4 + n),
    )
    int8_env = encode_envelope(replace(env, sig=None, frame=int8))
    nested = b'{"round": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    while True:
        peer = rng.choice(PEERS)
        kind = rng.randrange(10)
        if kind == 0:
            yield f"{base}/key/{peer}", rng.randbytes(rng.randrange(1, 4096))
        elif kind == 1:
            flipped = bytearray(real)
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            yield f"{base}/key/{peer}", bytes(flipped)
        elif kind == 2:
            yield f"{base}/delta/{peer}", real[: rng.randrange(len(real))]
        elif kind == 3:
            yield f"{base}/key/{peer}", rng.choice(huge)
        elif kind == 4:
            yield f"{base}/delta/{peer}", int8_env
        elif kind == 5:
            header = struct.pack("<BBQIII", 0xC1, 1, rng.getrandbits(64), 0, 1000, 2**26 - 1)
            yield f"{base}/key/{peer}/chunk/0", header + bytes(64)
        elif kind == 6:
            header = struct.pack("<BBQIII", 0xC1, 1, rng.getrandbits(64), 0, 2, 1_800_000)
            yield f"{base}/key/{peer}/chunk/0", header + bytes(900_000)
        elif kind == 7:
            yield f"{base}/presence/{peer}", rng.choice([b"offline", b"online"])
        elif kind == 8:
            yield f"{base}/presence/ghost{rng.randrange(100_000)}", b"online"
        else:
            yield f"{base}/telemetry/{peer}", nested


async def _flood(broker: Broker, up: subprocess.Popen[bytes], sent: Counter[str]) -> None:
    rng = random.Random(0)
    reassembler = Reassembler(max_pending_bytes=1 << 28, timeout_s=60.0)
    real = b""
    async with aiomqtt.Client(broker.host, broker.port, identifier="flooder") as client:
        await client.subscribe(f"rumor/{SWARM}/key/p0/#")
        await client.subscribe(f"rumor/{SWARM}/key/p0")
        async for message in client.messages:  # p0's keyframe (retained, chunked), once it exists
            if isinstance(message.payload, bytes):
                whole = reassembler.feed("p0", message.payload)
                if whole is not None:
                    real = whole
                    break
        await client.unsubscribe(f"rumor/{SWARM}/key/p0/#")
        await client.unsubscribe(f"rumor/{SWARM}/key/p0")
        for peer in PEERS:  # the fixed client id peers used to have: a takeover attempt
            async with aiomqtt.Client(broker.host, broker.port, identifier=f"rumor-{SWARM}-{peer}"):
                sent["takeover"] += 1
        attacks = _attacks(real, rng)
        while up.poll() is None:
            for _ in range(50):
                topic, payload = next(attacks)
                await client.publish(topic, payload, qos=0)
                sent[topic.split("/")[2]] += 1
            await asyncio.sleep(0.005)


def _result(out: Path, wall: float, status: int) -> dict[str, object]:
    summary = json.loads((out / "summary.json").read_text())
    rows = [
        json.loads(line)
        for p in PEERS
        for line in (out / p / "stats.jsonl").read_text().splitlines()[-1:]
    ]
    rejected: Counter[str] = Counter()
    for row in rows:
        rejected.update(row.get("rejected", {}))
    return {
        "status": status,
        "exit_statuses": [p["exit_status"] for p in summary["peers"]],
        "accuracy": sum(p["accuracy"] for p in summary["peers"]) / len(PEERS),
        "rounds_per_s": min(p["rounds"] for p in summary["peers"]) / wall,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
        "rejected": dict(rejected),
        "log_bytes": max((out / p / "peer.log").stat().st_size for p in PEERS),
    }


def run_once(rounds: int, insecure: bool, flood: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        with Broker.start_sync(max_packet_size=1024 * 1024, log_dir=out / "broker") as broker:
            sent: Counter[str] = Counter()
            start = time.perf_counter()
            up = _up(out / "run", broker, rounds, insecure)
            if flood:
                asyncio.run(_flood(broker, up, sent))
            status = up.wait()
            wall = time.perf_counter() - start
            result = _result(out / "run", wall, status)
            result["sent"] = dict(sent)
            return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--insecure", action="store_true", help="peers without signatures")
    args = parser.parse_args(argv)
    clean = run_once(args.rounds, args.insecure, flood=False)
    print("clean  ", json.dumps(clean))
    flooded = run_once(args.rounds, args.insecure, flood=True)
    print("flooded", json.dumps(flooded))
    ratio = flooded["rounds_per_s"] / clean["rounds_per_s"]  # type: ignore[operator]
    drop = clean["accuracy"] - flooded["accuracy"]  # type: ignore[operator]
    print(
        f"rounds/s flooded / clean = {ratio:.2f} (target >= 0.5); accuracy drop {drop:+.3f} "
        f"(target <= 0.02); peak RSS {flooded['peak_rss_mb']:.0f} MB (target < 350); "
        f"exit statuses {flooded['exit_statuses']}; largest peer log {flooded['log_bytes']} B"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
