"""The module `dramatiq` loads in each worker process: settings, logging, broker, actors.

`campaign worker` runs `dramatiq worker.entrypoint`; nothing here connects until the worker boots.
"""

from __future__ import annotations

import gc

import dramatiq

from schemas.settings import Settings
from worker.broker import build_broker, register_actors
from worker.context import WorkerContext
from worker.liveness import watch_group
from worker.logging import configure_logging

settings = Settings.from_environ()
configure_logging()
broker = build_broker(settings)
if settings.metrics_port and settings.metrics_dir:  # a group with a metrics port (worker.group)
    watch_group(broker, settings.metrics_dir)
dramatiq.set_broker(broker)
register_actors(broker, WorkerContext(settings))
# What is loaded by now lives as long as the process: collected once, then frozen, so that no
# collection looks through it again.
gc.collect()
gc.freeze()
