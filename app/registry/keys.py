"""Provider API keys: several per provider, each with its own limits, disabled on auth errors.

A worker calls a provider with one of its usable keys:
- keys stored through the API (encrypted; enabled ones only),
- the key in the provider's environment variable (``OPENAI_API_KEY``…), if set,
- or, for a provider that needs none (local servers, the simulator), one anonymous key.
Each key has its own rate-limit buckets, so several keys add up to more throughput.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.tables import ApiKeyRow
from app.errors import Conflict, InvalidInput, NotFound, Unavailable
from app.ids import new_id
from app.registry.secrets import SecretBox, fingerprint, last_four
from app.registry.service import ProviderInfo, Registry

ENV_KEY_PREFIX = "env:"
ANONYMOUS_KEY = "anonymous"
MAX_SECRET_CHARS = 4096


@dataclass(frozen=True, slots=True)
class KeyLimits:
    rpm: int | None = None
    tpm: int | None = None
    itpm: int | None = None
    otpm: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderKey:
    """A key a worker may call a provider with; ``secret`` is never printed."""

    id: str
    provider: str
    secret: str | None = field(repr=False)
    limits: KeyLimits = KeyLimits()

    @property
    def stored(self) -> bool:
        return not (self.id.startswith(ENV_KEY_PREFIX) or self.id == ANONYMOUS_KEY)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The usable keys of every provider, as a worker process sees them now."""

    by_provider: Mapping[str, tuple[ProviderKey, ...]]

    def keys(self, provider: str) -> tuple[ProviderKey, ...]:
        return self.by_provider.get(provider, ())


def keys_stamp(session: Session) -> tuple[object, ...]:
    """Changes whenever a stored key is added, removed, rotated, enabled or disabled."""
    return tuple(session.execute(select(func.count(), func.max(ApiKeyRow.updated_at))).one())


def load_keyring(
    session: Session,
    registry: Registry,
    box: SecretBox | None,
    environ: Mapping[str, str] = os.environ,
) -> KeyRing:
    rows = session.scalars(select(ApiKeyRow).where(ApiKeyRow.enabled)).all()
    if rows and box is None:
        raise Unavailable(
            "provider keys are stored but SWITCHBOARD_SECRET_KEY is not set", code="no_secret_key"
        )
    stored: dict[str, list[ProviderKey]] = {}
    for row in rows:
        assert box is not None
        limits = KeyLimits(row.rpm, row.tpm, row.itpm, row.otpm)
        stored.setdefault(row.provider, []).append(
            ProviderKey(row.id, row.provider, box.open(row.secret_ciphertext), limits)
        )
    ring: dict[str, tuple[ProviderKey, ...]] = {}
    for provider in registry.providers.values():
        keys = stored.get(provider.name, [])
        env_secret = environ.get(provider.api_key_env) if provider.api_key_env else None
        if env_secret:
            keys.append(ProviderKey(ENV_KEY_PREFIX + provider.name, provider.name, env_secret))
        if not keys and _needs_no_key(provider):
            keys.append(ProviderKey(ANONYMOUS_KEY, provider.name, None))
        ring[provider.name] = tuple(sorted(keys, key=lambda k: k.id))
    return KeyRing(ring)


def _needs_no_key(provider: ProviderInfo) -> bool:
    """Providers one can call without a key: simulated, or local servers (no key variable)."""
    return provider.simulated or provider.api_key_env is None


def add_key(
    session: Session,
    box: SecretBox,
    registry: Registry,
    *,
    provider: str,
    label: str,
    secret: str,
    limits: KeyLimits = KeyLimits(),
) -> ApiKeyRow:
    if provider not in registry.providers:
        raise InvalidInput(
            f"unknown provider {provider!r}", code="unknown_provider", param="provider"
        )
    secret = _checked(secret)
    row = ApiKeyRow(
        id=new_id("key"),
        provider=provider,
        label=label,
        secret_ciphertext=box.seal(secret),
        fingerprint=fingerprint(secret),
        last_four=last_four(secret),
        rpm=limits.rpm,
        tpm=limits.tpm,
        itpm=limits.itpm,
        otpm=limits.otpm,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"provider {provider!r} already has a key labelled {label!r}",
            code="duplicate_key_label",
        ) from None
    return row


def _checked(secret: str) -> str:
    if not secret.strip() or len(secret) > MAX_SECRET_CHARS or not secret.isprintable():
        raise InvalidInput(
            f"the key must be 1 to {MAX_SECRET_CHARS} printable characters", param="secret"
        )
    return secret.strip()


def rotate_key(session: Session, box: SecretBox, key_id: str, secret: str) -> ApiKeyRow:
    """Replace a key's secret, keeping its id, label and limits; the old ciphertext is gone.

    A rotated key is enabled again: the usual reason to rotate is that the provider rejected
    the old secret, and the new one deserves a try (a rejection disables it again).
    """
    row = get_key(session, key_id)
    secret = _checked(secret)
    row.secret_ciphertext = box.seal(secret)
    row.fingerprint = fingerprint(secret)
    row.last_four = last_four(secret)
    row.enabled, row.disabled_reason, row.disabled_at = True, None, None
    row.updated_at = datetime.now(UTC)
    session.flush()
    return row


def list_keys(session: Session, provider: str | None = None) -> list[ApiKeyRow]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.provider, ApiKeyRow.label)
    if provider is not None:
        query = query.where(ApiKeyRow.provider == provider)
    return list(session.scalars(query))


def get_key(session: Session, key_id: str) -> ApiKeyRow:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFound(f"no key {key_id!r}", code="key_not_found")
    return row


def set_enabled(session: Session, key_id: str, enabled: bool, reason: str | None = None) -> bool:
    """Enable or disable a stored key; False if there is no such key (env keys aren't stored)."""
    values = {
        "enabled": enabled,
        "disabled_reason": None if enabled else reason,
        "disabled_at": None if enabled else datetime.now(UTC),
        "updated_at": datetime.now(UTC),
    }
    result = session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def delete_key(session: Session, key_id: str) -> None:
    session.delete(get_key(session, key_id))
