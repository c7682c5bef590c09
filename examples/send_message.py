"""Send one message from Python, as an event-driven service does, and read where it stands.

    REDIS_URL=redis://127.0.0.1:6379/0 python examples/send_message.py

A `campaign worker` of this version on the same Redis sends it; without one it stays `queued`.
"""

from producer import Campaigns

with Campaigns.from_environ() as campaigns:
    shipped = dict(to="+91 98123 45678", sender="KLRHXA", type="TXN", body="Your order 42 shipped")
    receipt = campaigns.send_message(**shipped, reference="order-42", idempotency_key="order-42-shipped")
    retried = campaigns.send_message(**shipped, reference="order-42", idempotency_key="order-42-shipped")
    print(f"queued {receipt.id}; the retry got {retried.id} and queued nothing")
    state = campaigns.message(receipt.id)
    print(f"{state.id}: {state.status}, reference {state.reference}")
