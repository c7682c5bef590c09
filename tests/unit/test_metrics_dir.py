"""The metrics directory of a group of processes: named to them, removed at the end, and one abandoned
by a killed (or reloaded) group removed by the next."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from worker.metrics_dir import MULTIPROC_DIR, metrics_directory

PREFIX = "test-group-metrics-"


@pytest.fixture(autouse=True)
def private_temp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv(MULTIPROC_DIR, raising=False)
    monkeypatch.delenv("ALSO_HERE", raising=False)


def left_by(pid: int) -> Path:
    directory = Path(tempfile.mkdtemp(prefix=PREFIX))
    (directory / "owner").write_text(str(pid))
    return directory


def test_the_directory_is_named_to_the_processes_and_removed_at_the_end():
    with metrics_directory(PREFIX, "ALSO_HERE") as directory:
        assert Path(directory).is_dir()
        assert os.environ[MULTIPROC_DIR] == os.environ["ALSO_HERE"] == directory
    assert not Path(directory).exists()


def test_directories_of_dead_or_replaced_makers_are_removed_others_kept():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed, reloaded, running = left_by(dead.pid), left_by(os.getpid()), left_by(os.getppid())
    with metrics_directory(PREFIX):
        assert not killed.exists() and not reloaded.exists()
        assert running.exists()
