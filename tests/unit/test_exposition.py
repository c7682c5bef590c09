"""A group's scrape counts a live gauge only for processes running: one killed -9 drops out."""

from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

from worker.exposition import scrape

PROCESS = """
from prometheus_client import Gauge
Gauge("test_processes", "processes running", multiprocess_mode="livesum").set(1)
Gauge("test_last", "the last value", multiprocess_mode="max").set(7)
print("up", flush=True)
import time; time.sleep(60)
"""


def processes_counted(directory: str) -> dict[str, float]:
    text = scrape(directory).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_killed_process_leaves_the_live_gauges_and_its_other_metrics_stay(tmp_path):
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    started = [
        subprocess.Popen([sys.executable, "-c", PROCESS], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for process in started:
            assert process.stdout is not None and process.stdout.readline() == "up\n"
        assert processes_counted(str(tmp_path))["test_processes"] == 2

        started[0].kill()
        started[0].wait()

        counted = processes_counted(str(tmp_path))
        assert counted["test_processes"] == 1
        assert counted["test_last"] == 7  # not a live gauge: what the dead process wrote is kept
        assert not list(tmp_path.glob(f"gauge_livesum_{started[0].pid}.db"))
    finally:
        for process in started:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
