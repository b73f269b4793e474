"""Benchmark: N real peers over a local Mosquitto (``rumor up``), against raw aiomqtt on it.

For each codec and each N it runs ``rumor up`` (Fashion-MNIST, ring, sync) on a broker of its
own and reports, per round (round 1, which waits for peers still starting, left out) and
averaged over peers and rounds:

- the exchange: encode, publish, wait for the neighbours' frames, decode and mix (the phases of
  each peer's stats), next to training, evaluation (every ``learning.eval_every`` rounds) and
  whatever no phase covers (``other``);
- ``raw``: two raw aiomqtt clients, one process each, exchanging payloads of the same mean size
  per round (QoS 1, one MQTT message each way) through the same Mosquitto, timed right before
  and right after the swarm (``bench/raw_exchange.py``), and the ratio of the two medians (the
  peers' exchange, the raw rounds' before and after together): the number that matters on a
  shared machine, where both slow down together (before and after are printed too: far apart,
  the load changed during the run);
- the same exchange through rumor's MqttTransport alone, chunked as the peers chunk
  (``broker.max_payload``): what the transport costs, apart from encoding, signing and mixing;
- each peer's peak RSS (MiB, the peer's own ``VmHWM``), next to the peak of a process that only
  imports torch, the floor any peer pays.

    python bench/swarm.py --peers 2 4 8 16 --model mlp:hidden=1258 --codecs raw fp16 int8 sign
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from raw_exchange import exchange_s, exchange_times

from peer.broker import Broker
from peer.cli import main
from peer.config import BrokerConfig
from peer.tasks.specs import check_model_spec
from protocol.errors import ConfigError
from protocol.topics import peer_name

EXCHANGE = ("encode", "publish", "wait", "decode", "mix")
PHASES = ("train", *EXCHANGE, "evaluate", "checkpoint")


def _torch_floor_mb() -> float:
    """Peak RSS (MiB) of a Python process that imports torch and nothing else."""
    # VmHWM, as the peers report it (ru_maxrss would carry this process's size over the exec)
    code = "import torch; print([v for v in open('/proc/self/status') if v[:6] == 'VmHWM:'][0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[1]) / 1024  # kB


def _stats(run: Path, peers: int) -> list[list[dict[str, Any]]]:
    out = []
    for j in range(peers):
        path = run / peer_name(j) / "stats.jsonl"
        out.append([json.loads(line) for line in path.read_text().splitlines()])
    return out


def _phases(per_peer: list[list[dict[str, Any]]]) -> dict[str, float]:
    """Mean seconds per round of each phase, the exchange, and what no phase covers."""
    # Round 1 waits for neighbours still starting (gossip.startup_grace_s): a start-up cost.
    rows = [s["timings"] for peer in per_peer for s in peer[1:]]
    out = {p: statistics.mean(r.get(p, 0.0) for r in rows) for p in PHASES}
    out["exchange"] = sum(out[p] for p in EXCHANGE)
    out["exchange_median"] = statistics.median(sum(r[p] for p in EXCHANGE) for r in rows)
    out["total"] = statistics.mean(r["total"] for r in rows)
    out["other"] = out["total"] - sum(out[p] for p in PHASES)
    return out


def _frame_bytes(per_peer: list[list[dict[str, Any]]], rounds: int) -> int:
    """Mean bytes a peer published per round (its frames; telemetry adds a few hundred)."""
    sent = statistics.mean(p[-1]["bytes_out"] for p in per_peer)
    return max(1, int(sent) // rounds)


def _max_payload(args: argparse.Namespace) -> int:
    """The peers' chunk size: ``--set broker.max_payload=N``, else the config's default."""
    for item in args.set:
        key, _, value = item.partition("=")
        if key.strip() == "broker.max_payload":
            return int(value)
    return BrokerConfig().max_payload


_HEADER = """\
Each line: N peers (ring, sync) and their codec, the mean frame a peer publishes per round; the
peers' exchange per round (encode + publish + wait + decode + mix, round 1 left out: median over
peers and rounds, and mean); raw aiomqtt = two bare aiomqtt clients moving one QoS 1 message of
the frame's size each way per round through the same Mosquitto (default configuration), timed
before and after the swarm; the ratio = exchange median / raw median (target: at most 2 with 2
peers); rumor's transport alone = the raw exchange through MqttTransport, chunked as the peers
chunk. Peers: broker.max_payload {max_payload} B, {security} frames; phases are means in ms."""


def _raw_frame(model: str) -> int | None:
    """The raw frame of ``model`` if it is an MLP on Fashion-MNIST (4 bytes a parameter and
    the envelope's fields), for the raw clients before the first swarm; None otherwise."""
    spec = check_model_spec(model)
    if spec.name != "mlp":
        return None
    hidden = int(spec.params.get("hidden", 64))
    return 4 * (784 * hidden + hidden + hidden * 10 + 10) + 700


def _up(argv: list[str], security: str) -> int:
    flag = {"signed": [], "secure": ["--secure"], "insecure": ["--insecure"]}[security]
    return main(["--log-level", "WARNING", "up", *argv, *flag])


def bench(peers: int, args: argparse.Namespace, codec: str, raw_rounds: int = 30) -> dict[str, Any]:
    """One swarm of ``peers`` with ``codec``, then the raw exchange on the same broker (none
    with ``--security secure``, whose TLS broker ``rumor up`` starts and stops itself)."""
    argv = ["--peers", str(peers), "--rounds", str(args.rounds), "--model", args.model]
    argv += ["--local-steps", str(args.local_steps), "--codec", codec]
    for item in args.set:
        argv += ["--set", item]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        argv += ["--out", str(out / "run")]
        if args.security == "secure":  # rumor up starts its own TLS broker: no raw figure
            start = time.perf_counter()
            status = _up(argv, args.security)
            wall = time.perf_counter() - start
            per_peer = _stats(out / "run", peers)
            frame, raw, via = _frame_bytes(per_peer, args.rounds), math.nan, math.nan
            raw_split = (math.nan, math.nan)
        else:
            with Broker.start_sync(log_dir=out / "broker") as broker:
                # The frame's size is known after the swarm; before it, the raw clients move the
                # size of this codec's last run, or 4 bytes a parameter for the raw codec of an
                # MLP; none before the first run of another codec.
                guess = args.frames.get(codec, args.params if codec == "raw" else None)
                half = raw_rounds // 2
                before = [] if guess is None else exchange_times(broker.port, guess, half)
                start = time.perf_counter()
                status = _up([*argv, "--broker", broker.address], args.security)
                wall = time.perf_counter() - start
                per_peer = _stats(out / "run", peers)
                frame = _frame_bytes(per_peer, args.rounds)
                args.frames[codec] = frame
                after = exchange_times(broker.port, frame, half)
                raw = statistics.median(before + after)
                raw_split = (statistics.median(before or [math.nan]), statistics.median(after))
                # The same exchange through rumor's transport, chunked as the peers chunk.
                via = exchange_s(broker.port, frame, raw_rounds, max_payload=_max_payload(args))
    phases = _phases(per_peer)
    return {
        "peers": peers,
        "codec": codec,
        "status": status,
        "wall_s": wall,
        "round_s": phases,
        "frame_bytes": frame,
        "raw_exchange_s": raw,
        "raw_before_after_s": raw_split,
        "chunks_per_frame": -(-frame // _max_payload(args)),
        "load_average": os.getloadavg()[0],
        "transport_exchange_s": via,
        "ratio": phases["exchange_median"] / raw,
        "peak_rss_mb": max(peer[-1]["peak_rss_mb"] for peer in per_peer),
    }


def _print(result: dict[str, Any]) -> None:
    phases = result["round_s"]
    assert isinstance(phases, dict)
    before, after = result["raw_before_after_s"]
    split = " ".join(f"{p} {1000 * phases[p]:.1f}" for p in (*PHASES, "other"))
    print(
        f"N={result['peers']:>2} {result['codec']:<6} frame {result['frame_bytes']} B: exchange "
        f"median {1000 * phases['exchange_median']:.1f} ms (mean {1000 * phases['exchange']:.1f}); "
        f"raw aiomqtt {1000 * result['raw_exchange_s']:.1f} ms (before {1000 * before:.1f}, "
        f"after {1000 * after:.1f}) -> {result['ratio']:.2f}x; "
        f"rumor's transport alone {1000 * result['transport_exchange_s']:.1f} ms; "
        f"round {1000 * phases['total']:.1f} ms\n"
        f"      per round (ms, means): {split}\n"
        f"      {result['chunks_per_frame']} chunks per frame; peak RSS per peer "
        f"{result['peak_rss_mb']:.0f} MB; wall {result['wall_s']:.1f} s; load average "
        f"{result['load_average']:.1f}; exit {result['status']}",
        flush=True,
    )


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--peers", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--codecs", nargs="+", default=["raw"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--model", default="mlp:hidden=1258", help="1,000,120 parameters")
    parser.add_argument("--local-steps", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="rumor up --set, repeatable")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--security",
        choices=["signed", "secure", "insecure"],
        default="signed",
        help="rumor up's default (signed frames), --secure (its own TLS broker: no raw figure) "
        "or --insecure",
    )
    args = parser.parse_args(argv)
    if args.rounds < 2:  # round 1 is left out of every figure
        parser.error(f"--rounds must be >= 2, got {args.rounds}")
    if min(args.peers) < 2 or args.local_steps < 1:
        parser.error("--peers must each be >= 2 and --local-steps >= 1")
    try:
        args.frames, args.params = {}, _raw_frame(args.model)
        _max_payload(args)
    except ConfigError as exc:
        parser.error(f"--model: {exc}")
    except ValueError as exc:
        parser.error(f"--set broker.max_payload: {exc}")
    floor = _torch_floor_mb()
    print(_HEADER.format(max_payload=_max_payload(args), security=args.security), flush=True)
    print(f"a process that only imports torch peaks at {floor:.0f} MB", flush=True)
    results: list[dict[str, Any]] = []
    for codec in args.codecs:
        for n in args.peers:
            result = bench(n, args, codec)
            result["torch_floor_mb"] = floor
            _print(result)
            results.append(result)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run())
