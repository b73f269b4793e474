"""The broker's own speed: two raw aiomqtt clients exchanging payloads of one size, round by round.

Each client runs in its own process (as each peer does): every round it publishes one payload
(QoS 1, one MQTT message, awaiting the broker's acknowledgement) and waits for the other's
payload of that round. The time per round (the median over both clients' rounds) is what moving
the same bytes costs with nothing but aiomqtt between the process and Mosquitto: the floor of a
peer's exchange (``bench/swarm.py`` compares against it in the same run).

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
from collections.abc import AsyncIterator, Awaitable, Callable

import aiomqtt

from peer.transport import MqttSettings, MqttTransport

_TOPIC = "bench/raw/{tag}/{side}"
_WARMUP = 2


async def _side(
    port: int, side: int, size: int, rounds: int, tag: str, max_payload: int | None
) -> list[float]:
    """One client: ``rounds`` exchanges; the seconds each took (warm-up rounds left out).
    ``max_payload``: through rumor's MqttTransport, chunked at that size (0: not chunked),
    instead of aiomqtt alone."""
    if max_payload is None:
        async with aiomqtt.Client(
            "127.0.0.1", port, identifier=f"bench-raw-{tag}-{side}", max_queued_incoming_messages=0
        ) as client:

            async def publish(topic: str, payload: bytes, retain: bool = False) -> None:
                await client.publish(topic, payload, qos=1, retain=retain)

            async def subscribe(topic: str) -> None:
                await client.subscribe(topic, qos=1)

            payloads = (bytes(m.payload) async for m in client.messages)
            return await _rounds(publish, subscribe, payloads, side, size, rounds, tag)
    settings = MqttSettings(
        client_id=f"bench-transport-{tag}-{side}", port=port, max_payload=max_payload or None
    )
    async with MqttTransport(settings) as link:
        await link.state.wait_up()

        async def publish_t(topic: str, payload: bytes, retain: bool = False) -> None:
            await link.publish(topic, payload, qos=1, retain=retain)

        async def subscribe_t(topic: str) -> None:
            await link.subscribe([topic])

        received = (m.payload async for m in link.messages())
        return await _rounds(publish_t, subscribe_t, received, side, size, rounds, tag)


async def _rounds(
    publish: Callable[..., Awaitable[None]],
    subscribe: Callable[[str], Awaitable[None]],
    received: AsyncIterator[bytes],
    side: int,
    size: int,
    rounds: int,
    tag: str,
) -> list[float]:
    other = 1 - side
    await subscribe(_TOPIC.format(tag=tag, side=other))
    # Both sides subscribed before anything is sent: announce, and wait for the other's.
    ready = _TOPIC.format(tag=tag, side="ready")
    await subscribe(f"{ready}/{other}")
    await publish(f"{ready}/{side}", b"1", retain=True)
    while await anext(received) != b"1":
        pass
    body = bytearray(size)
    times = []
    for r in range(rounds + _WARMUP):
        body[:4] = r.to_bytes(4, "little")
        payload = bytes(body)
        start = time.perf_counter()
        await publish(_TOPIC.format(tag=tag, side=side), payload)
        while True:
            got = await anext(received)
            if len(got) == size and int.from_bytes(got[:4], "little") >= r:
                break
        times.append(time.perf_counter() - start)
    await publish(f"{ready}/{side}", b"", retain=True)
    return times[_WARMUP:]


def exchange_times(
    port: int, size: int, rounds: int, *, max_payload: int | None = None
) -> list[float]:
    """Seconds of each round (both clients' rounds) of two client processes exchanging
    ``size``-byte payloads (with ``max_payload``, through rumor's transport: see :func:`_side`)."""
    command = [sys.executable, __file__, "--port", str(port), "--size", str(size)]
    command += ["--rounds", str(rounds), "--tag", secrets.token_hex(4)]
    if max_payload is not None:
        command += ["--transport", str(max_payload)]
    command += ["--side"]
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
    return times


def exchange_s(port: int, size: int, rounds: int, *, max_payload: int | None = None) -> float:
    """The median of :func:`exchange_times`: on a loaded machine a few rounds wait tens of
    milliseconds for a core."""
    return statistics.median(exchange_times(port, size, rounds, max_payload=max_payload))


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=4_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--side", type=int, choices=[0, 1], help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="t", help=argparse.SUPPRESS)
    parser.add_argument(
        "--transport",
        type=int,
        metavar="MAX_PAYLOAD",
        help="through rumor's MqttTransport, chunked at MAX_PAYLOAD bytes (0: not chunked)",
    )
    args = parser.parse_args(argv)
    if args.side is not None:
        side = _side(args.port, args.side, args.size, args.rounds, args.tag, args.transport)
        print(json.dumps(asyncio.run(side)))
        return 0
    seconds = exchange_s(args.port, args.size, args.rounds, max_payload=args.transport)
    via = "raw aiomqtt" if args.transport is None else f"MqttTransport({args.transport})"
    print(f"{via} exchange of {args.size} B: {1000 * seconds:.1f} ms per round")
    return 0


if __name__ == "__main__":
    sys.exit(run())
