"""`campaign estimate`, `send --dry-run`, `suppress` and `report` as users run them, on a real Redis."""

from __future__ import annotations

import msgspec
import pytest

from campaign.cli import main
from tests.integration.test_campaign_flow import wait_completed

GOOD = ["--sender", "KLRHXA", "--type", "MKT", "--prefix", "+91"]


@pytest.fixture
def cli(real_redis, monkeypatch):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    monkeypatch.setenv("KALEYRA_SID", "HXCLI")
    return real_redis


def test_estimate_reports_recipients_encodings_segments_and_cost_and_publishes_nothing(cli, tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("to,name\n9000000001,Asha\n9000000002,Зоя\n9000000002,Зоя\nnope,x\n")

    # 1 row in 4 invalid: at the share allowed, not past it
    options = ["--body", "Hi {name}", "--price-per-segment", "0.2", "--max-invalid", "25%"]
    code = main(["estimate", "--recipients", str(path), *GOOD, *options])

    out, err = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        "2 recipients (1 invalid, 1 duplicate, 0 suppressed); nothing was published",
        "encodings: 1 GSM-7, 1 UCS-2; 2 segments",
        "cost: 0.4 (2 segments x 0.2)",
    ]
    assert "skipped line 5: 'nope'" in err
    assert cli.client.keys("*") == []


def test_send_dry_run_json_has_the_counts_and_the_cost(cli, tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("to\n9000000001\n9000000002\n")

    code = main(["send", "--dry-run", "--json", "--recipients", str(path), *GOOD, "--body", "x" * 200,
                 "--price-per-segment", "0.05"])  # fmt: skip

    shown = msgspec.json.decode(capsys.readouterr().out.splitlines()[-1])
    assert code == 0
    assert (shown["total"], shown["segments"], shown["cost"], shown["state"]) == (2, 4, "0.20", "estimate")
    assert "campaign_id" not in shown
    assert cli.client.keys("*") == []


def test_a_personalised_row_missing_its_value_is_refused_in_one_line(cli, tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    path.write_text('{"to": "9000000001", "name": "Asha"}\n{"to": "9000000002"}\n')

    code = main(["send", "--recipients", str(path), *GOOD, "--body", "Hi {name}"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        "campaign: refused: recipients line 2: no value for {name} in the body; "
        "fill it in or give a default, e.g. {name|there}"
    ]
    assert cli.client.keys("campaign:*") == []


def test_suppress_add_import_count_export_and_remove(cli, tmp_path, capsys):
    path = tmp_path / "optout.csv"
    path.write_text("to\n+919000000003\n09000000004\nbad\n")

    assert main(["suppress", "add", "9000000001", "+91 90000 00002", "--prefix", "+91"]) == 0
    assert main(["suppress", "import", str(path), "--prefix", "+91", "--max-invalid", "0.34"]) == 0
    assert main(["suppress", "remove", "+919000000002"]) == 0
    assert main(["suppress", "add", "12345", "--prefix", "+91"]) == 2  # refused whole
    assert main(["suppress", "count"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "account HXCLI: 2 added, 2 suppressed",
        "account HXCLI: 2 added from 2 numbers (1 invalid row skipped), 4 suppressed",
        "account HXCLI: 1 removed, 3 suppressed",
        "3",
    ]
    assert "skipped line 4: 'bad'" in err and "refused: number '12345'" in err

    assert main(["suppress", "export"]) == 0
    exported = capsys.readouterr().out.splitlines()
    assert exported[0] == "to" and sorted(exported[1:]) == ["+919000000001", "+919000000003", "+919000000004"]


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_report_streams_a_csv_row_per_recipient(backend, simulator, start_worker, make_settings, tmp_path,
                                                  monkeypatch, capsys):  # fmt: skip
    settings = make_settings(simulator.base_url, sid="HXCLI")
    start_worker(settings)
    monkeypatch.setenv("REDIS_URL", backend.url)
    monkeypatch.setenv("KALEYRA_SID", "HXCLI")
    monkeypatch.setenv("KALEYRA_API_KEY", settings.api_key)
    monkeypatch.setenv("KALEYRA_BASE_URL", simulator.base_url)
    assert main(["suppress", "add", "+919000000002"]) == 0
    path = tmp_path / "r.csv"
    path.write_text("to\n9000000001\n9000000002\nx1\n")
    options = ["--body", "Hello", "--max-invalid", "50%"]  # 1 row in 3 invalid
    assert main(["send", "--json", "--recipients", str(path), *GOOD, *options]) == 0
    campaign_id = msgspec.json.decode(capsys.readouterr().out.splitlines()[-1])["campaign_id"]
    wait_completed(backend, campaign_id)

    assert main(["report", campaign_id, "--csv"]) == 0
    [message] = simulator.record.messages
    assert capsys.readouterr().out.splitlines() == [
        "line,number,outcome,code,message_id,delivery,status_trace,reported_at",
        f"2,+91******0001,submitted,,{message.message_id},,,",
        "4,**,invalid,has letters,,,,",
        "3,+91******0002,suppressed,,,,,",
    ]
    assert main(["report", campaign_id, "--full-numbers"]) == 0
    assert f"2,+919000000001,submitted,,{message.message_id},,," in capsys.readouterr().out
