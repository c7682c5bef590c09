"""A replicated Redis watched by Sentinel, as real processes on free ports: a master and a replica with
`ops/redis.conf` (AOF, `appendfsync everysec`), and sentinels (`redis-server --sentinel`).

`everysec` as in production, not `always`: after a failover what survives is the promoted replica's
copy, not the dead master's disk, so a stricter fsync on the master would save nothing here."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from ops.services import REDIS_CONF, free_port, wait_until

MASTER_NAME = "campaigns"
DOWN_AFTER_MS = 1000  # a master silent this long is subjectively down for a sentinel
FAILOVER_TIMEOUT_MS = 3000


class SentinelGroup:
    """`master`, `replica` and `sentinels` redis-server processes in `directory`; `stop()` kills them all."""

    def __init__(self, directory: Path, *, sentinels: int = 3, quorum: int = 2) -> None:
        self.directory = directory
        self.sentinel_count, self.quorum = sentinels, quorum
        ports: list[int] = []
        while len(ports) < 2 + sentinels:  # distinct: free_port may hand the same port out twice
            if (port := free_port()) not in ports:
                ports.append(port)
        self.master_port, self.replica_port, *self.sentinel_ports = ports
        self.processes: dict[int, subprocess.Popen] = {}

    @property
    def sentinels_setting(self) -> str:
        """The REDIS_SENTINELS of this group."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> None:
        # The first full sync starts at once, not after the 5 s a diskless sync waits for more replicas.
        self._server(self.master_port, "--repl-diskless-sync-delay", "0")
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        replica = redis.Redis(port=self.replica_port)
        wait_until(lambda: replica.info("replication")["master_link_status"] == "up", 10,
                   "the replica's link to its master")  # fmt: skip
        replica.close()
        for port in self.sentinel_ports:
            self._sentinel(port)
        # A failover needs every sentinel to know the replica and the other sentinels (they meet through
        # hello messages on the master, every 2 s).
        wait_until(self._acquainted, 20, "the sentinels' discovery of each other and of the replica")

    def cut_replication(self) -> None:
        """The replica stops receiving the master's writes, as behind a lagging link, while the master goes
        on acknowledging them: what it acknowledges from now on dies with it. (The replica's link is
        dropped and its reconnections refused: it offers the master a password the master does not have.)"""
        replica, master = redis.Redis(port=self.replica_port), redis.Redis(port=self.master_port)
        try:
            replica.config_set("masterauth", "not-the-masters")
            master.client_kill_filter(_type="replica")
        finally:
            replica.close()
            master.close()

    def kill(self, port: int) -> None:
        """kill -9 the server on `port`."""
        process = self.processes[port]
        process.kill()
        process.wait()

    def master_address(self) -> tuple[str, int] | None:
        """The master a majority of the sentinels name, None while they disagree or cannot be asked."""
        named: dict[tuple[str, int], int] = {}
        for port in self.sentinel_ports:
            if self.processes[port].poll() is not None:
                continue
            client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
            try:
                host, master_port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
                named[(host, int(master_port))] = named.get((host, int(master_port)), 0) + 1
            except redis.RedisError:
                pass
            finally:
                client.close()
        return next((address for address, votes in named.items() if votes > self.sentinel_count // 2), None)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    def _server(self, port: int, *arguments: str) -> None:
        directory = self.directory / str(port)
        directory.mkdir()
        # A copy: a sentinel's failover rewrites the configuration file of the servers it reconfigures.
        config = shutil.copy(REDIS_CONF, directory / REDIS_CONF.name)
        self._spawn(port, [str(config), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                           *arguments])  # fmt: skip

    def _sentinel(self, port: int) -> None:
        config = self.directory / f"sentinel-{port}.conf"  # a sentinel rewrites its file: one each
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
        )
        self._spawn(port, [str(config), "--sentinel"])

    def _spawn(self, port: int, arguments: list[str]) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt install redis-server)")
        self.processes[port] = subprocess.Popen([binary, *arguments], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        try:
            wait_until(client.ping, 10, f"redis-server on {port}")
        finally:
            client.close()

    def _acquainted(self) -> bool:
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, decode_responses=True)
            try:
                state = client.sentinel_master(MASTER_NAME)
            finally:
                client.close()
            if state["num-slaves"] < 1 or state["num-other-sentinels"] < self.sentinel_count - 1:
                return False
        return True


def wait_for_failover(group: SentinelGroup, old: tuple[str, int], timeout: float) -> float:
    """Seconds until a majority of the sentinels name a master other than `old`."""
    started = time.monotonic()
    wait_until(lambda: (address := group.master_address()) is not None and address != old, timeout,
               "the sentinels' failover")  # fmt: skip
    return time.monotonic() - started
