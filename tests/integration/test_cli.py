"""The `campaign` command as users run it: refusals, and the whole path across real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from campaign.cli import main

GOOD = ["--sender", "KLRHXA", "--type", "MKT", "--body", "Hello", "--prefix", "+91"]
SOON = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()


@pytest.fixture
def recipients_csv(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("to\n+919000000001\n09000000002\n")
    return path


def send(argv, monkeypatch, url) -> int:
    monkeypatch.setenv("REDIS_URL", url)
    return main(["send", *argv])


def with_option(name: str, value: str) -> list[str]:
    argv = list(GOOD)
    argv[argv.index(name) + 1] = value
    return argv


@pytest.mark.redis
@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (with_option("--sender", "not a sender!"), "sender 'not a sender!'"),
        (with_option("--type", "PROMO"), "type 'PROMO'"),
        (with_option("--body", ""), "body is empty"),
        (with_option("--body", "x" * 4001), "body has 4001 characters"),
        (with_option("--prefix", "+999"), "prefix '+999'"),
        ([*GOOD, "--unicode", "yes"], "unicode 'yes'"),
        ([*GOOD, "--unicode", "0", "--body", "Привет"], "unicode 0 cannot carry 'П'"),
        ([*GOOD, "--at", "next tuesday"], "at 'next tuesday'"),
        ([*GOOD, "--at", SOON], "less than 15 minutes ahead"),
        (with_option("--type", "OTP"), "OTP sends to exactly one recipient"),
    ],
)
def test_bad_campaign_is_refused_with_one_line_and_nothing_written(
    argv, reason, recipients_csv, real_redis, monkeypatch, capsys
):
    code = send([*argv, "--recipients", str(recipients_csv)], monkeypatch, real_redis.url)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and reason in err and "Traceback" not in err
    assert real_redis.client.keys("*") == []


@pytest.mark.redis
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot read recipients file"),
        (b"name,phone\nasha,+919000000001\n", "has no 'to' column"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00", "looks binary"),
        (b"to\n+91\xff\xfe\n", "is not UTF-8"),
    ],
)
def test_bad_recipients_file_is_refused_with_one_line_and_nothing_written(
    content, reason, tmp_path, real_redis, monkeypatch, capsys
):
    path = tmp_path / "r.csv"
    if content is not None:
        path.write_bytes(content)
    code = send([*GOOD, "--recipients", str(path)], monkeypatch, real_redis.url)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and reason in err and str(path) in err and "Traceback" not in err
    assert real_redis.client.keys("*") == []


def test_unreachable_redis_is_one_line_without_the_password(monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", "redis://:s3cret@127.0.0.1:1/0")  # nothing listens on port 1
    assert main(["status", "some-id"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Redis at redis://:***@127.0.0.1:1/0 " in err and "s3cret" not in err


@pytest.mark.redis
def test_status_of_an_unknown_campaign_is_refused(real_redis, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    assert main(["status", "nope", "--json"]) == 2
    assert "no campaign 'nope'" in capsys.readouterr().err


def test_resend_without_saying_what_is_refused_in_one_line(real_redis, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    assert main(["resend", "nope"]) == 2
    assert main(["resend", "nope", "--unknown"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "campaign: refused: say what to resend: --failed, --unknown (or both), or --undelivered",
        "campaign: refused: no campaign 'nope' in Redis",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_json(argv, env) -> dict:
    done = subprocess.run([sys.executable, "-m", "campaign", *argv], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return msgspec.json.decode(done.stdout.splitlines()[-1])


@pytest.mark.redis
def test_campaign_is_sent_by_real_worker_processes(real_redis, tmp_path):
    """`campaign simulate`, `campaign worker` and `campaign send` as separate processes, on a real Redis."""
    port = free_port()
    env = os.environ | {
        "REDIS_URL": real_redis.url,
        "KALEYRA_API_KEY": "cli-test-key",
        "KALEYRA_SID": "HXCLI",
        "KALEYRA_BASE_URL": f"http://127.0.0.1:{port}",
        "CAMPAIGN_DEFAULT_PREFIX": "+91",
        "CAMPAIGN_RETRY_BACKOFF_MS": "1",
        "CAMPAIGN_JOB_MIN_BACKOFF_MS": "10",
    }
    path = tmp_path / "r.jsonl"
    path.write_text("".join(f'{{"to": "90000{i:05d}"}}\n' for i in range(2500)) + '{"to": "bad"}\n')
    events = open(tmp_path / "worker.jsonl", "wb")  # noqa: SIM115 - closed below
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "campaign",
            "simulate",
            "--port",
            str(port),
            "--e403-rate",
            "0.2",
            "--seed",
            "3",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "campaign", "worker", "--processes", "1", "--threads", "2"],
        env=env,
        stdout=events,
        stderr=subprocess.DEVNULL,
    )
    try:
        published = run_json(
            [
                "send",
                "--recipients",
                str(path),
                "--sender",
                "KLRHXA",
                "--type",
                "TXN",
                "--body",
                "Order shipped",
                "--json",
            ],
            env,
        )
        assert (published["total"], published["invalid"], published["duplicates"]) == (2500, 1, 0)
        deadline = time.monotonic() + 60
        while (status := run_json(["status", published["campaign_id"], "--json"], env))[
            "state"
        ] != "completed":
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
    finally:
        for process in (worker, simulator):
            process.send_signal(signal.SIGTERM)
        for process in (worker, simulator):
            process.wait(timeout=30)
        events.close()
    assert (status["submitted"], status["failed"], status["pending"]) == (2500, 0, 0)
    lines = [msgspec.json.decode(line) for line in (tmp_path / "worker.jsonl").read_bytes().splitlines()]
    submitted = [e for e in lines if e.get("event") == "sms.submitted"]
    assert len({e["message_id"] for e in submitted}) == len(submitted) == 2500
    assert "cli-test-key" not in (tmp_path / "worker.jsonl").read_text()


@pytest.mark.redis
def test_recipients_can_come_from_stdin_and_invalid_lines_are_listed(real_redis):
    env = os.environ | {"REDIS_URL": real_redis.url}
    rows = b"to,name\n+91 90000 00001,a\n9000000002,b\nnot-a-number,c\n+919000000001,d\n"
    done = subprocess.run(
        [sys.executable, "-m", "campaign", "send", "--recipients", "-", "--sender", "KLRHXA", "--type", "MKT",
         "--body", "Hi", "--prefix", "+91", "--json", "--max-invalid", "25%"],
        input=rows, env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    published = msgspec.json.decode(done.stdout.splitlines()[-1])
    assert (published["total"], published["invalid"], published["duplicates"]) == (2, 1, 1)
    assert "skipped line 4: 'not-a-number'" in done.stderr.decode()

    listed = subprocess.run([sys.executable, "-m", "campaign", "invalid", published["campaign_id"]], env=env,
                            capture_output=True, timeout=60)  # fmt: skip
    assert listed.stdout.decode().splitlines() == ["line,value,reason", "4,not-a-number,has letters"]
