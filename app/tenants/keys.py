"""Gateway keys: random 256-bit tokens, kept only as their SHA-256.

A slow password hash buys nothing for a key with 256 bits of entropy, and SHA-256 lets the
API find the key by an indexed equality on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from app.config import Settings
from app.registry.secrets import folder_secret

PREFIX = "sb-"
ADMIN_KEY_FILE = "admin.key"


def new_gateway_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so response times say nothing about the admin key."""
    return hmac.compare_digest(given.encode(), expected.encode())


def admin_key(settings: Settings, *, create: bool = False) -> str | None:
    """``SWITCHBOARD_ADMIN_KEY``, else the data folder's (made if ``create``: stacks started
    by the CLI make one, and the CLI on the same machine finds it there)."""
    if settings.admin_key is not None:
        return settings.admin_key.get_secret_value()
    return folder_secret(Path(settings.data_dir) / ADMIN_KEY_FILE, new_gateway_key, create=create)
