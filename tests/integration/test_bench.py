"""`make bench` keeps working: a small run measures both sides and sends every recipient."""

from __future__ import annotations

import shutil
import subprocess
import sys

import msgspec
import pytest

from ops.bench.__main__ import Fleet, Run, _print_table

pytestmark = pytest.mark.redis


def test_the_benchmark_measures_ceiling_and_pipeline_and_prints_a_summary():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")  # CI fails in the chaos fixture instead
    done = subprocess.run(
        [sys.executable, "-m", "ops.bench", "--recipients", "3000", "--latencies", "0", "--threads", "3",
         "--in-flight", "2"],
        capture_output=True, timeout=180, check=True,
    )  # fmt: skip
    summary = msgspec.json.decode(done.stdout.splitlines()[-1])
    (run,) = summary["runs"]

    assert (summary["recipients"], run["submitted"]) == (3000, 3000)
    before, after = run["ceiling_before_msgs_per_s"], run["ceiling_after_msgs_per_s"]
    assert before > 0 and after > 0 and run["pipeline_msgs_per_s"] > 0
    assert run["ceiling_msgs_per_s"] == pytest.approx((before + after) / 2)
    assert run["ratio"] == pytest.approx(run["pipeline_msgs_per_s"] / run["ceiling_msgs_per_s"])
    assert (
        run["worker_cpu_us_per_msg"] > 0
        and run["redis_cpu_us_per_msg"] > 0
        and run["producer_peak_rss_mb"] > 0
    )
    # The simulator's CPU as a share of its one core (read from /proc in 10 ms ticks: a run this
    # small may show none).
    shares = run["simulator_core_share_ceiling"], run["simulator_core_share_pipeline"]
    assert all(0 <= share < 2 for share in shares)
    assert "pipeline msg/s" in done.stderr.decode()  # the table
    # 3000 recipients go out before 100 OTP campaigns are published: the table says so.
    assert run["otp_under_load"] is False and "p99 is of idle workers" in done.stderr.decode()


def test_the_chunk_cpu_benchmark_reports_the_worker_path_against_its_baseline():
    done = subprocess.run(
        [sys.executable, "-m", "ops.bench.chunk_cpu", "--chunks", "2"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    line = done.stdout.decode().strip()
    worker, baseline, ratio = (
        float(part.split()[-2 if "us/msg" in part else -1]) for part in line.split(";")
    )
    assert worker > 0 and baseline > 0
    assert ratio == pytest.approx(worker / baseline, abs=0.02)  # all three printed rounded


def test_the_instruction_count_benchmark_counts_each_part_against_the_ceiling():
    if shutil.which("redis-server") is None or shutil.which("valgrind") is None:
        pytest.skip("needs redis-server and valgrind")
    done = subprocess.run(
        [sys.executable, "-m", "ops.bench.instructions", "--recipients", "2000"],
        capture_output=True, timeout=300, check=True,
    )  # fmt: skip
    summary = msgspec.json.decode(done.stdout.splitlines()[-1])
    counts, ratios = summary["instructions_per_msg"], summary["ratio_to_ceiling"]

    assert set(counts) == {"worker", "producer", "messages", "ceiling"} and ratios["ceiling"] == 1.0
    # The worker makes the ceiling's requests and reads its replies, and does all the rest besides;
    # single messages, a request for twenty, cost more a message than a campaign's thousand.
    assert counts["messages"] > counts["worker"] > counts["ceiling"] > 0 and counts["producer"] > 0
    assert ratios["worker"] == pytest.approx(counts["worker"] / counts["ceiling"])


def _run(latency_ms: float, ceiling: float) -> Run:
    return Run(
        latency_ms=latency_ms, ceiling_msgs_per_s=ceiling, ceiling_before_msgs_per_s=ceiling,
        ceiling_after_msgs_per_s=ceiling, pipeline_msgs_per_s=ceiling / 2, ratio=0.5,
        sending_msgs_per_s=ceiling / 2, worker_cpu_us_per_msg=5.0, redis_cpu_us_per_msg=1.0,
        worker_peak_rss_mb=60, producer_rows_per_s=500_000, producer_peak_rss_mb=100, submitted=1000,
        otp_p99_ms=100, otp_under_load=True, simulator_core_share_ceiling=0.6,
        simulator_core_share_pipeline=0.5,
    )  # fmt: skip


def test_the_table_says_when_a_ceiling_is_far_below_what_its_latency_allows(capsys):
    # 16 requests of 1000 in flight at 50 ms allow 320,000 msg/s.
    _print_table([_run(0, 500_000), _run(50, 300_000), _run(100, 110_000)], 200_000, Fleet(2, 10, 8))
    table = capsys.readouterr().err

    assert "the ceiling at 100 ms is 69% of the 160,000 msg/s" in table
    assert "the ceiling at 50 ms" not in table and "the ceiling at 0 ms" not in table
    # 3 requests of 1000 in all: at most 3 in flight, 60,000 msg/s at 50 ms.
    _print_table([_run(50, 50_000)], 3000, Fleet(2, 10, 8))
    assert "the ceiling at 50 ms" not in capsys.readouterr().err


def test_the_delivery_report_benchmark_prints_its_figures_and_the_campaign_counts_every_final_report():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "ops.bench.reports", "--messages", "2000", "--connections", "4"],
        capture_output=True, timeout=180, check=True,
    )  # fmt: skip
    summary = msgspec.json.decode(done.stdout.splitlines()[-1])

    assert [phase["name"] for phase in summary["phases"]] == [
        "sent, POST JSON", "final, POST JSON", "final, GET query"
    ]  # fmt: skip
    assert summary["reports"] == sum(phase["reports"] for phase in summary["phases"]) > 2000
    assert summary["nodes_per_request"] == 1000.0
    for phase in summary["phases"]:
        assert phase["reports_per_s"] > 0 and phase["script_calls_per_report"] > 0
        assert set(phase["cpu_us_per_report"]) == {"service", "redis", "load generator"}
    # 97% of the messages got a final report (some twice): the campaign counts each once.
    assert summary["counts_match"] and sum(summary["counts"].values()) == 1940
    assert "keys_bytes_per_message" in summary and "counts match" in done.stderr.decode()
