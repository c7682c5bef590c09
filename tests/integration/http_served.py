"""The HTTP service served for tests: a real aiohttp server on a free port in a thread of its own, on
a test's Redis, and a small blocking client that answers status, headers and the decoded JSON."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from campaign.service.app import make_app
from campaign.service.config import MAX_LINE_BYTES, ServiceConfig
from schemas.settings import Settings
from tests.conftest import Backend


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: Any  # the decoded JSON, or the raw bytes when it is not JSON


@dataclass
class Served:
    """A running service: `call` sends one request (with `key` as its bearer token unless told)."""

    host: str
    port: int
    key: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = "",
    ) -> Answer:
        sent = dict(headers or {})
        token = self.key if key == "" else key
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token}")
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        is_json = (response.headers.get("Content-Type") or "").startswith("application/json")
        return Answer(response.status, response.headers, json.loads(raw) if is_json and raw else raw)


@contextmanager
def serving(backend: Backend, settings: Settings, config: ServiceConfig | None = None) -> Iterator[Served]:
    """The service on `backend` until the block ends."""
    app = make_app(
        settings, config or ServiceConfig(), client=backend.client, async_client=backend.async_factory
    )
    with serving_app(app, max_line_size=MAX_LINE_BYTES) as port:
        yield Served("127.0.0.1", port)


@contextmanager
def serving_app(app: web.Application, **runner_options: Any) -> Iterator[int]:
    """Any aiohttp app on a free port of 127.0.0.1, in a thread of its own, until the block ends: its port."""
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event, int]] = Future()

    async def run() -> None:
        runner = web.AppRunner(app, **runner_options)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            stopping = asyncio.Event()
            started.set_result((asyncio.get_running_loop(), stopping, runner.addresses[0][1]))
            await stopping.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    loop, stopping, port = started.result(timeout=10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=10)
