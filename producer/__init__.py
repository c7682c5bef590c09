"""Builds, validates and publishes campaigns. Imports the shared core only (`schemas`, `redis_model`).

The public Python API::

    from producer import Campaigns

    campaigns = Campaigns.from_environ()
    sent = campaigns.send_campaign(recipients="customers.csv", sender="KLRHXA", type="MKT",
                                   prefix="+91", body="Hi {name|there}, our sale starts today")
    campaigns.status(sent.campaign_id).state

    receipt = campaigns.send_message(to="+919812345678", sender="KLRHXA", type="TXN",
                                     body="Your order shipped", idempotency_key="order-42-shipped")
    campaigns.message(receipt.id).status
"""

from producer.api import AsyncCampaigns, Campaigns
from producer.control import CampaignStatus
from producer.publish import PublishResult
from schemas.callback import verify_signature
from schemas.errors import (
    IdempotencyConflict,
    InputError,
    RecipientsError,
    SettingsError,
    SpecError,
    UnknownCampaignError,
    UnknownMessageError,
)
from schemas.message import MessageReceipt, MessageState, MessageStatus

__all__ = [
    "AsyncCampaigns",
    "CampaignStatus",
    "Campaigns",
    "IdempotencyConflict",
    "InputError",
    "MessageReceipt",
    "MessageState",
    "MessageStatus",
    "PublishResult",
    "RecipientsError",
    "SettingsError",
    "SpecError",
    "UnknownCampaignError",
    "UnknownMessageError",
    "verify_signature",
]
