"""The Redis data model: the scripts that change campaign state atomically, as `.lua` files.

Producer, worker and CLI load every script through `redis_model.scripts`; each file's header names
its KEYS and ARGV, bound to named locals at its top (dramatiq's `dispatch.lua` does the same).
"""
