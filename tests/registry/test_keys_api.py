"""Provider keys through the API: stored encrypted, shown by fingerprint, never echoed."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from app.cli.stack import Stack
from app.simulator.config import default_config
from app.simulator.control import with_provider
from tests.conftest import Simulator, wait_for_jobs

SECRET = "sk-test-0123456789abcdefWXYZ"


@pytest.fixture
def stored_key(api: httpx.Client) -> Iterator[dict[str, object]]:
    response = api.post(
        "/v1/keys",
        json={"provider": "sim-gemini", "label": "primary", "secret": SECRET, "rpm": 120},
    )
    assert response.status_code == 201, response.text
    key = response.json()
    yield key
    api.delete(f"/v1/keys/{key['id']}")


def test_a_stored_key_is_encrypted_and_never_shown(
    api: httpx.Client, engine: Engine, stack: Stack, stored_key: dict[str, object]
) -> None:
    assert SECRET not in str(stored_key)
    assert str(stored_key["fingerprint"]).startswith("…WXYZ (")
    assert stored_key["rpm"] == 120
    assert stored_key["enabled"] is True

    listed = api.get("/v1/keys", params={"provider": "sim-gemini"}).text
    assert stored_key["id"] in listed
    assert SECRET not in listed

    with engine.connect() as conn:
        row = (
            conn.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": stored_key["id"]})
            .mappings()
            .one()
        )
    assert SECRET not in str(dict(row))  # not in any column, ciphertext included
    for log in stack.log_dir.glob("*.log"):
        assert SECRET not in log.read_text(errors="replace"), log.name


def test_labels_are_unique_per_provider(api: httpx.Client, stored_key: dict[str, object]) -> None:
    again = api.post(
        "/v1/keys", json={"provider": "sim-gemini", "label": "primary", "secret": "x" * 20}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_key_label"


def test_bad_keys_are_refused(api: httpx.Client) -> None:
    unknown = api.post("/v1/keys", json={"provider": "nope", "label": "a", "secret": "abcdefgh"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "unknown_provider")
    blank = api.post("/v1/keys", json={"provider": "sim-gemini", "label": "b", "secret": "   "})
    assert blank.status_code == 400
    assert SECRET not in blank.text


def test_a_deleted_key_is_gone(api: httpx.Client, stored_key: dict[str, object]) -> None:
    assert api.delete(f"/v1/keys/{stored_key['id']}").status_code == 204
    assert api.delete(f"/v1/keys/{stored_key['id']}").status_code == 404


# -- keys under their provider --------------------------------------------------------------
def add_provider_key(
    api: httpx.Client, provider: str, secret: str, **extra: object
) -> dict[str, Any]:
    label = f"k-{uuid.uuid4().hex[:8]}"
    response = api.post(
        f"/v1/providers/{provider}/keys", json={"label": label, "secret": secret, **extra}
    )
    assert response.status_code == 201, response.text
    key: dict[str, Any] = response.json()
    return key


@pytest.fixture
def gemini_key(api: httpx.Client) -> Iterator[dict[str, Any]]:
    key = add_provider_key(api, "sim-gemini", SECRET, rpm=60, tpm=9000)
    yield key
    api.delete(f"/v1/providers/sim-gemini/keys/{key['id']}")


def every_stored_value(engine: Engine) -> str:
    """Every row of every table in the database, as text: where a leaked secret would show."""
    with engine.connect() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        return "\n".join(
            row
            for table in list(tables)
            for row in conn.execute(text(f'SELECT t::text FROM "{table}" t')).scalars()
        )


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        secret[:-4],  # anything past the last four
    ]


def test_a_providers_keys_are_listed_masked(api: httpx.Client, gemini_key: dict[str, Any]) -> None:
    assert gemini_key["last_four"] == "WXYZ"
    assert gemini_key["status"] == "enabled"
    assert (gemini_key["rpm"], gemini_key["tpm"]) == (60, 9000)
    listed = api.get("/v1/providers/sim-gemini/keys")
    assert listed.status_code == 200
    mine = [k for k in listed.json()["data"] if k["id"] == gemini_key["id"]]
    assert len(mine) == 1
    assert mine[0]["usage"]["calls"] == 0
    assert mine[0]["last_used_at"] is None
    assert SECRET not in listed.text
    assert SECRET[:-4] not in listed.text

    other = api.get("/v1/providers/sim-openai/keys").json()["data"]
    assert gemini_key["id"] not in {k["id"] for k in other}
    wrong = api.post(f"/v1/providers/sim-openai/keys/{gemini_key['id']}/disable")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (404, "key_not_found")
    assert api.get("/v1/providers/nowhere/keys").status_code == 404
    short = add_provider_key(api, "sim-gemini", "short-key")
    assert short["last_four"] is None
    api.delete(f"/v1/providers/sim-gemini/keys/{short['id']}")


def test_disable_enable_and_rotate_keep_the_key_and_replace_only_the_secret(
    api: httpx.Client, engine: Engine, gemini_key: dict[str, Any]
) -> None:
    path = f"/v1/providers/sim-gemini/keys/{gemini_key['id']}"
    disabled = api.post(f"{path}/disable", json={"reason": "leaked in a screenshot"}).json()
    assert (disabled["status"], disabled["disabled_reason"]) == (
        "disabled",
        "leaked in a screenshot",
    )
    assert api.post(f"{path}/enable").json()["status"] == "enabled"
    api.post(f"{path}/disable").raise_for_status()

    def ciphertext() -> str:
        with engine.connect() as conn:
            return str(
                conn.execute(
                    text("SELECT secret_ciphertext FROM api_keys WHERE id = :id"),
                    {"id": gemini_key["id"]},
                ).scalar_one()
            )

    before = ciphertext()
    new_secret = "sk-rotated-9876543210abcdQRST"
    rotated = api.post(f"{path}/rotate", json={"secret": new_secret})
    assert rotated.status_code == 200, rotated.text
    key = rotated.json()
    assert (key["id"], key["label"], key["rpm"], key["tpm"]) == (
        gemini_key["id"],
        gemini_key["label"],
        60,
        9000,
    )
    assert (key["last_four"], key["status"], key["disabled_reason"]) == ("QRST", "enabled", None)
    assert key["fingerprint"] != gemini_key["fingerprint"]
    assert ciphertext() != before
    assert new_secret not in rotated.text

    assert api.post(f"{path}/rotate", json={"secret": " "}).status_code == 400
    assert api.delete(path).status_code == 204
    assert api.post(f"{path}/rotate", json={"secret": new_secret}).status_code == 404


def test_no_plaintext_secret_anywhere_in_the_database(
    api: httpx.Client, engine: Engine, gemini_key: dict[str, Any]
) -> None:
    rotated = "sk-another-secret-4242424242LMNO"
    other = add_provider_key(api, "sim-openai", rotated)
    try:
        api.post(
            f"/v1/providers/sim-openai/keys/{other['id']}/rotate", json={"secret": rotated + "P"}
        ).raise_for_status()
        dump = every_stored_value(engine)
        assert gemini_key["id"] in dump
        assert "WXYZ" in dump
        for secret in (SECRET, rotated, rotated + "P"):
            for form in encodings(secret):
                assert form not in dump, form
    finally:
        api.delete(f"/v1/providers/sim-openai/keys/{other['id']}")


def test_a_key_the_provider_rejects_is_disabled_and_usage_comes_from_the_ledger(
    api: httpx.Client, engine: Engine, simulator: Simulator, workers: object
) -> None:
    good, revoked = "sk-usage-good-key-0123456789", "sk-usage-revoked-0123456789"
    simulator.configure(with_provider(default_config(), "sim-anthropic", keys=[good]))
    keys = [add_provider_key(api, "sim-anthropic", s) for s in (revoked, good)]
    try:
        body = {"model": "sim-claude-haiku", "max_tokens": 16}
        jobs = [
            api.post(
                "/v1/jobs", json={**body, "messages": [{"role": "user", "content": f"hi {i}"}]}
            ).json()["id"]
            for i in range(6)
        ]
        assert set(wait_for_jobs(engine, jobs).values()) == {"succeeded"}
        listed = {k["id"]: k for k in api.get("/v1/providers/sim-anthropic/keys").json()["data"]}
        bad, ok = listed[keys[0]["id"]], listed[keys[1]["id"]]
        assert bad["status"] == "disabled"
        assert bad["disabled_reason"]
        assert good not in str(listed)
        assert revoked not in str(listed)
        assert bad["usage"]["calls"] == bad["usage"]["failed_calls"] >= 1
        assert ok["usage"]["calls"] == 6
        assert ok["usage"]["failed_calls"] == 0
        assert ok["usage"]["input_tokens"] > 0
        assert ok["usage"]["output_tokens"] > 0
        assert Decimal(ok["usage"]["cost_usd"]) > 0
        assert ok["last_used_at"] is not None
        later = api.get(
            "/v1/providers/sim-anthropic/keys",
            params={"since": datetime.now(UTC).isoformat()},
        ).json()["data"]
        assert {k["id"]: k["usage"]["calls"] for k in later}[ok["id"]] == 0
        assert api.get("/v1/providers/sim-anthropic").json()["keys"]["disabled"] >= 1
    finally:
        for key in keys:
            api.delete(f"/v1/providers/sim-anthropic/keys/{key['id']}")
