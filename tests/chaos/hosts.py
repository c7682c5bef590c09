"""Hosts of their own for the chaos tests: network namespaces joined by veth pairs to a bridge in the
root namespace, each with its own address, whose link a test cuts and restores."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass


def unavailable() -> str | None:
    """Why this machine cannot make hosts (not root, no `ip netns`), or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        return f"`ip netns list` failed: {listed.stderr.strip()}"
    return None


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str
    link: str  # its veth end on the bridge, in the root namespace: down, the host is cut off

    @property
    def within(self) -> list[str]:
        """The command prefix that runs a program on this host."""
        return ["ip", "netns", "exec", self.namespace]

    def cut_off(self) -> None:
        """Its link down: every packet between it and the others is dropped, its processes live on."""
        _ip("link", "set", self.link, "down")

    def restore(self) -> None:
        _ip("link", "set", self.link, "up")

    def pids(self) -> set[int]:
        listed = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True)
        return {int(pid) for pid in listed.stdout.split()}


class Network:
    """A bridge whose address (`gateway`) the services listen on, and `count` hosts on its /24, all
    named after `tag` (the test's pid) so that runs side by side never meet; `close` removes them all."""

    def __init__(self, count: int, tag: int | None = None) -> None:
        tag = os.getpid() if tag is None else tag
        subnet = _free_subnet(tag)
        self.bridge = f"cb{tag}"
        self.gateway = str(subnet.network_address + 1)
        self.hosts = [
            Host(
                namespace=f"chaos-{tag}-{i}", address=str(subnet.network_address + 2 + i), link=f"cv{tag}h{i}"
            )
            for i in range(count)
        ]
        self._prefix = subnet.prefixlen

    def open(self) -> Network:
        _remove_leftovers()
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/{self._prefix}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for host in self.hosts:
                self._join(host)
        except BaseException:
            self.close()
            raise
        return self

    def _join(self, host: Host) -> None:
        peer = host.link.replace("cv", "cp", 1)
        _ip("netns", "add", host.namespace)
        _ip("link", "add", host.link, "type", "veth", "peer", "name", peer, "netns", host.namespace)
        _ip("link", "set", host.link, "master", self.bridge)
        _ip("link", "set", host.link, "up")
        inside = ["-n", host.namespace]
        _ip(*inside, "addr", "add", f"{host.address}/{self._prefix}", "dev", peer)
        _ip(*inside, "link", "set", peer, "up")
        _ip(*inside, "link", "set", "lo", "up")

    def close(self) -> None:
        """Whatever was made, even half: the hosts' processes killed (a namespace outlives its name while
        one runs in it), the namespaces (and so their veth pairs) and the bridge removed."""
        for host in self.hosts:
            for pid in host.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, check=False)
            subprocess.run(["ip", "link", "del", host.link], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)

    def __enter__(self) -> Network:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remove_leftovers() -> None:
    """The namespaces and bridges of earlier runs killed before their clean-up (their pid is gone)."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout or "[]")
    for name in [line.split(" ")[0] for line in names] + [link["ifname"] for link in links]:
        if (made := re.fullmatch(r"chaos-(\d+)-\d+|cb(\d+)", name)) and not _alive(int(made[1] or made[2])):
            command = ["netns", "del", name] if name.startswith("chaos-") else ["link", "del", name]
            subprocess.run(["ip", *command], capture_output=True, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return True


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_subnet(tag: int) -> ipaddress.IPv4Network:
    """A /24 in 10.213.0.0/16 that no address or route of this machine overlaps, starting from the tag's."""
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route"], capture_output=True, text=True).stdout)
    addresses = json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True).stdout)
    taken = [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r["dst"] != "default"]
    taken += [
        ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False)
        for link in addresses
        for a in link.get("addr_info", [])
    ]
    for step in range(256):
        candidate = ipaddress.IPv4Network(f"10.213.{(tag + step) % 256}.0/24")
        if not any(candidate.overlaps(network) for network in taken):
            return candidate
    raise RuntimeError("no free /24 in 10.213.0.0/16 for the chaos hosts")
