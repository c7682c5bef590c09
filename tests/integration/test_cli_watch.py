"""`campaign list`, `status --watch` and `send --wait` against a real Redis, a dramatiq worker and the
gateway simulator: a line per interval off a terminal, the end of the campaign ending the watch, and
the exit codes of a campaign completed, failed or cancelled."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest

from campaign.cli import main
from ops.simulator import RunningSimulator, SimulatorConfig, start_in_thread
from producer import Campaigns
from tests.conftest import API_KEY
from worker.broker import build_broker, register_actors
from worker.context import WorkerContext

pytestmark = pytest.mark.redis
SEND = ["send", "--sender", "KLRHXA", "--type", "MKT", "--body", "Sale", "--prefix", "+91"]
PROGRESS = re.compile(r" (?P<state>[a-z]+) (?P<settled>\d+)/(?P<total>\d+) \(")


@pytest.fixture
def cli(real_redis, monkeypatch):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    monkeypatch.setenv("KALEYRA_SID", "HXTEST0000IN")
    return real_redis


@pytest.fixture
def sending(cli, make_settings) -> Iterator[Callable[..., Campaigns]]:
    """Factory: the simulator (its config's options) and a one-thread worker sending ten recipients a
    request; returns the Python API on the same Redis."""
    started: list[tuple[RunningSimulator, dramatiq.Worker]] = []

    def start(*, worker_settings: dict | None = None, **simulator_options) -> Campaigns:
        simulator = start_in_thread(SimulatorConfig(api_key=API_KEY, **simulator_options))
        settings = make_settings(
            simulator.base_url, chunk_size=10, redis_url=cli.url, **(worker_settings or {})
        )
        broker = build_broker(settings, cli.client)
        register_actors(broker, WorkerContext(settings, cli.async_factory))
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()
        started.append((simulator, worker))
        return Campaigns(cli.client, settings)

    yield start
    for simulator, worker in started:
        worker.stop()
        simulator.stop()


def recipients(tmp_path, count: int) -> str:
    path = tmp_path / "recipients.csv"
    path.write_text("to\n" + "".join(f"98{i:08d}\n" for i in range(count)))
    return str(path)


def publish(campaigns: Campaigns, count: int, **options) -> str:
    rows = [{"to": f"+9197{i:08d}"} for i in range(count)]
    return campaigns.send_campaign(rows, sender="KLRHXA", type="MKT", body="Sale", **options).campaign_id


def paused(cli, make_settings, count: int) -> str:
    """A campaign published and paused before any worker runs."""
    campaigns = Campaigns(cli.client, make_settings("http://127.0.0.1:9"))
    campaign_id = publish(campaigns, count)
    campaigns.pause(campaign_id)
    return campaign_id


def watching(cli, *argv: str) -> subprocess.Popen[str]:
    """`campaign status ... --watch` as a real process whose stdout is a pipe (no terminal)."""
    return subprocess.Popen(
        [sys.executable, "-m", "campaign", "status", *argv, "--watch", "--interval", "0.1"],
        env=os.environ | {"REDIS_URL": cli.url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_list_shows_state_progress_outcomes_and_creation_newest_first(cli, sending, tmp_path, capsys):
    campaigns = sending()
    done = publish(campaigns, 20, name="spring")
    assert main(["status", done, "--watch", "--interval", "0.05"]) == 0
    waiting = publish(campaigns, 3, at=(datetime.now(UTC) + timedelta(hours=2)).isoformat())
    capsys.readouterr()

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert [line.split()[0] for line in lines] == [waiting, done]
    assert re.search(
        r" MKT +scheduled +0/3 \(0%\) settled: 0 submitted, 0 failed, 0 unknown, 0 cancelled, 3 pending$",
        lines[0],
    )
    settled = "settled: 20 submitted, 0 failed, 0 unknown, 0 cancelled, 0 pending 'spring'"
    assert re.search(rf" MKT +completed +20/20 \(100%\) {settled}$", lines[1])
    assert re.match(rf"{done}  \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 ", lines[1])
    assert main(["list", "--state", "scheduled", "--json"]) == 0
    assert [s["campaign_id"] for s in json.loads(capsys.readouterr().out)] == [waiting]


def test_status_watch_off_a_terminal_prints_a_line_per_reading_and_ends_with_the_campaign(
    cli, sending, make_settings
):
    campaign_id = paused(cli, make_settings, 100)
    campaigns = sending(latency_ms=20)
    process = watching(cli, campaign_id)
    assert process.stdout is not None
    first = process.stdout.readline()  # read while paused: the watch is under way

    campaigns.resume(campaign_id)
    rest, errors = process.communicate(timeout=60)

    lines = [first, *rest.splitlines()]
    readings = [PROGRESS.search(line) for line in lines]
    assert process.returncode == 0 and errors == "" and all(readings), lines
    settled = [int(r["settled"]) for r in readings if r]
    assert readings[0] and readings[0]["state"] == "paused" and settled[0] < 100
    assert settled == sorted(settled) and settled[-1] == 100
    assert readings[-1] and readings[-1]["state"] == "completed"
    assert "submitted 100, failed 0, unknown 0" in lines[-1] and "ETA done" in lines[-1]
    assert all(line.startswith("20") and campaign_id in line for line in lines)


def test_status_watch_json_prints_a_status_object_a_line(cli, sending, capsys):
    campaigns = sending()
    campaign_id = publish(campaigns, 10)

    assert main(["status", campaign_id, "--watch", "--json", "--interval", "0.05"]) == 0

    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert objects[-1]["state"] == "completed" and objects[-1]["submitted"] == 10
    assert all(o["campaign_id"] == campaign_id for o in objects)


def test_ctrl_c_stops_watching_with_130_and_no_traceback(cli, sending, make_settings):
    campaign_id = paused(cli, make_settings, 5)  # never ends by itself
    sending()
    process = watching(cli, campaign_id)
    assert process.stdout is not None and " paused 0/5 " in process.stdout.readline()

    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=30)

    assert process.returncode == 130
    assert "Traceback" not in errors


def test_send_wait_exits_0_once_the_campaign_completes(cli, sending, tmp_path, capsys):
    sending()

    code = main([*SEND, "--recipients", recipients(tmp_path, 30), "--wait"])

    out, err = capsys.readouterr()
    assert code == 0
    campaign_id = out.splitlines()[0]
    last = err.strip().splitlines()[-1]
    assert f"{campaign_id} completed 30/30 (100%)" in last


def test_send_wait_json_prints_the_final_status(cli, sending, tmp_path, capsys):
    sending()

    code = main([*SEND, "--recipients", recipients(tmp_path, 30), "--wait", "--json"])

    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert (final["state"], final["total"], final["submitted"], final["pending"]) == ("completed", 30, 30, 0)
    assert {"invalid", "duplicates"} <= set(final)


def test_send_wait_exits_1_when_every_recipient_failed(cli, sending, tmp_path, capsys):
    """The gateway answers E403 to every request: the retries run out and the recipients fail."""
    sending(e403_rate=1.0, worker_settings={"retry_attempts": 2, "job_max_retries": 1})

    code = main([*SEND, "--recipients", recipients(tmp_path, 20), "--wait", "--json"])

    out, err = capsys.readouterr()
    final = json.loads(out.strip().splitlines()[-1])
    assert code == 1
    assert (final["state"], final["failed"], final["failures"]) == ("failed", 20, {"E403": 20})
    assert "failures E403 x20" in err.strip().splitlines()[-1]


def test_send_wait_exits_1_when_the_campaign_is_cancelled(cli, sending, tmp_path):
    campaigns = sending(latency_ms=100)  # 20 requests of 100 ms: cancelled long before its end
    process = subprocess.Popen(
        [sys.executable, "-m", "campaign", *SEND, "--recipients", recipients(tmp_path, 200), "--wait"],
        env=os.environ | {"REDIS_URL": cli.url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    campaign_id = process.stdout.readline().strip()  # printed before it waits

    campaigns.cancel(campaign_id)
    _, errors = process.communicate(timeout=60)

    assert process.returncode == 1
    assert f"{campaign_id} cancelled " in errors.strip().splitlines()[-1]
    assert campaigns.status(campaign_id).state == "cancelled"


def test_send_wait_with_dry_run_is_refused_in_one_line(cli, tmp_path, capsys):
    code = main([*SEND, "--recipients", recipients(tmp_path, 3), "--wait", "--dry-run"])

    assert code == 2
    assert (
        capsys.readouterr().err
        == "campaign: refused: --wait with --dry-run: nothing is published to wait for\n"
    )
