"""The same from asyncio code: `AsyncCampaigns` has `Campaigns`' methods as coroutines.

REDIS_URL=redis://127.0.0.1:6379/0 python examples/async_campaigns.py
"""

import asyncio

from producer import AsyncCampaigns


async def main() -> None:
    async with AsyncCampaigns.from_environ() as campaigns:
        sent = await campaigns.send_campaign(
            recipients=[{"to": "+919876543210"}], sender="KLRHXA", type="TXN", body="Your order shipped"
        )
        await campaigns.pause(sent.campaign_id)
        for status in await campaigns.list_campaigns(limit=3):
            print(status.campaign_id, status.state, status.total)


asyncio.run(main())
