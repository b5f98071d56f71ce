"""Standard Webhooks signatures (https://www.standardwebhooks.com), for senders and receivers.

A message is signed as ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the
bytes of the endpoint's secret, which users see as ``whsec_<base64 of those bytes>``. The
``webhook-signature`` header may carry several space-separated signatures (during a secret
rotation); one match is enough. The timestamp bounds replays to ``tolerance_s``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix, not a secret
SECRET_BYTES = 24
DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(ValueError):
    """The message is not from the holder of the secret, or is too old or too new."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_hint(secret: str) -> str:
    """How a secret is shown after it was handed out: never more than its last four."""
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise WebhookVerificationError("the secret is not whsec_<base64>") from None


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    now: float | None = None,
) -> None:
    """Raise ``WebhookVerificationError`` unless ``body`` was signed with ``secret`` recently.

    ``headers`` may be any mapping (names are matched case-insensitively), e.g. a framework's
    request headers; ``body`` must be the raw bytes received, not re-serialized JSON.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    header = lowered.get("webhook-signature")
    if not msg_id or not stamp or not header:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).partition(",")[2]
    for candidate in header.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise WebhookVerificationError("no matching signature")
