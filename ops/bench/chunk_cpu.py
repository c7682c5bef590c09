"""`python -m ops.bench.chunk_cpu`: process CPU per message of the worker's own work on one chunk.

Encode a 1000-node request, decode the gateway's reply, log one `sms.submitted` event per
message id (to a file, flushed once per chunk), attribute the ids and encode the outcome
record: no network, no Redis. The baseline, measured in the same run, writes the same lines
with msgspec alone, without structlog; compare the ratio, not the microseconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable

import msgspec

from schemas.campaign import CampaignSpec, ChunkOutcome, MessageType, Outcome, Recipient
from schemas.settings import Settings
from worker.attribution import lines_of, message_ids_by_recipient
from worker.gateway.replies import parse_reply
from worker.logging import configure_logging, flush_events, log_submitted, mask_number
from worker.payload import PayloadBuilder

CHUNK = 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.bench.chunk_cpu", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--chunks", type=int, default=200)
    args = parser.parse_args(argv)
    spec = CampaignSpec(
        campaign_id=uuid.uuid4().hex, sender="KLRHXA", type=MessageType.MKT, body="Sale today"
    )
    chunk = [Recipient(f"+919{i:09d}", i + 2) for i in range(CHUNK)]
    batch = str(uuid.uuid4())
    reply = msgspec.json.encode(
        {"sms": [{"message_id": f"{batch}:{i}", "recepient": r.to[1:]} for i, r in enumerate(chunk)]}
    )
    builder = PayloadBuilder(spec, Settings())
    outcome_encoder = msgspec.json.Encoder()
    with tempfile.TemporaryFile() as out:
        configure_logging(out)  # type: ignore[arg-type]

        def worker_chunk() -> None:
            builder.encode(chunk)
            accepted = parse_reply(200, reply)
            log_submitted(
                accepted, lines=lines_of(chunk, accepted), campaign_id=spec.campaign_id, job=0, offset=0
            )
            flush_events()
            ids, _ = message_ids_by_recipient(chunk, accepted)
            outcome_encoder.encode(ChunkOutcome.submitted(CHUNK, ids))

        line_encoder = msgspec.json.Encoder()

        def baseline_chunk() -> None:
            builder.encode(chunk)
            accepted = parse_reply(200, reply)
            context = {"campaign_id": spec.campaign_id, "job": 0, "offset": 0}
            for sms, recipient in zip(accepted, chunk, strict=True):
                event = context | {"message_id": sms.message_id, "recipient": mask_number(sms.number),
                                   "line": recipient.line, "event": "sms.submitted", "level": "info",
                                   "ts": time.time()}  # fmt: skip
                out.write(line_encoder.encode(event) + b"\n")
            out.flush()
            ids, _ = message_ids_by_recipient(chunk, accepted)
            outcome_encoder.encode(ChunkOutcome(outcome=Outcome.SUBMITTED, size=CHUNK, message_ids=ids))

        worker_us, baseline_us = (_us_per_message(run, args.chunks) for run in (worker_chunk, baseline_chunk))
    print(f"worker chunk path: {worker_us:.2f} us/msg; msgspec-only baseline: {baseline_us:.2f} us/msg; "
          f"ratio {worker_us / baseline_us:.2f}")  # fmt: skip
    return 0


def _us_per_message(run: Callable[[], None], chunks: int) -> float:
    for _ in range(5):
        run()
    started = time.process_time()
    for _ in range(chunks):
        run()
    return (time.process_time() - started) / (chunks * CHUNK) * 1e6


if __name__ == "__main__":
    raise SystemExit(main())
