"""`python -m ops.bench.instructions`: instructions per message of the worker's and the producer's
hot paths, counted by callgrind, against the ceiling's client measured in the same run.

On a shared machine `make bench` moves by a tenth from one run to the next; an instruction count
moves by a hundredth or two, so it shows what a change to the code did. It is not time: the
kernel's work is not in it, and code that decodes JSON runs several instructions a cycle where the
interpreter runs one or two. Each part runs in a process of its own under `valgrind --tool=callgrind`
(counting only its measured phase, after a warm-up), against a redis-server and the gateway
simulator started here:

- worker: every job of a published campaign through `send_job`, eight at once on one uvloop event loop
  (claims, Redis scripts, POSTs, replies, events, settlements; dramatiq's hand-off is left out);
- producer: `publish_file` of a CSV, its check pass included;
- messages: single messages of the TXN lane, queued beforehand, through the worker's consumer in
  batches of `MESSAGES_A_BATCH` (what a lane reads at a few thousand a second), four at once: the
  hold check, reads, rate-limit booking, marking, POSTs, events, settlements;
- ceiling: the ceiling's client, 1000-node POSTs encoded beforehand (not counted), their replies decoded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import uvloop

from ops.bench.ceiling import encode_chunks, send_all
from ops.bench.publisher import bench_spec, write_recipients
from ops.services import RedisServer, SimulatorProcess
from producer.control import campaign_status
from producer.job_queue import job_broker
from producer.publish import publish_file
from redis_model import keys
from redis_model.connection import sync_client
from redis_model.jobs import job_count
from redis_model.message_intake import MessageIntake
from schemas.campaign import MessageType
from schemas.message import SingleMessage
from schemas.settings import Settings
from worker.context import WorkerContext
from worker.logging import configure_logging
from worker.message_batch import BatchSender
from worker.messages import MessageConsumer
from worker.sending import send_job

PARTS = ("worker", "producer", "messages", "ceiling")
JOBS_AT_ONCE = 8
MESSAGES_A_BATCH = 20
BATCHES_AT_ONCE = 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.bench.instructions", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="which parts to count, comma-separated (the ceiling always)"
    )
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # a measured child process
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        _measure_part(args.part, Path(args.csv), args.recipients)
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed (Debian: apt install valgrind)", file=sys.stderr)
        return 1
    parts = [part for part in PARTS if part in {*args.parts.split(","), "ceiling"}]
    with tempfile.TemporaryDirectory(prefix="campaign-instructions-") as scratch:
        directory = Path(scratch)
        csv = write_recipients(directory / "recipients.csv", args.recipients)
        server = RedisServer(directory)
        server.start()
        api_key = secrets.token_hex(16)
        simulator = SimulatorProcess(api_key)
        env = os.environ | {"REDIS_URL": server.url, "KALEYRA_API_KEY": api_key, "KALEYRA_SID": "HXBENCH",
                            "KALEYRA_BASE_URL": simulator.base_url}  # fmt: skip
        try:
            counts = {part: _count(valgrind, env, directory, part, csv, args.recipients) for part in parts}
        finally:
            simulator.stop()
            server.kill()
    per_message = {part: count / args.recipients for part, count in counts.items()}
    ceiling = per_message["ceiling"]
    for part, count in per_message.items():
        print(
            f"{part:>8}: {count:9,.0f} instructions/msg ({count / ceiling:.2f} x the ceiling's)",
            file=sys.stderr,
        )
    summary = {"recipients": args.recipients, "instructions_per_msg": per_message,
               "ratio_to_ceiling": {part: n / ceiling for part, n in per_message.items()}}  # fmt: skip
    print(msgspec.json.encode(summary).decode())
    return 0


def _count(valgrind: str, env: dict[str, str], directory: Path, part: str, csv: Path, recipients: int) -> int:
    """Run one part under callgrind; the instructions of its measured phase."""
    out = directory / f"{part}.callgrind"
    subprocess.run(
        [valgrind, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, "-m", "ops.bench.instructions", "--part", part, "--csv", str(csv),
         "--recipients", str(recipients)],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    totals = [line for line in out.read_text().splitlines() if line.startswith("totals:")]
    return int(totals[-1].split()[1])


def _measure_part(part: str, csv: Path, recipients: int) -> None:
    settings = Settings.from_environ()
    client = sync_client(settings)
    client.flushall()

    def publish() -> tuple[str, int]:
        spec = bench_spec(settings)
        publish_file(spec, str(csv), client=client, broker=job_broker(client), settings=settings)
        return spec.campaign_id, job_count(client, spec.campaign_id)

    if part == "producer":
        publish()  # warm: imports, connections, caches
        with _counted():
            publish()
    elif part == "worker":
        configure_logging(open(os.devnull, "wb"))  # noqa: SIM115 (the process's life)
        warm, measured = publish(), publish()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # the workers' loop
            runner.run(_send(settings, warm, measured))
        for campaign_id, _ in (warm, measured):
            submitted = campaign_status(client, campaign_id).submitted
            if submitted != recipients:
                raise RuntimeError(f"the worker part sent {submitted} of {recipients}")
    elif part == "messages":
        configure_logging(open(os.devnull, "wb"))  # noqa: SIM115 (the process's life)
        settings = msgspec.structs.replace(settings, message_linger_ms=0)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # the workers' loop
            runner.run(_send_messages(settings, recipients))
        left = client.xlen(keys.message_stream(keys.TXN_LANE))
        if left:
            raise RuntimeError(f"the messages part left {left} of {recipients}")
    else:
        payloads = encode_chunks(settings, bench_spec(settings), [f"+919{i:09d}" for i in range(recipients)])
        send_all(settings, payloads[:2], in_flight=JOBS_AT_ONCE)  # warm
        with _counted():  # the requests were encoded beforehand, as the ceiling's are
            accepted, _ = send_all(settings, payloads, in_flight=JOBS_AT_ONCE)
        if accepted != recipients:
            raise RuntimeError(f"the ceiling part sent {accepted} of {recipients}")


async def _send(settings: Settings, warm: tuple[str, int], measured: tuple[str, int]) -> None:
    context = WorkerContext(settings)

    async def send(campaign_id: str, jobs: int) -> None:
        pending = iter(range(jobs))

        async def lane() -> None:
            for job in pending:  # the lanes share one iterator: each job is sent once
                await send_job(context, campaign_id, job, delivery=f"{campaign_id}:{job}", last_attempt=False)

        await asyncio.gather(*(lane() for _ in range(JOBS_AT_ONCE)))

    try:
        await send(*warm)
        with _counted():
            await send(*measured)
    finally:
        await context.aclose()


def _single_message(i: int) -> SingleMessage:
    """Messages that differ as an event stream's do: their body always, their sender now and then."""
    return SingleMessage(to=f"+91981{i:07d}", body=f"Your order {i} has shipped", sender=f"KLRHX{i % 3}",
                         type=MessageType.TXN)  # fmt: skip


async def _send_messages(settings: Settings, per_run: int) -> None:
    """Queue `per_run` messages and send them all, twice: to warm, then counted."""
    intake = MessageIntake(sync_client(settings))
    context = WorkerContext(settings)
    consumer = MessageConsumer(context)
    sender = BatchSender(context, consumer.lanes)
    await consumer.lanes.ensure_groups()

    async def send(count: int) -> None:
        sent = 0

        async def lane() -> None:
            nonlocal sent
            while sent < count:
                batch = await consumer.next_batch(keys.TXN_LANE, MESSAGES_A_BATCH)
                sent += len(batch)
                await sender.send(batch)

        await asyncio.gather(*(lane() for _ in range(BATCHES_AT_ONCE)))

    def queue() -> None:
        intake.queue_many([(_single_message(i), keys.TXN_LANE) for i in range(per_run)])

    try:
        queue()
        await send(per_run)
        queue()
        with _counted():
            await send(per_run)
    finally:
        await context.aclose()


@contextlib.contextmanager
def _counted() -> Iterator[None]:
    """Callgrind counts inside the block (nothing happens when the process is not under callgrind)."""
    _instrument("on")
    try:
        yield
    finally:
        _instrument("off")


def _instrument(state: str) -> None:
    if control := shutil.which("callgrind_control"):
        subprocess.run([control, "-i", state, str(os.getpid())], capture_output=True, check=False)


if __name__ == "__main__":
    sys.exit(main())
