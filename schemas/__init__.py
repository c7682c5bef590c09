"""Shared shapes: msgspec Structs, enums, the error tree and the Redis key layout.

Imports no other project package; `producer` and `worker` meet only here.
"""
