"""The webhook endpoint the dev stack configures when WEBHOOK_ENDPOINTS is not set: the
inbox's own receiver, with a secret that is public and for local development only."""

from __future__ import annotations

import base64
import json

LOCAL_RECEIVER = "local-receiver"
# Standard Webhooks' form: whsec_ and the base64 of the key (here 40 bytes, none random).
_KEY = b"vult-local-development-only-webhook-key!"
LOCAL_RECEIVER_SECRET = "whsec_" + base64.b64encode(_KEY).decode()


def webhook_endpoints_setting(inbox_url: str) -> str:
    """WEBHOOK_ENDPOINTS naming the inbox's receiver for every event."""
    endpoint = {
        "name": LOCAL_RECEIVER,
        "url": f"{inbox_url}/webhooks/{LOCAL_RECEIVER}",
        "secret": LOCAL_RECEIVER_SECRET,
        "events": ["*"],
    }
    return json.dumps([endpoint])
