"""`python -m ops.bench.events` (`make bench-events`): event-driven producers over HTTP, end to end: one
`campaign serve` process, the default workers and the simulator at 0 ms, on a redis-server of its own.

Three phases. Intake: workers stopped, a load generator of `--connections` keep-alive connections
sends one message a request (then 1000 a request to the batch endpoint): messages accepted a
second, and Redis commands per message counted by INFO commandstats (only the service talks to
Redis then). End to end: the workers started, the same load: accepted and submitted a second, the
latter from the workers' `sms.submitted` events. Latency: `--rate` messages a second for a few
seconds, TXN then OTP: p50 and p99 from each 202 to its `sms.submitted` event. The machine is
shared by all of them: the figures are of this machine, the ratios travel.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import msgspec
import redis
import uvloop

from ops.services import (
    RedisServer,
    SimulatorProcess,
    cpu_seconds,
    free_port,
    process_tree,
    start_worker,
    wait_until,
)
from redis_model import keys
from redis_model.api_keys import ApiKeyStore

GATEWAY_KEY = "bench-gateway-key"
BUSIEST_SHOWN = 12  # Redis commands whose time per message end to end is printed
_event = msgspec.json.Decoder(dict)
_answer = msgspec.json.Decoder(dict)
_encode = msgspec.json.Encoder().encode


def _message(i: int, message_type: str = "TXN") -> dict[str, str]:
    return {"to": f"+91981{i % 10_000_000:07d}", "sender": "KLRHXA", "type": message_type,
            "body": f"Your order {i} shipped"}  # fmt: skip


class Load:
    """The load generator: keep-alive HTTP/1.1 connections to the service, each sending its requests in
    turn. Written on asyncio streams rather than an HTTP client library, so that it takes less of the
    machine it shares with what it measures (aiohttp's client spent as much CPU a request as the service)."""

    def __init__(self, url: str, key: str, connections: int) -> None:
        self.url, self.connections = url, connections
        self.authorization = f"Bearer {key}"
        self.accepted: dict[str, float] = {}  # message id -> when its 202 came (Unix time)

    def send(
        self, bodies: list[dict], path: str = "/v1/messages", per_second: float = 0, idempotency: bool = False
    ) -> float:
        """POST each body to `path`, `connections` at a time (paced at `per_second` if given, each with an
        Idempotency-Key if told); the seconds it took."""
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(self._send(bodies, path, per_second, idempotency))

    async def _send(self, bodies: list[dict], path: str, per_second: float, idempotency: bool) -> float:
        split = urllib.parse.urlsplit(self.url)
        head = (f"POST {path} HTTP/1.1\r\nHost: {split.netloc}\r\nAuthorization: {self.authorization}\r\n"
                "Content-Type: application/json\r\n").encode()  # fmt: skip
        requests = [
            head
            + (f"Idempotency-Key: bench-{n}\r\n".encode() if idempotency else b"")
            + b"Content-Length: %d\r\n\r\n" % len(encoded)
            + encoded
            for n, encoded in enumerate(map(_encode, bodies))
        ]
        began = time.perf_counter()

        async def sender(start: int) -> None:
            reader, writer = await asyncio.open_connection(split.hostname, split.port)
            try:
                for n in range(start, len(requests), self.connections):
                    if per_second:
                        await asyncio.sleep(max(0.0, began + n / per_second - time.perf_counter()))
                    writer.write(requests[n])
                    status, answer = await _response(reader)
                    if status != 202:
                        raise RuntimeError(f"{path}: {status} {answer!r}")
                    now = time.time()
                    for item in _answer.decode(answer).get("results", None) or [_answer.decode(answer)]:
                        self.accepted[item["id"]] = now
            finally:
                writer.close()

        await asyncio.gather(*(sender(start) for start in range(self.connections)))
        return time.perf_counter() - began


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of the next response on a keep-alive connection (the service always sends
    a Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    at = head.lower().index(b"content-length:") + len(b"content-length:")
    length = int(head[at : head.index(b"\r\n", at)])
    return status, await reader.readexactly(length)


def _commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_config|resetstat", "cmdstat_info"))


def _submitted(events: Path, wanted: set[str], timeout: float) -> dict[str, float]:
    """The `sms.submitted` time of each wanted message id, read from the workers' events as they come."""
    found: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    with open(events, "rb") as stream:
        while len(found) < len(wanted):
            line = stream.readline()
            if not line.endswith(b"\n"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(wanted) - len(found)} messages not submitted in {timeout}s")
                stream.seek(-len(line), os.SEEK_CUR)
                time.sleep(0.05)
                continue
            if b'"sms.submitted"' in line and b'"message"' in line:
                event = _event.decode(line)
                if event.get("message") in wanted:
                    found[event["message"]] = event["ts"]
    return found


def _all_settled(client: redis.Redis) -> bool:
    """No message left in a lane's stream: each is settled, its entry deleted."""
    return all(client.xlen(keys.message_stream(lane)) == 0 for lane in keys.LANES)


def _requests(simulator: SimulatorProcess) -> int:
    return int(msgspec.json.decode(simulator.call("GET", "/_simulator/stats"))["requests"])


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def intake(load: Load, client: redis.Redis, count: int) -> None:
    """Workers stopped: messages accepted a second and Redis commands a message, single and batched."""
    singles = [_message(i) for i in range(count)]
    batches = [{"messages": [_message(i) for i in range(b, b + 1000)]} for b in range(0, count * 5, 1000)]
    for name, bodies, path, keyed in (
        ("one a request", singles, "/v1/messages", False),
        ("with a key", singles, "/v1/messages", True),
        ("batch of 1000", batches, "/v1/messages/batch", False),
    ):
        client.config_resetstat()
        seconds = load.send(bodies, path, idempotency=keyed)
        messages = sum(len(body.get("messages", [body])) for body in bodies)
        print(f"intake, {name:<14} {messages / seconds:>10,.0f} accepted/s "
              f"{_commands(client) / messages:>6.2f} Redis commands/message")  # fmt: skip


class CpuShares:
    """CPU seconds spent by each part of the bench (its processes' user + system time): what a message
    costs each of them, which the machine's load does not change the way it changes rates."""

    def __init__(self, client: redis.Redis, processes: dict[str, int]) -> None:
        self.client, self.processes = client, processes

    def sample(self) -> dict[str, float]:
        cpu = self.client.info("cpu")
        seconds = {name: cpu_seconds(process_tree(pid)) for name, pid in self.processes.items()}
        seconds["redis"] = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
        own = resource.getrusage(resource.RUSAGE_SELF)
        seconds["load generator"] = own.ru_utime + own.ru_stime
        return seconds


def end_to_end(load: Load, events: Path, count: int, shares: CpuShares, simulator: SimulatorProcess) -> None:
    load.accepted.clear()
    requests_before = _requests(simulator)
    shares.client.config_resetstat()
    memory_before = shares.client.info("memory")["used_memory"]
    before = shares.sample()
    began = time.time()
    seconds = load.send([_message(i) for i in range(count)])
    generated = shares.sample()["load generator"]
    submitted = _submitted(events, set(load.accepted), timeout=300)
    took = max(submitted.values()) - began
    after = shares.sample() | {"load generator": generated}
    requests = _requests(simulator) - requests_before
    print(
        f"end to end, one a request {count / seconds:>10,.0f} accepted/s {count / took:>10,.0f} submitted/s"
        f" {count / requests:>6.1f} messages/gateway request"
    )
    stats = shares.client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items() if name != "cmdstat_info"}
    busiest = sorted(stats.items(), key=lambda item: -item[1]["usec"])[:BUSIEST_SHOWN]
    shown = ", ".join(f"{name.removeprefix('cmdstat_')} {v['usec'] / count:.1f} us" for name, v in busiest)
    print(f"  Redis commands/message: {sum(calls.values()) / count:.2f} (scripts' own counted too); "
          f"Redis's time a message: {shown}")  # fmt: skip
    wait_until(lambda: _all_settled(shares.client), 30, "the messages' settlements")
    held = (shares.client.info("memory")["used_memory"] - memory_before) / count
    print(f"  Redis memory a settled message (its status hash, until it expires): {held:.0f} bytes")
    costs = {name: (after[name] - before[name]) / count * 1e6 for name in after}
    print("  CPU us/message: " + ", ".join(f"{name} {us:,.0f}" for name, us in costs.items())
          + f"; total {sum(costs.values()):,.0f}")  # fmt: skip


def latency(load: Load, events: Path, rate: float, seconds: float) -> None:
    for message_type in ("TXN", "OTP"):
        load.accepted.clear()
        bodies = [_message(i, message_type) for i in range(int(rate * seconds))]
        load.send(bodies, per_second=rate)
        submitted = _submitted(events, set(load.accepted), timeout=300)
        took = [(submitted[m] - at) * 1000 for m, at in load.accepted.items()]
        print(f"latency {message_type} at {rate:,.0f}/s: 202 -> sms.submitted "
              f"p50 {_percentile(took, 0.5):.1f} ms, p99 {_percentile(took, 0.99):.1f} ms")  # fmt: skip


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "campaign", "serve", "--port", str(port), "--processes", "1"],
        env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _get(url + "/readyz"), 20, "campaign serve")
    return server, url


def _get(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as reply:
        return bool(reply.status == 200)


def _stop(process: subprocess.Popen, group: bool = False) -> None:
    """SIGTERM to the process (or its process group, where dramatiq's worker processes are), then wait."""
    if process.poll() is None:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        process.wait(timeout=90)


def bench(args: argparse.Namespace, directory: Path) -> None:
    server = RedisServer(directory)
    server.start()
    simulator = SimulatorProcess(GATEWAY_KEY, latency_ms=0.0)
    env = os.environ | {"REDIS_URL": server.url, "KALEYRA_API_KEY": GATEWAY_KEY, "KALEYRA_SID": "HXBENCH",
                        "KALEYRA_BASE_URL": simulator.base_url}  # fmt: skip
    client = redis.Redis.from_url(server.url)
    stops: list[Callable[[], None]] = [server.kill, simulator.stop, client.close]
    try:
        _, key = ApiKeyStore(client).create("bench")
        service, url = _serve(env)
        stops.insert(0, lambda: _stop(service))
        load = Load(url, key, args.connections)
        intake(load, client, args.count)
        client.flushdb()
        _, key = ApiKeyStore(client).create("bench")
        load = Load(url, key, args.connections)
        events = directory / "events.jsonl"
        with open(events, "wb") as log:
            workers = start_worker(env, processes=args.processes, threads=8, stdout=log)
        stops.insert(0, lambda: _stop(workers, group=True))
        wait_until(lambda: client.zcard(keys.DRAMATIQ_HEARTBEATS), 30, "the workers")
        shares = CpuShares(client, {"service": service.pid, "workers": workers.pid,
                                    "simulator": simulator.process.pid})  # fmt: skip
        end_to_end(load, events, args.count, shares, simulator)
        latency(load, events, args.rate, args.seconds)
    finally:
        for stop in stops:
            stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.bench.events", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--count", type=int, default=20_000, help="messages of the intake and end-to-end runs"
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="the load generator's keep-alive connections"
    )
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--rate", type=float, default=1000.0, help="messages a second of the latency runs")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each latency run lasts")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        bench(args, Path(directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
