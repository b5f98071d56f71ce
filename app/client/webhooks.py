"""Receiving Switchboard's webhooks: check the Standard Webhooks signature, then read the event.

    from app.client import verify_webhook, WebhookVerificationError

    event = verify_webhook(secret, request.headers, raw_body)   # raises if not genuine
    if event["type"] == "batch.completed": ...

``secret`` is the endpoint's ``whsec_…`` secret (shown once by ``POST /v1/webhooks/endpoints``
or its rotation); ``raw_body`` the bytes as received. ``webhook-id`` is the same on every retry
of one event: use it to ignore duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from app.webhooks.signing import DEFAULT_TOLERANCE_S, WebhookVerificationError, verify

__all__ = ["WebhookVerificationError", "verify_webhook"]


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> dict[str, Any]:
    """The event in ``body`` once its signature and timestamp check out; raises
    ``WebhookVerificationError`` otherwise (also for a signed body that is not a JSON object)."""
    verify(secret, headers, body, tolerance_s)
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookVerificationError("the signed body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the signed body is not a JSON object")
    return event
