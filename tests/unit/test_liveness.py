"""A worker group's health as its monitor judges it from the heartbeat files."""

from __future__ import annotations

import os
import subprocess
import sys

from worker.liveness import STALE_S, expect, group_health


def beat(directory, pid: int, at: float) -> None:
    path = directory / f"heartbeat_{pid}"
    path.touch()
    os.utime(path, (at, at))


def test_alive_when_every_process_started_beats(tmp_path):
    expect(str(tmp_path), 1)
    beat(tmp_path, os.getpid(), at=1000.0)
    assert group_health(str(tmp_path), os.getppid(), now=1001.0) == (None, [os.getpid()])


def test_a_process_that_has_not_beaten_lately_is_stuck(tmp_path):
    beat(tmp_path, os.getpid(), at=1000.0)
    trouble, _ = group_health(str(tmp_path), os.getppid(), now=1000.0 + STALE_S + 1)
    assert trouble == f"worker process {os.getpid()} has not beaten for {STALE_S + 1:.0f} s"


def test_a_process_that_is_gone_fails_the_group(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    beat(tmp_path, dead.pid, at=1000.0)
    assert (
        group_health(str(tmp_path), os.getppid(), now=1000.0).trouble == f"worker process {dead.pid} is gone"
    )


def test_fewer_processes_than_the_group_started_with(tmp_path):
    expect(str(tmp_path), 2)
    beat(tmp_path, os.getpid(), at=1000.0)
    trouble, _ = group_health(str(tmp_path), os.getppid(), now=1000.0)
    assert trouble == "1 of the group's 2 worker processes are up"


def test_a_parent_that_is_gone_fails_the_group(tmp_path):
    trouble, _ = group_health(str(tmp_path), parent=os.getppid() + 1)
    assert trouble == f"the worker group's parent process {os.getppid() + 1} is gone"
