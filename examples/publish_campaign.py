"""Publish a small personalised campaign from Python and print its status.

    REDIS_URL=redis://127.0.0.1:6379/0 python examples/publish_campaign.py

A `campaign worker` on the same Redis sends it; without one it waits, `queued`.
"""

from producer import Campaigns

customers = [
    {"to": "9876543210", "name": "Asha"},
    {"to": "+91 98765 43211", "name": "Ravi"},
    {"to": "09876543212"},  # no name: the body's default fills in
]

with Campaigns.from_environ() as campaigns:
    sent = campaigns.send_campaign(
        recipients=customers,
        sender="KLRHXA",
        type="MKT",
        prefix="+91",
        body="Hi {name|there}, our sale starts today",
        name="example",
    )
    print(f"published {sent.campaign_id}: {sent.total} recipients, {sent.invalid} invalid")
    status = campaigns.status(sent.campaign_id)
    print(f"state {status.state}, pending {status.pending}")
