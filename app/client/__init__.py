"""Switchboard's Python client: ``from app.client import Switchboard, SwitchboardAPIError``;
``verify_webhook`` checks and reads the webhooks Switchboard sends."""

from app.client.http import SwitchboardAPIError
from app.client.sync import JobFailed, Switchboard
from app.client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "JobFailed",
    "Switchboard",
    "SwitchboardAPIError",
    "WebhookVerificationError",
    "verify_webhook",
]
