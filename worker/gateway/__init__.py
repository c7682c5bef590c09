"""The Kaleyra client: one pooled aiohttp session per process, replies classified by code."""

from worker.gateway.client import KaleyraClient
from worker.gateway.replies import parse_reply

__all__ = ["KaleyraClient", "parse_reply"]
