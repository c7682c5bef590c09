"""Receive the callbacks of your campaigns and messages: check each one's signature, drop one seen
before (a callback may come twice), and print its events.

    CAMPAIGN_CALLBACK_SECRET=... python examples/callback_receiver.py 8090

then send with `callback_url="http://127.0.0.1:8090/callbacks"`. The workers sign with the same
CAMPAIGN_CALLBACK_SECRET. A real receiver keeps the ids it has seen somewhere lasting, for a day.
"""

import json
import os
import sys

from aiohttp import web

from producer import verify_signature

SECRET = os.environ["CAMPAIGN_CALLBACK_SECRET"]
seen: set[str] = set()


async def callbacks(request: web.Request) -> web.Response:
    body = await request.read()  # the bytes as sent: the signature is over them
    if not verify_signature(SECRET, request.headers.get("X-Campaign-Signature", ""), body):
        return web.json_response({"error": "bad signature"}, status=401)
    callback = json.loads(body)
    if callback["id"] not in seen:  # told again after a lost answer: already handled (the id is signed)
        seen.add(callback["id"])
        for event in callback["events"]:
            print(json.dumps(event, sort_keys=True), flush=True)
    return web.Response(status=204)


app = web.Application()
app.router.add_post("/callbacks", callbacks)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
