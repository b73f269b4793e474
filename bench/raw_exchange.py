"""The broker's own speed: two raw aiomqtt clients exchanging payloads of one size, round by round.

Each client runs in its own process (as each peer does): every round it publishes one payload
(QoS 1, one MQTT message, awaiting the broker's acknowledgement) and waits for the other's
payload of that round. The time per round, averaged over both clients, is what moving the same
bytes costs with nothing but aiomqtt between the process and Mosquitto: the floor of a peer's
exchange (``bench/swarm.py`` compares against it in the same run).

    python bench/raw_exchange.py --port 1883 --size 4000000 --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import time

import aiomqtt

_TOPIC = "bench/raw/{tag}/{side}"
_WARMUP = 2


async def _side(port: int, side: int, size: int, rounds: int, tag: str) -> list[float]:
    """One client: ``rounds`` exchanges; the seconds each took (warm-up rounds left out)."""
    other = 1 - side
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier=f"bench-raw-{side}", max_queued_incoming_messages=0
    ) as client:
        await client.subscribe(_TOPIC.format(tag=tag, side=other), qos=1)
        # Both sides subscribed before anything is sent: announce, and wait for the other's.
        ready = _TOPIC.format(tag=tag, side="ready")
        await client.subscribe(f"{ready}/{other}", qos=1)
        await client.publish(f"{ready}/{side}", b"1", qos=1, retain=True)
        messages = aiter(client.messages)
        while str((await anext(messages)).topic) != f"{ready}/{other}":
            pass
        body = bytearray(size)
        times = []
        for r in range(rounds + _WARMUP):
            body[:4] = r.to_bytes(4, "little")
            start = time.perf_counter()
            await client.publish(_TOPIC.format(tag=tag, side=side), bytes(body), qos=1)
            while True:
                message = await anext(messages)
                payload = message.payload
                assert isinstance(payload, bytes)
                if int.from_bytes(payload[:4], "little") >= r:
                    break
            times.append(time.perf_counter() - start)
        await client.publish(f"{ready}/{side}", b"", qos=1, retain=True)
    return times[_WARMUP:]


def exchange_s(port: int, size: int, rounds: int) -> float:
    """Mean seconds per round of two client processes exchanging ``size``-byte payloads."""
    command = [sys.executable, __file__, "--port", str(port), "--size", str(size)]
    command += ["--rounds", str(rounds), "--tag", secrets.token_hex(4), "--side"]
    procs = [
        subprocess.Popen([*command, str(side)], stdout=subprocess.PIPE, text=True)
        for side in (0, 1)
    ]
    times: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"raw exchange side exited {proc.returncode}")
        times += json.loads(out)
    return statistics.mean(times)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=4_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--side", type=int, choices=[0, 1], help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="t", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side is not None:
        print(
            json.dumps(asyncio.run(_side(args.port, args.side, args.size, args.rounds, args.tag)))
        )
        return 0
    seconds = exchange_s(args.port, args.size, args.rounds)
    print(f"raw aiomqtt exchange of {args.size} B: {1000 * seconds:.1f} ms per round")
    return 0


if __name__ == "__main__":
    sys.exit(run())
