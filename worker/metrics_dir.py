"""The directory a group of processes writes its Prometheus metrics to (prometheus_client's multiprocess
mode): made, and named to the processes, before any of them imports prometheus_client; removed at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's, read by each process as it imports it
_OWNER = "owner"  # the file naming the pid of the process that made the directory


@contextmanager
def metrics_directory(prefix: str, *also: str) -> Iterator[str]:
    """A new directory, named in PROMETHEUS_MULTIPROC_DIR (and the variables `also`) for this process and
    those it starts; removed on the way out."""
    _remove_abandoned(prefix)
    directory = tempfile.mkdtemp(prefix=prefix)
    (Path(directory) / _OWNER).write_text(str(os.getpid()))
    for name in (MULTIPROC_DIR, *also):
        os.environ[name] = directory
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _remove_abandoned(prefix: str) -> None:
    """Directories whose maker was killed (SIGKILL leaves no time to remove one), or replaced itself with a
    new program (dramatiq's reload on SIGHUP: the same pid, this process now)."""
    for directory in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((directory / _OWNER).read_text())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or not running(owner):
            shutil.rmtree(directory, ignore_errors=True)


def running(pid: int) -> bool:
    """Whether the process exists and is no zombie (one its parent has not reaped yet is dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True
