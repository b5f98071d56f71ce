"""Tenants made through the API as the admin would, each with a client on its own key."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest


@pytest.fixture
def new_tenant(api: httpx.Client, api_url: str) -> Iterator[Callable[[], httpx.Client]]:
    """Make a tenant and return an API client that calls with the tenant's own key."""
    clients: list[httpx.Client] = []

    def make() -> httpx.Client:
        tenant_id = f"t-{uuid.uuid4().hex[:10]}"
        created = api.post("/v1/tenants", json={"id": tenant_id, "name": tenant_id.upper()})
        assert created.status_code == 201, created.text
        issued = api.post(f"/v1/tenants/{tenant_id}/keys", json={"label": "tests"})
        assert issued.status_code == 201, issued.text
        client = httpx.Client(
            base_url=api_url,
            timeout=60,
            headers={"Authorization": f"Bearer {issued.json()['key']}"},
        )
        client.tenant_id = tenant_id  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
