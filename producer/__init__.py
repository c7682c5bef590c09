"""Builds, validates and publishes campaigns. Imports the shared core only (`schemas`, `redis_model`).

The public Python API::

    from producer import Campaigns

    campaigns = Campaigns.from_environ()
    sent = campaigns.send_campaign(recipients="customers.csv", sender="KLRHXA", type="MKT",
                                   prefix="+91", body="Hi {name|there}, our sale starts today")
    campaigns.status(sent.campaign_id).state
"""

from producer.api import AsyncCampaigns, Campaigns
from producer.control import CampaignStatus
from producer.publish import PublishResult
from schemas.errors import InputError, RecipientsError, SettingsError, SpecError, UnknownCampaignError

__all__ = [
    "AsyncCampaigns",
    "CampaignStatus",
    "Campaigns",
    "InputError",
    "PublishResult",
    "RecipientsError",
    "SettingsError",
    "SpecError",
    "UnknownCampaignError",
]
