"""Provider keys through the API: stored encrypted, shown by fingerprint, never echoed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, text

from app.cli.stack import Stack

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
