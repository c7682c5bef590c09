"""Real processes the benchmark and the chaos tests start on their own: a redis-server with
`ops/redis.conf`, the gateway simulator, `campaign worker`; and what /proc says about them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import redis

REDIS_CONF = Path(__file__).with_name("redis.conf")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except (OSError, redis.ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout}s")
        time.sleep(0.05)


class RedisServer:
    """`redis-server ops/redis.conf` (AOF everysec, noeviction) on its own port and directory, listening on
    127.0.0.1 and `host` (another address of this machine that other network namespaces reach)."""

    def __init__(self, directory: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.directory, self.port, self.host = directory, port or free_port(), host
        self.url = f"redis://{host}:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt install redis-server)")
        # Another address is a private network of a test's own: protected mode would refuse it (no password).
        unprotected = ["--protected-mode", "no"] if self.host != "127.0.0.1" else []
        self.process = subprocess.Popen(
            [binary, str(REDIS_CONF), "--port", str(self.port),
             "--bind", *dict.fromkeys(("127.0.0.1", self.host)), *unprotected, "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        try:
            wait_until(client.ping, 10, "redis-server")
        finally:
            client.close()

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("redis-server has not been started")
        return self.process.pid

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


class SimulatorProcess:
    """`campaign simulate` in a process of its own, so that its CPU is not ours."""

    def __init__(self, api_key: str, latency_ms: float = 0.0) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {"KALEYRA_API_KEY": api_key}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "campaign", "simulate", "--port", str(self.port),
             "--latency-ms", str(latency_ms)],
            env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: self.call("GET", "/_simulator/stats"), 15, "the simulator")

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(self.base_url + path, data=body, method=method)
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


def start_worker(
    env: Mapping[str, str], *, processes: int, threads: int, in_flight: int | None = None, stdout
) -> subprocess.Popen:
    """`campaign worker` in a new process group (its children are dramatiq's worker processes)."""
    return subprocess.Popen(
        [sys.executable, "-m", "campaign", "worker",
         "--processes", str(processes), "--threads", str(threads),
         *(["--in-flight", str(in_flight)] if in_flight else [])],
        env=dict(env), stdout=stdout, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
