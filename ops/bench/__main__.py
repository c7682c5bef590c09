"""`make bench` (`python -m ops.bench`): the full pipeline against the ceiling, measured in the same run.

Starts a redis-server with `ops/redis.conf` on a free port, the gateway simulator in its own process,
and for each gateway latency: the ceiling (pre-encoded POSTs, no queue, no state, no logging), then the
pipeline (a producer process publishing a CSV, `campaign worker` processes, the ledger, the events),
then on the same workers a 200,000-recipient bulk campaign with 100 OTP campaigns sent during it,
then the ceiling again: the pipeline's ratio is to the mean of the two ceilings. Prints one table
and, on the last line, a JSON summary. Ratios, not seconds, are what to compare: the machine is
shared and noisy.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import redis

from ops.bench.ceiling import measure_ceiling
from ops.bench.publisher import bench_spec, write_recipients
from ops.bench.urgent import p99_seconds, publish_otps
from ops.services import RedisServer, SimulatorProcess, cpu_seconds, peak_rss_mb, process_tree, start_worker
from producer.control import CampaignStatus, campaign_status
from redis_model import keys
from schemas.kaleyra import MAX_NODES_PER_REQUEST
from schemas.settings import Settings

OTP_CAMPAIGNS = 100
LANES_RECIPIENTS = 200_000  # the bulk campaign the OTP campaigns are sent during
# A ceiling under this share of what its requests in flight allow at the latency is shaped by the
# simulator's CPU (one core, a request at a time) more than by the latency.
LATENCY_BOUND_SHARE = 0.7
TARGETS = {"ratio_at_0ms": 0.5, "ratio_at_50ms": 0.9, "worker_cpu_us_per_msg": 10.0,
           "producer_rows_per_s": 100_000, "producer_peak_rss_mb_at_1m": 300}  # fmt: skip


class Fleet(NamedTuple):
    """The workers: `in_flight` of each process's `threads` may have a request out at once; the
    other threads claim, log and settle meanwhile. The ceiling has as many requests in flight."""

    processes: int
    threads: int
    in_flight: int

    @property
    def requests_in_flight(self) -> int:
        return self.processes * self.in_flight


class Run(msgspec.Struct, kw_only=True):
    latency_ms: float
    ceiling_msgs_per_s: float  # the mean of the two measurements, before and after the pipeline
    ceiling_before_msgs_per_s: float
    ceiling_after_msgs_per_s: float
    pipeline_msgs_per_s: float
    ratio: float
    sending_msgs_per_s: float  # from the first job's start to the last settlement: publishing left out
    worker_cpu_us_per_msg: float
    redis_cpu_us_per_msg: float  # Redis serves every worker of every host: its CPU bounds them all
    worker_peak_rss_mb: float
    producer_rows_per_s: float
    producer_peak_rss_mb: float
    submitted: int
    otp_p99_ms: float  # publication to settlement of OTP campaigns sent during a bulk one (a pass of its own)
    otp_under_load: bool  # False: the bulk campaign was sent before the OTPs were all published
    # The simulator's CPU over the wall time, as a share of one core (it runs on one): near 1 during
    # the ceiling, the ceiling is the simulator's CPU on this machine, not the gateway's latency.
    simulator_core_share_ceiling: float
    simulator_core_share_pipeline: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--million", action="store_true", help="1,000,000 recipients")
    parser.add_argument("--latencies", default="0,50", help="gateway latencies in ms, comma-separated")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--in-flight", type=int, default=8, help="requests in flight per worker process")
    args = parser.parse_args(argv)
    fleet = Fleet(args.processes, args.threads, min(args.in_flight, args.threads))
    total = 1_000_000 if args.million else args.recipients
    lanes_total = min(total, LANES_RECIPIENTS)
    latencies = [float(ms) for ms in args.latencies.split(",")]

    with tempfile.TemporaryDirectory(prefix="campaign-bench-") as scratch:
        directory = Path(scratch)
        server = RedisServer(directory)
        server.start()
        api_key = secrets.token_hex(16)
        simulator = SimulatorProcess(api_key)
        try:
            env = os.environ | {
                "REDIS_URL": server.url, "KALEYRA_API_KEY": api_key, "KALEYRA_SID": "HXBENCH",
                "KALEYRA_BASE_URL": simulator.base_url,
            }  # fmt: skip
            csv = write_recipients(directory / "recipients.csv", total)
            lanes = csv if lanes_total == total else write_recipients(directory / "lanes.csv", lanes_total)
            runs = [_measure(env, directory, simulator, (csv, lanes), total, ms, fleet)
                    for ms in latencies]  # fmt: skip
        finally:
            simulator.stop()
            server.kill()
    _print_table(runs, total, fleet)
    summary = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "recipients": total, "processes": fleet.processes, "threads": fleet.threads,
        "in_flight_per_process": fleet.in_flight,
        "runs": [msgspec.structs.asdict(run) for run in runs], "targets": TARGETS,
    }  # fmt: skip
    print(msgspec.json.encode(summary).decode())
    return 0


def _measure(
    env: dict[str, str], directory: Path, simulator: SimulatorProcess,
    files: tuple[Path, Path], total: int, latency_ms: float, fleet: Fleet,
) -> Run:  # fmt: skip
    """The ceiling; then, on one set of workers, the pipeline alone (its throughput and CPU), and a
    second bulk campaign with OTP campaigns sent during it (their p99 only: an OTP holds a thread
    for its request, 1 message instead of 1000, so it is kept out of the throughput); then the
    ceiling again, once the workers have stopped. The pipeline is compared with the mean of the two:
    on a shared machine the speed drifts within a run, and the pipeline ran in between."""
    simulator.call("PUT", "/_simulator/faults", msgspec.json.encode({"latency_ms": latency_ms}))
    settings = Settings.from_environ(env)
    spec = bench_spec(settings)

    gateway = [simulator.process.pid]
    ceiling_shares: list[float] = []

    def ceiling() -> float:
        cpu, started = cpu_seconds(gateway), time.monotonic()
        accepted, seconds = measure_ceiling(
            settings, spec, _numbers(total), in_flight=fleet.requests_in_flight, chunk=MAX_NODES_PER_REQUEST
        )
        ceiling_shares.append((cpu_seconds(gateway) - cpu) / (time.monotonic() - started))
        simulator.call("POST", "/_simulator/reset")
        return accepted / seconds

    ceiling_before = ceiling()

    client = redis.Redis.from_url(env["REDIS_URL"])
    client.flushall()
    with open(directory / f"events-{latency_ms:g}ms.jsonl", "wb") as events:
        worker = start_worker(
            env, processes=fleet.processes, threads=fleet.threads, in_flight=fleet.in_flight, stdout=events
        )
    try:
        _wait(lambda: client.zcard(keys.DRAMATIQ_HEARTBEATS) >= fleet.processes, 30)
        pids = process_tree(worker.pid)
        measured = (pids, gateway)  # the workers, the simulator
        before, started = [cpu_seconds(group) for group in measured], time.monotonic()
        redis_before = _redis_cpu_seconds(client)
        producer, status = _publish_and_wait(env, client, files[0])
        cpu, gateway_cpu = (cpu_seconds(g) - b for g, b in zip(measured, before, strict=True))
        redis_cpu = _redis_cpu_seconds(client) - redis_before
        gateway_share = gateway_cpu / (time.monotonic() - started)
        worker_rss = max(peak_rss_mb(pid) for pid in pids)
        simulator.call("POST", "/_simulator/reset")
        otps: list[str] = []
        under_load: list[bool] = []  # whether the bulk campaign was still being sent once they were out

        def publish_otps_once_sending() -> None:  # once the bulk campaign is being sent
            _wait(lambda: _accepted(simulator), 120)
            otps.extend(publish_otps(settings, client, OTP_CAMPAIGNS))
            # Their own messages count too, but never as many as the bulk campaign's.
            under_load.append(_accepted(simulator) < min(total, LANES_RECIPIENTS))

        _publish_and_wait(env, client, files[1], during=publish_otps_once_sending)
        otp_p99 = p99_seconds(client, otps)
    finally:
        worker.send_signal(signal.SIGTERM)  # the main process: dramatiq forwards it to its children
        worker.wait(timeout=120)
        simulator.call("POST", "/_simulator/reset")
        client.close()
    ceiling_after = ceiling()
    mean_ceiling = (ceiling_before + ceiling_after) / 2
    # From the producer's first row (not its interpreter's start) to the last settlement.
    elapsed = (status.finished_at or time.time()) - producer["started_at"]
    pipeline = status.submitted / elapsed
    return Run(
        latency_ms=latency_ms, ceiling_msgs_per_s=mean_ceiling, ceiling_before_msgs_per_s=ceiling_before,
        ceiling_after_msgs_per_s=ceiling_after, pipeline_msgs_per_s=pipeline, ratio=pipeline / mean_ceiling,
        sending_msgs_per_s=status.submitted / ((status.finished_at or 0) - (status.started_at or 0) or 1e-9),
        worker_cpu_us_per_msg=cpu / status.submitted * 1e6,
        redis_cpu_us_per_msg=redis_cpu / status.submitted * 1e6,
        worker_peak_rss_mb=worker_rss, producer_rows_per_s=producer["rows"] / producer["seconds"],
        producer_peak_rss_mb=producer["peak_rss_mb"], submitted=status.submitted,
        otp_p99_ms=otp_p99 * 1000, otp_under_load=all(under_load),
        simulator_core_share_ceiling=sum(ceiling_shares) / len(ceiling_shares),
        simulator_core_share_pipeline=gateway_share,
    )  # fmt: skip


def _publish_and_wait(
    env: dict[str, str], client: redis.Redis, csv: Path, during: Callable[[], None] = lambda: None
) -> tuple[dict[str, Any], CampaignStatus]:
    """Publish `csv` from a producer process, run `during` meanwhile, wait for the campaign to settle;
    returns the producer's report and the campaign's status."""
    publisher = subprocess.Popen(
        [sys.executable, "-m", "ops.bench.publisher", str(csv)], env=env, stdout=subprocess.PIPE
    )
    try:
        during()
        out, _ = publisher.communicate(timeout=600)
    finally:
        if publisher.poll() is None:  # `during` failed, or the publisher outlived its timeout
            publisher.kill()
            publisher.wait()
    if publisher.returncode:
        raise RuntimeError(f"the publisher failed with exit code {publisher.returncode}")
    producer = msgspec.json.decode(out.splitlines()[-1])
    status = _wait(lambda: (s := campaign_status(client, producer["campaign_id"])).pending == 0 and s, 600)
    return producer, status


def _redis_cpu_seconds(client: redis.Redis) -> float:
    # Redis's own count, to the microsecond: /proc's 10 ms ticks show none for a small run.
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _accepted(simulator: SimulatorProcess) -> int:
    return int(msgspec.json.decode(simulator.call("GET", "/_simulator/stats"))["accepted_messages"])


def _numbers(total: int) -> list[str]:
    return [f"+919{i:09d}" for i in range(total)]


def _wait(condition, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the benchmark waited {timeout}s in vain")
        time.sleep(0.05)
    return result


def _print_table(runs: list[Run], total: int, fleet: Fleet) -> None:
    print(f"{total:,} recipients; {fleet.processes} worker processes x {fleet.threads} threads, "
          f"{fleet.in_flight} requests in flight each; {fleet.requests_in_flight} in flight for both",
          file=sys.stderr)  # fmt: skip
    header = ("latency", "ceiling msg/s", "pipeline msg/s", "ratio", "sending msg/s", "worker CPU us/msg",
              "Redis CPU us/msg",
              "worker peak MB", "producer rows/s", "producer peak MB", "OTP p99 ms",
              "simulator core % (ceiling/pipeline)")  # fmt: skip
    rows = [
        (f"{r.latency_ms:g} ms", f"{r.ceiling_msgs_per_s:,.0f}", f"{r.pipeline_msgs_per_s:,.0f}",
         f"{r.ratio:.2f}", f"{r.sending_msgs_per_s:,.0f}", f"{r.worker_cpu_us_per_msg:.1f}",
         f"{r.redis_cpu_us_per_msg:.2f}",
         f"{r.worker_peak_rss_mb:.0f}",
         f"{r.producer_rows_per_s:,.0f}", f"{r.producer_peak_rss_mb:.0f}",
         f"{r.otp_p99_ms:.0f}" + ("" if r.otp_under_load else "*"),
         f"{r.simulator_core_share_ceiling:.0%} / {r.simulator_core_share_pipeline:.0%}")
        for r in runs
    ]  # fmt: skip
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)), file=sys.stderr)
    for r in runs:
        # A small run has fewer requests than places in flight.
        in_flight = min(fleet.requests_in_flight, math.ceil(total / MAX_NODES_PER_REQUEST))
        latency_bound = in_flight * MAX_NODES_PER_REQUEST / (r.latency_ms / 1000) if r.latency_ms else 0.0
        if r.ceiling_msgs_per_s < LATENCY_BOUND_SHARE * latency_bound:
            share = r.ceiling_msgs_per_s / latency_bound
            print(f"the ceiling at {r.latency_ms:g} ms is {share:.0%} of the {latency_bound:,.0f} msg/s its "
                  "requests in flight allow at that latency: the simulator's CPU shapes it, so the ratio "
                  "there measures CPU as well as waiting", file=sys.stderr)  # fmt: skip
    if not all(r.otp_under_load for r in runs):
        bulk = min(total, LANES_RECIPIENTS)
        print(f"* the {bulk:,}-recipient bulk campaign was sent before the OTP campaigns were all "
              "published: that p99 is of idle workers; give more --recipients", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
