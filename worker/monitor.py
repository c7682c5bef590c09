"""The worker group's monitor, a process dramatiq forks beside the worker processes (`worker.group`): on the
metrics port, on every interface, `/metrics` for the whole group, `/healthz` (the group's processes are
alive) and `/readyz` (Redis answers)."""

from __future__ import annotations

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
import redis

from redis_model.connection import sync_client
from schemas.settings import Settings
from worker.exposition import CONTENT_TYPE, scrape
from worker.liveness import group_health
from worker.redis_metrics import RedisGauges

REDIS_TIMEOUT_S = 5.0  # a scrape or probe of a Redis that does not answer fails within this
_json = msgspec.json.Encoder()


class _Monitor:
    def __init__(self, settings: Settings, parent: int) -> None:
        self.directory, self.parent = settings.metrics_dir, parent
        self.client = sync_client(
            settings, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self.gauges = RedisGauges(self.client, settings.sid, settings.metrics_census_s)

    def metrics(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE, scrape(self.directory, self.gauges)

    def healthz(self) -> tuple[int, str, bytes]:
        health = group_health(self.directory, self.parent)
        if health.trouble is not None:
            return _error(503, "unhealthy", health.trouble)
        return _answer(200, {"status": "ok", "processes": health.processes})

    def readyz(self) -> tuple[int, str, bytes]:
        try:
            self.client.ping()
        except redis.RedisError as e:
            return _error(503, "unavailable", f"Redis cannot be reached: {e}")
        return _answer(200, {"status": "ready"})


def _answer(status: int, body: object) -> tuple[int, str, bytes]:
    return status, "application/json", _json.encode(body)


def _error(status: int, code: str, message: str) -> tuple[int, str, bytes]:
    return _answer(status, {"error": {"code": code, "message": message}})


def serve() -> int:
    """Serve until dramatiq stops the fork process (SIGTERM, as the group stops)."""
    settings = Settings.from_environ()
    monitor = _Monitor(settings, parent=os.getppid())
    routes = {"/metrics": monitor.metrics, "/healthz": monitor.healthz, "/readyz": monitor.readyz}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path.partition("?")[0])
            status, kind, body = route() if route else _error(404, "not_found", f"no such path: {self.path}")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes and scrapes every few seconds: not worth a log line each

    server = ThreadingHTTPServer(("", settings.metrics_port), Handler)
    server.daemon_threads = True
    server.serve_forever()
    return 0
