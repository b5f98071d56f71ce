"""Provider API keys at rest: encrypted with Fernet under one master key, shown by fingerprint.

The master key is ``SWITCHBOARD_SECRET_KEY`` (a Fernet key). An embedded stack keeps one in
``<data_dir>/secret.key`` (mode 0600), made on first use and handed to every process the stack
starts; a deployment on external Postgres must set the variable on every process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from app.config import Settings
from app.errors import InvalidInput, Unavailable

KEY_FILE = "secret.key"


class SecretBox:
    """Seals and opens provider keys; the only code that ever sees them in plaintext."""

    def __init__(self, master_key: str) -> None:
        try:
            self._fernet = Fernet(master_key.encode())
        except ValueError:
            raise InvalidInput(
                "SWITCHBOARD_SECRET_KEY must be a Fernet key (32 url-safe base64-encoded bytes); "
                "make one with `switchboard new-secret-key`",
                code="invalid_secret_key",
            ) from None

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise Unavailable(
                "a stored provider key cannot be decrypted: SWITCHBOARD_SECRET_KEY is not the key "
                "it was stored with",
                code="secret_key_mismatch",
            ) from None


MIN_CHARS_TO_SHOW_TAIL = 16


def last_four(secret: str) -> str | None:
    """The last four characters, the only part of a key ever stored or shown in clear;
    ``None`` for a key too short to give away a quarter of it."""
    return secret[-4:] if len(secret) >= MIN_CHARS_TO_SHOW_TAIL else None


def fingerprint(secret: str) -> str:
    """How a key is shown: its last four characters and a short hash, never more."""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:8]
    tail = last_four(secret)
    return f"…{tail} ({digest})" if tail else f"({digest})"


def new_master_key() -> str:
    return Fernet.generate_key().decode()


def folder_secret(path: Path, make: Callable[[], str], *, create: bool) -> str | None:
    """A secret kept in a file of the data folder (mode 0600), made once if ``create``."""
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process made it first: read theirs
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(make())
    return path.read_text().strip()


def master_key(settings: Settings, *, create: bool = False) -> str | None:
    """The configured master key, else the data folder's (made if ``create``)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return folder_secret(Path(settings.data_dir) / KEY_FILE, new_master_key, create=create)


def secret_box(settings: Settings) -> SecretBox | None:
    key = master_key(settings)
    return SecretBox(key) if key is not None else None
