"""The directory a group of processes writes its Prometheus metrics to (prometheus_client's multiprocess
mode): made, and named to the processes, before any of them imports prometheus_client; removed at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's, read by each process as it imports it
_MADE_HERE = "made-by-campaign"  # marks a directory made here: one a reload left behind is removed


@contextmanager
def metrics_directory(prefix: str, *also: str) -> Iterator[str]:
    """A new directory, named in PROMETHEUS_MULTIPROC_DIR (and the variables `also`) for this process and
    those it starts; removed on the way out."""
    _remove_left_behind(os.environ.get(MULTIPROC_DIR, ""))
    directory = tempfile.mkdtemp(prefix=prefix)
    (Path(directory) / _MADE_HERE).touch()
    for name in (MULTIPROC_DIR, *also):
        os.environ[name] = directory
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _remove_left_behind(directory: str) -> None:
    """A process that replaced itself (dramatiq's reload on SIGHUP) did not remove its directory."""
    if directory and (Path(directory) / _MADE_HERE).exists():
        shutil.rmtree(directory, ignore_errors=True)
