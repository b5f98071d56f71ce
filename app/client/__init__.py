"""Switchboard's Python client: ``from app.client import Switchboard, SwitchboardAPIError``."""

from app.client.http import SwitchboardAPIError
from app.client.sync import JobFailed, Switchboard

__all__ = ["JobFailed", "Switchboard", "SwitchboardAPIError"]
