"""The account's rate line in Redis: book a request's turn (and look up its opt-outs), cut its pace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import redis.asyncio as aioredis

from redis_model import keys
from redis_model.scripts import joined_numbers, source
from schemas.campaign import Recipient


class Booking(NamedTuple):
    """What `reserve_turn` answered: wait `wait_s`, then send `granted` messages (0: ask again)."""

    wait_s: float
    granted: int
    limited: bool  # a limit or an unrecovered cut paced it: the turn is a slot in time
    listed: list[int]  # 0-based positions of booked numbers on the suppression list (when looked up)
    capped: bool = False  # the account's daily cap is reached: nothing booked; `wait_s` is until the next day


class AccountRate:
    """The scripts on one account's rate hash (`keys.account_rate`); the policy's figures are the caller's."""

    def __init__(self, client: aioredis.Redis, sid: str) -> None:
        self._key = keys.account_rate(sid)
        self._daily = keys.account_daily(sid)
        self._suppression_list = keys.suppression_list(sid)
        self._reserve = client.register_script(source("reserve_turn"))
        self._cut = client.register_script(source("cut_pace"))
        self._give_back = client.register_script(source("give_back_turn"))

    async def reserve(
        self,
        messages: int,
        *,
        urgent: bool,
        max_ahead_s: float,
        max_share: float,
        looking_up: Sequence[Recipient] | None = None,
        counted: bool = True,
    ) -> Booking:
        """Book up to `messages` on the account's line (bulk at most `max_ahead_s` ahead, at most
        `max_share` of a second's budget); with `looking_up`, also find which of those recipients'
        numbers are on the account's suppression list now, in the same round trip. Not `counted`: outside
        the daily cap (a status query is no message)."""
        args = [messages, "1" if urgent else "0", max_ahead_s, max_share, "1" if counted else "0"]
        script_keys = [self._key, self._daily]
        if looking_up is not None:
            script_keys.append(self._suppression_list)
            args.append(joined_numbers(looking_up))
        wait, granted, limited, *listed = await self._reserve(keys=script_keys, args=args)
        listed_at = [position - 1 for position in listed]
        return Booking(float(wait), int(granted), limited != b"0", listed_at, capped=limited == b"2")

    async def give_back(self, messages: int) -> None:
        """Messages booked but not sent (a chunk cut at an opt-out, a turn dropped): no longer counted
        against today's cap."""
        if messages > 0:
            await self._give_back(keys=[self._key, self._daily], args=[messages])

    async def cut_pace(
        self,
        *,
        decrease: float,
        recovery_s: float,
        cooldown_s: float,
        floor: float,
        floor_share: float,
        burst_share: float,
        burst_min_requests: int,
    ) -> float:
        """The gateway pushed back: in a burst, multiply the pace by `decrease` (at most once per
        cooldown, never below the floor); returns the new pace, 0 if nothing was cut."""
        args = [decrease, recovery_s, cooldown_s, floor, floor_share, burst_share, burst_min_requests]
        return float(await self._cut(keys=[self._key], args=args))
