"""`python -m ops.bench.reports` (`make bench-reports`): delivery reports a second taken by one `campaign
serve` process (`--processes 1`) from `--connections` keep-alive connections, one report a request, as
Kaleyra's callback profile sends them; on a redis-server of its own with `ops/redis.conf`.

Setup: a real campaign of `--messages` recipients goes through `campaign worker` and the simulator
(reports off), which write its requests' delivery headers; the message ids are read from the workers'
`sms.submitted` events; workers and simulator are then stopped, so that the machine is the service's,
Redis's and the load generator's. Then, in random order: a Sent report of each message (POST JSON), a
final report of most (POST JSON, some sent twice), the rest of the finals by GET (the query). A report
is durable when its 200 comes: Redis has run the script and written it to the AOF file (appendfsync
everysec: the kernel holds it, a crash of Redis loses nothing, a crash of the machine at most about a
second). Prints a line per phase and, last, a JSON summary; at the end the campaign's delivered,
undelivered and dlr_failed must equal the distinct final reports sent, exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import redis
import uvloop

from ops.bench.events import CpuShares, _response, _serve, _stop
from ops.bench.publisher import write_recipients
from ops.services import RedisServer, SimulatorProcess, start_worker
from producer.control import campaign_status
from redis_model import keys
from redis_model.delivery import request_ids

GATEWAY_KEY = "bench-gateway-key"
TOKEN = "bench-dlr-token"
PATH = "/v1/dlr/kaleyra"
TARGET_PER_S = 10_000  # issue 21
MEMORY_BOUND = 40  # bytes a delivered message may hold in Redis (issue 21)
# The final reports: status, trace, and the share of messages given it; the rest get no final report.
FINALS = (("Delivered", "DELIVRD", 0.85), ("Undelivered", "ABSENT-SUB", 0.04),
          ("Undelivered", "MOB-OFF", 0.02), ("UNDELIV", "EXPIRED", 0.02), ("Failed", "DND-NUMB", 0.02),
          ("Failed", "INV-NUMBER", 0.02))  # fmt: skip
COUNTER = {
    "Delivered": "delivered",
    "Undelivered": "undelivered",
    "UNDELIV": "undelivered",
    "Failed": "dlr_failed",
}
DUPLICATES = 0.05  # of the final reports, sent twice
GET_SHARE = 0.25  # of the final reports, sent by GET
_encode = msgspec.json.Encoder().encode


class Phase(msgspec.Struct, kw_only=True):
    name: str
    reports: int
    reports_per_s: float
    cpu_us_per_report: dict[str, float]  # service, redis, load generator
    redis_commands_per_report: float  # scripts' own commands counted too
    script_calls_per_report: float  # EVALSHA: a call per event-loop turn of the service


class Summary(msgspec.Struct, kw_only=True):
    messages: int
    connections: int
    nodes_per_request: float  # the campaign's messages over its requests (delivery headers written)
    reports: int
    reports_per_s: float  # all phases: reports over their seconds
    target_per_s: int
    phases: list[Phase]
    redis_memory_bytes_per_message: float  # used_memory's growth over the phases, a message
    keys_bytes_per_message: float  # the growth of the delivery strings, traces and times (MEMORY USAGE)
    memory_bound_bytes: int
    counts: dict[str, int]  # the campaign's, after the last phase
    counts_sent: dict[str, int]  # distinct final reports sent
    counts_match: bool
    durability: str


def run_campaign(
    env: dict[str, str], client: redis.Redis, directory: Path, messages: int
) -> tuple[str, list[str]]:
    """A campaign sent through the workers and the simulator (reports off): its id and message ids."""
    simulator = SimulatorProcess(GATEWAY_KEY, latency_ms=0.0)
    events = directory / "events.jsonl"
    env = env | {"KALEYRA_BASE_URL": simulator.base_url}
    try:
        with open(events, "wb") as log:
            workers = start_worker(env, processes=os.cpu_count() or 1, threads=8, stdout=log)
        try:
            csv = write_recipients(directory / "recipients.csv", messages)
            out = subprocess.run([sys.executable, "-m", "ops.bench.publisher", str(csv)], env=env,
                                 stdout=subprocess.PIPE, check=True, timeout=600).stdout  # fmt: skip
            campaign_id = msgspec.json.decode(out.splitlines()[-1])["campaign_id"]
            _wait_sent(client, campaign_id, timeout=300)
        finally:
            _stop(workers, group=True)
    finally:
        simulator.stop()
    status = campaign_status(client, campaign_id)
    ids = [msgspec.json.decode(line)["message_id"] for line in events.read_bytes().splitlines()
           if b'"sms.submitted"' in line]  # fmt: skip
    if status.submitted != messages or len(ids) != messages:
        raise RuntimeError(f"{messages} recipients: {status.submitted} submitted, {len(ids)} events")
    return campaign_id, ids


def _wait_sent(client: redis.Redis, campaign_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (status := campaign_status(client, campaign_id)).pending:
        if time.monotonic() > deadline:
            told = f"{status.pending} recipients pending after {timeout:.0f}s (state {status.state})"
            raise RuntimeError(f"the setup's campaign has {told}: are the workers failing?")
        time.sleep(0.1)


def _time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")  # Kaleyra's form


def _post(host: str, report: dict[str, str]) -> bytes:
    body = _encode(report)
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nX-Dlr-Token: {TOKEN}\r\nContent-Type: application/json\r\n"
    )
    return head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _get(host: str, report: dict[str, str]) -> bytes:
    query = urllib.parse.urlencode(report)
    return f"GET {PATH}?{query} HTTP/1.1\r\nHost: {host}\r\nX-Dlr-Token: {TOKEN}\r\n\r\n".encode()


def plan(ids: list[str], host: str, seed: int) -> tuple[list[tuple[str, list[bytes]]], Counter[str]]:
    """The phases' requests, each message's reports in a random order; and the final reports' counts."""
    rng = random.Random(seed)
    submitted = time.time() - 60
    sent = [_post(host, {"id": i, "status": "Sent", "status_trace": "SENT", "timestamp": _time(submitted)})
            for i in ids]  # fmt: skip
    finals: list[dict[str, str]] = []
    counted: Counter[str] = Counter()
    shuffled = rng.sample(ids, len(ids))
    start = 0
    for status, trace, share in FINALS:
        given = shuffled[start : start + round(share * len(ids))]
        start += len(given)
        counted[COUNTER[status]] += len(given)
        finals += [{"id": i, "status": status, "status_trace": trace,
                    "timestamp": _time(submitted + rng.uniform(1, 40))} for i in given]  # fmt: skip
    finals += rng.sample(finals, round(DUPLICATES * len(finals)))
    rng.shuffle(finals)
    rng.shuffle(sent)
    by_get = round(GET_SHARE * len(finals))
    posted = [_post(host, report) for report in finals[by_get:]]
    queried = [_get(host, report) for report in finals[:by_get]]
    return [("sent, POST JSON", sent), ("final, POST JSON", posted), ("final, GET query", queried)], counted


def send(url: str, requests: list[bytes], connections: int) -> float:
    """Each request on one of `connections` keep-alive connections, in turn; the seconds it took."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_send(url, requests, connections))


async def _send(url: str, requests: list[bytes], connections: int) -> float:
    split = urllib.parse.urlsplit(url)
    began = time.perf_counter()

    async def sender(start: int) -> None:
        reader, writer = await asyncio.open_connection(split.hostname, split.port)
        try:
            for n in range(start, len(requests), connections):
                writer.write(requests[n])
                status, answer = await _response(reader)
                if status != 200:
                    raise RuntimeError(f"{PATH}: {status} {answer!r}")
        finally:
            writer.close()

    await asyncio.gather(*(sender(start) for start in range(connections)))
    return time.perf_counter() - began


def _calls(client: redis.Redis) -> tuple[int, int]:
    """Redis commands since the last reset (INFO and CONFIG left out), and of them EVALSHA."""
    stats = client.info("commandstats")
    shown = {k: v["calls"] for k, v in stats.items() if k not in ("cmdstat_config|resetstat", "cmdstat_info")}
    return sum(shown.values()), shown.get("cmdstat_evalsha", 0)


def _usage(client: redis.Redis, names: list[str]) -> int:
    """The bytes these keys hold (MEMORY USAGE, every element sampled); 0 for one not there."""
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.memory_usage(name, samples=0)
        return sum(size or 0 for size in pipe.execute())


def measure(name: str, url: str, requests: list[bytes], connections: int, shares: CpuShares) -> Phase:
    shares.client.config_resetstat()
    before = shares.sample()
    seconds = send(url, requests, connections)
    after = shares.sample()
    commands, scripts = _calls(shares.client)
    count = len(requests)
    phase = Phase(
        name=name, reports=count, reports_per_s=count / seconds,
        cpu_us_per_report={part: (after[part] - before[part]) / count * 1e6 for part in after},
        redis_commands_per_report=commands / count, script_calls_per_report=scripts / count,
    )  # fmt: skip
    cpu = ", ".join(f"{part} {us:.0f}" for part, us in phase.cpu_us_per_report.items())
    print(f"{name:<17} {count:>8,} reports {phase.reports_per_s:>8,.0f}/s; CPU us/report: {cpu}; Redis "
          f"commands/report {phase.redis_commands_per_report:.2f} ({phase.script_calls_per_report:.3f} "
          "script calls)", file=sys.stderr)  # fmt: skip
    return phase


def bench(args: argparse.Namespace, directory: Path) -> Summary:
    server = RedisServer(directory)
    server.start()
    client = redis.Redis.from_url(server.url)
    env = os.environ | {"REDIS_URL": server.url, "KALEYRA_API_KEY": GATEWAY_KEY, "KALEYRA_SID": "HXBENCH",
                        "CAMPAIGN_DLR_TOKEN": TOKEN}  # fmt: skip
    try:
        durability = client.config_get("appendonly") | client.config_get("appendfsync")
        if durability != {"appendonly": "yes", "appendfsync": "everysec"}:
            raise RuntimeError(f"ops/redis.conf should give AOF with fsync every second, not {durability}")
        campaign_id, ids = run_campaign(env, client, directory, args.messages)
        deliveries = [keys.delivery(request_id) for request_id in request_ids(ids)]
        report_keys = [
            *deliveries,
            keys.campaign_traces(campaign_id),
            keys.campaign_delivery_times(campaign_id),
        ]
        service, url = _serve(env)
        try:
            print(f"campaign serve: pid {service.pid}", file=sys.stderr)
            phases, counted = plan(ids, urllib.parse.urlsplit(url).netloc, args.seed)
            shares = CpuShares(client, {"service": service.pid})
            memory_before, keys_before = client.info("memory")["used_memory"], _usage(client, report_keys)
            measured = [measure(name, url, requests, args.connections, shares) for name, requests in phases]
            memory = (client.info("memory")["used_memory"] - memory_before) / len(ids)
            held = (_usage(client, report_keys) - keys_before) / len(ids)
        finally:
            _stop(service)
        status = campaign_status(client, campaign_id)
    finally:
        client.close()
        server.kill()
    counts = {
        "delivered": status.delivered,
        "undelivered": status.undelivered,
        "dlr_failed": status.dlr_failed,
    }
    reports = sum(phase.reports for phase in measured)
    return Summary(
        messages=len(ids), connections=args.connections, nodes_per_request=len(ids) / len(deliveries),
        reports=reports, reports_per_s=reports / sum(p.reports / p.reports_per_s for p in measured),
        target_per_s=TARGET_PER_S, phases=measured, redis_memory_bytes_per_message=memory,
        keys_bytes_per_message=held,
        memory_bound_bytes=MEMORY_BOUND, counts=counts, counts_sent=dict(counted),
        counts_match=counts == {name: counted[name] for name in counts},
        durability="AOF appendfsync everysec: each 2xx after Redis wrote the report to its AOF file",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.bench.reports", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--messages",
        type=int,
        default=100_000,
        help="the campaign's recipients: a Sent report each, most a final one",
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="the load generator's keep-alive connections"
    )
    parser.add_argument("--seed", type=int, default=21, help="the reports' order and outcomes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        summary = bench(args, Path(directory))
    verdict = "match" if summary.counts_match else "DIFFER"
    print(f"all phases {summary.reports_per_s:,.0f} reports/s (target {TARGET_PER_S:,}); Redis memory a "
          f"message {summary.redis_memory_bytes_per_message:.1f} bytes, its delivery keys "
          f"{summary.keys_bytes_per_message:.1f} (bound {MEMORY_BOUND}); counts {verdict}: "
          f"{summary.counts} against {summary.counts_sent} sent", file=sys.stderr)  # fmt: skip
    print(msgspec.json.encode(summary).decode())
    return 0 if summary.counts_match else 1


if __name__ == "__main__":
    sys.exit(main())
