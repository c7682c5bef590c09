"""What `campaign` prints: a reader that goes away, REDIS_URL refused or shown without its password,
duplicate rows in the report, counts in words, the hint of a scheduled campaign."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from campaign.cli import main
from redis_model import keys

GOOD = ["--sender", "KLRHXA", "--type", "MKT", "--body", "Hello", "--prefix", "+91"]
CAMPAIGN = Path(sys.executable).with_name("campaign")  # the console script users run


@pytest.fixture
def cli(real_redis, monkeypatch):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    return real_redis


def publish(tmp_path, capsys, rows: list[str], *options: str) -> str:
    """`campaign send` of a CSV with a `to` column holding `rows` (line 2 on); returns the campaign id."""
    path = tmp_path / "r.csv"
    path.write_text("to\n" + "".join(f"{row}\n" for row in rows))
    assert main(["send", "--json", "--recipients", str(path), *GOOD, *options]) == 0
    return msgspec.json.decode(capsys.readouterr().out.splitlines()[-1])["campaign_id"]


def first_line_then_close(argv: list[str], url: str) -> subprocess.CompletedProcess[bytes]:
    """Run the real console script as `campaign ARGV | head -1` would: read a line, close the pipe."""
    env = os.environ | {"REDIS_URL": url}
    with subprocess.Popen([CAMPAIGN, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run:
        assert run.stdout is not None and run.stderr is not None
        first = run.stdout.readline()
        run.stdout.close()
        err = run.stderr.read()
        code = run.wait(timeout=60)
    return subprocess.CompletedProcess(argv, code, first, err)


@pytest.mark.redis
def test_a_report_piped_into_a_reader_that_stops_early_ends_quietly(cli, tmp_path, capsys, monkeypatch):
    """Far more than a pipe holds, so the report is still writing when its reader goes."""
    monkeypatch.setenv("CAMPAIGN_JOB_SIZE", "100000")
    campaign_id = publish(tmp_path, capsys, [f"90000{i:05d}" for i in range(20_000)])

    done = first_line_then_close(["report", campaign_id, "--csv"], cli.url)

    assert done.stdout == b"line,number,outcome,code,message_id,delivery,status_trace,reported_at\n"
    assert b"Traceback" not in done.stderr and done.stderr == b""
    assert done.returncode == 141  # as a shell shows a command killed by SIGPIPE


@pytest.mark.redis
def test_a_suppression_export_piped_into_a_reader_that_stops_early_ends_quietly(cli, tmp_path):
    path = tmp_path / "optouts.csv"
    path.write_text("to\n" + "".join(f"+9190000{i:05d}\n" for i in range(20_000)))
    assert main(["suppress", "import", str(path)]) == 0

    done = first_line_then_close(["suppress", "export"], cli.url)

    assert done.stdout == b"to\n" and done.stderr == b"" and done.returncode == 141


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis://127.0.0.1:notaport/0", "is not a Redis URL: Port could not be cast to integer value"),
        ("redis://127.0.0.1:70000/0", "is not a Redis URL: Port out of range"),
        ("http://127.0.0.1:6379/0", "must start with redis://, rediss:// or unix://"),
        ("redis://127.0.0.1:6379/zero", "the database 'zero' is not a number"),
        ("redis://[::1/0", "is not a Redis URL: Invalid IPv6 URL"),
        ("redis://127.0.0.1:6379/0?foo=bar", "redis-py cannot use it: unknown option 'foo'"),
        ("rediss://127.0.0.1:6379/0?ssl_cert_reqs=bogus", "redis-py cannot use it: Invalid SSL Certificate"),
    ],
)
def test_a_redis_url_that_cannot_be_read_is_refused_in_one_line_naming_it(url, reason, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", url)
    assert main(["status", "some-id"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"campaign: refused: REDIS_URL={url!r}") and reason in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret@127.0.0.1:1/0",  # nothing listens on port 1
        "redis://default:s3cret@127.0.0.1:1/0",
        "redis://127.0.0.1:1/0?password=s3cret",
        "redis://:s3cret@127.0.0.1:notaport/0",
        "redis://:s3c/ret@127.0.0.1:1/0",  # an unescaped / that redis-py reads as the port
        "http://:s3cret@127.0.0.1:1/0?password=s3cret",
    ],
)
def test_a_redis_password_is_never_printed(url, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", url)
    assert main(["status", "some-id"]) in (1, 2)
    err = capsys.readouterr().err
    assert "s3c" not in err and "***" in err and err.count("\n") == 1


@pytest.mark.redis
def test_the_report_lists_duplicate_rows_with_the_line_they_repeat(cli, tmp_path, capsys, monkeypatch):
    """Across pages (of two rows here) and within one, and of a row suppressed."""
    monkeypatch.setenv("CAMPAIGN_CHUNK_SIZE", "1")
    monkeypatch.setenv("CAMPAIGN_JOB_SIZE", "2")
    assert main(["suppress", "add", "+919000000003"]) == 0
    rows = ["9000000001", "9000000002", "9000000003", "+919000000001", "9000000003", "9000000004",
            "9000000004", "09000000002"]  # fmt: skip
    campaign_id = publish(tmp_path, capsys, rows)

    assert main(["report", campaign_id]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "line,number,outcome,code,message_id,delivery,status_trace,reported_at",
        "2,+91******0001,pending,,,,,",
        "3,+91******0002,pending,,,,,",
        "7,+91******0004,pending,,,,,",
        "4,+91******0003,suppressed,,,,,",
        "5,+91******0001,duplicate,line 2,,,,",
        "6,+91******0003,duplicate,line 4,,,,",
        "8,+91******0004,duplicate,line 7,,,,",
        "9,+91******0002,duplicate,line 3,,,,",
    ]


@pytest.mark.redis
def test_a_duplicate_in_the_same_page_as_the_row_it_repeats_is_listed(cli, tmp_path, capsys):
    campaign_id = publish(tmp_path, capsys, ["9000000001", "9000000002", "9000000001"])

    assert main(["report", campaign_id, "--full-numbers"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "4,+919000000001,duplicate,line 2,,,,"


@pytest.mark.redis
def test_a_campaign_published_before_duplicates_were_recorded_still_reports(cli, tmp_path, capsys):
    campaign_id = publish(tmp_path, capsys, ["9000000001", "9000000001"])
    cli.client.delete(keys.duplicates(campaign_id))

    assert main(["report", campaign_id, "--full-numbers"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "line,number,outcome,code,message_id,delivery,status_trace,reported_at",
        "2,+919000000001,pending,,,,,",
    ]


@pytest.mark.redis
def test_a_dry_run_records_no_duplicates(cli, tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("to\n9000000001\n9000000001\n")
    assert main(["send", "--dry-run", "--recipients", str(path), *GOOD]) == 0
    assert (
        capsys.readouterr().out.splitlines()[0]
        == "1 recipient (0 invalid, 1 duplicate, 0 suppressed); nothing was published"
    )
    assert cli.client.keys("*") == []


@pytest.mark.redis
def test_counts_of_one_are_singular(cli, tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("to\n9000000001\n")
    assert main(["send", "--recipients", str(path), *GOOD]) == 0
    summary = capsys.readouterr().err.splitlines()[-1]
    assert summary == "1 recipient in 1 job (0 invalid, 0 duplicates, 0 suppressed), 1 segment, queued"


@pytest.mark.redis
def test_only_a_scheduled_campaign_still_waiting_says_it_can_be_cancelled(cli, tmp_path, capsys):
    at = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
    campaign_id = publish(tmp_path, capsys, ["9000000001"], "--at", at)
    assert main(["status", campaign_id]) == 0
    assert "(cancel before then)" in capsys.readouterr().out

    assert main(["cancel", campaign_id]) == 0
    assert main(["status", campaign_id]) == 0
    out = capsys.readouterr().out
    assert f"scheduled for {at}\n" in out and "cancel before then" not in out and "goes to Kaleyra" not in out
    assert "the pending ones are counted cancelled as workers next look at their jobs" in out


def test_a_dry_run_of_a_list_with_nothing_to_send_is_refused_as_the_send_would_be(
    cli, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("KALEYRA_SID", "HXDRY")
    path = tmp_path / "r.csv"
    path.write_text("to\n+919000000001\n+919000000001\n")
    cli.client.sadd(keys.suppression_list("HXDRY"), "+919000000001")  # every row suppressed or a duplicate
    cli.client.set(keys.suppression_format("HXDRY"), "2")
    common = ["--recipients", str(path), "--sender", "KLRHXA", "--type", "MKT", "--body", "Hi"]

    assert main(["send", *common, "--dry-run"]) == 2
    dry = capsys.readouterr().err
    assert main(["send", *common]) == 2
    assert capsys.readouterr().err == dry and "no valid recipients" in dry
