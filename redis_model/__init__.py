"""The Redis data model: every key (`keys`), the scripts that change campaign state atomically
(`scripts`, from `.lua` files) and the doorbell that wakes idle workers (`doorbell`).

Producer, worker and CLI load every script through `redis_model.scripts`; each file's header names
its KEYS and ARGV, bound to named locals at its top (dramatiq's `dispatch.lua` does the same).
"""
