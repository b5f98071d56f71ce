"""Who may call what: 401 without a known key, 403 for a tenant on admin endpoints."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import httpx
from sqlalchemy import Engine, text

from tests.conftest import wait_until

JOB = {"model": "sim-gemini-flash", "prompt": "hello", "max_tokens": 5}


def test_no_key_is_refused_with_a_clear_code(anonymous: httpx.Client) -> None:
    for method, path in [("GET", "/v1/models"), ("POST", "/v1/jobs"), ("GET", "/v1/usage")]:
        response = anonymous.request(method, path, json=JOB if method == "POST" else None)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["code"] == "missing_api_key"


def test_health_and_docs_need_no_key(anonymous: httpx.Client) -> None:
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/openapi.json").status_code == 200


def test_an_unknown_or_malformed_key_is_refused(api_url: str) -> None:
    for headers, code in [
        ({"Authorization": "Bearer sb-not-a-real-key"}, "invalid_api_key"),
        ({"x-api-key": "sb-not-a-real-key"}, "invalid_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "invalid_authorization"),
        ({"Authorization": "Bearer"}, "invalid_authorization"),
    ]:
        response = httpx.get(f"{api_url}/v1/models", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == code


def test_a_tenant_key_cannot_manage_the_gateway(new_tenant: Callable[[], httpx.Client]) -> None:
    tenant = new_tenant()
    attempts = [
        ("POST", "/v1/tenants", {"id": "intruder", "name": "x"}),
        ("GET", "/v1/tenants", None),
        ("POST", "/v1/budgets", {"tenant_id": "default", "period": "day", "limit_usd": "1"}),
        ("PATCH", "/v1/providers/sim-openai", {"rpm": 1}),
    ]
    for method, path, body in attempts:
        response = tenant.request(method, path, json=body)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "admin_required"
    # ... and cannot pass itself off as another tenant.
    response = tenant.get("/v1/jobs", headers={"X-Switchboard-Tenant": "default"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_mismatch"


def test_tenant_keys_are_stored_hashed_listed_masked_and_revocable(
    api: httpx.Client, api_url: str, engine: Engine, new_tenant: Callable[[], httpx.Client]
) -> None:
    tenant = new_tenant()
    tenant_id = tenant.tenant_id  # type: ignore[attr-defined]
    issued = api.post(f"/v1/tenants/{tenant_id}/keys", json={"label": "second"}).json()
    key = issued["key"]
    assert key.startswith("sb-")
    assert issued["last_four"] == key[-4:]

    with engine.connect() as conn:
        dump = conn.execute(text("SELECT to_jsonb(k)::text FROM gateway_keys k")).scalars().all()
    assert not any(key in row for row in dump)
    assert any(hashlib.sha256(key.encode()).hexdigest() in row for row in dump)

    listed = api.get(f"/v1/tenants/{tenant_id}/keys").json()["data"]
    assert {k["label"] for k in listed} == {"tests", "second"}
    assert all("key" not in k for k in listed)

    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{api_url}/v1/jobs", headers=headers).status_code == 200
    mine = next(k for k in listed if k["label"] == "second")
    assert mine["last_used_at"] is None or mine["status"] == "active"
    assert api.delete(f"/v1/tenants/{tenant_id}/keys/{issued['id']}").status_code == 204
    # The API caches a key's owner for a few seconds; after that the key is dead.
    wait_until(
        lambda: httpx.get(f"{api_url}/v1/jobs", headers=headers).status_code == 401, timeout=10
    )
    after = {k["id"]: k for k in api.get(f"/v1/tenants/{tenant_id}/keys").json()["data"]}
    assert after[issued["id"]]["status"] == "revoked"
    assert after[issued["id"]]["last_used_at"] is not None


def test_a_disabled_tenant_is_locked_out(
    api: httpx.Client, new_tenant: Callable[[], httpx.Client]
) -> None:
    tenant = new_tenant()
    tenant_id = tenant.tenant_id  # type: ignore[attr-defined]
    assert tenant.get("/v1/jobs").status_code == 200
    assert api.patch(f"/v1/tenants/{tenant_id}", json={"enabled": False}).status_code == 200
    wait_until(lambda: tenant.get("/v1/jobs").status_code == 403, timeout=10)
    assert tenant.get("/v1/jobs").json()["error"]["code"] == "tenant_disabled"


def test_the_admin_can_act_for_a_tenant(
    api: httpx.Client, new_tenant: Callable[[], httpx.Client]
) -> None:
    tenant = new_tenant()
    tenant_id = tenant.tenant_id  # type: ignore[attr-defined]
    as_tenant = {"X-Switchboard-Tenant": tenant_id}
    created = api.post("/v1/jobs", json=JOB, headers=as_tenant)
    assert created.status_code == 202
    job_id = created.json()["id"]
    assert tenant.get(f"/v1/jobs/{job_id}").status_code == 200
    unknown = api.get("/v1/jobs", headers={"X-Switchboard-Tenant": "no-such-tenant"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "tenant_not_found"


def test_a_nul_in_the_url_is_a_clear_400(api: httpx.Client) -> None:
    for url in ("/v1/jobs?batch_id=a%00b", "/v1/webhooks/deliveries?job_id=%00", "/v1/jobs/a%00"):
        response = api.get(url)
        assert response.status_code == 400, url
        assert response.json()["error"]["code"] == "invalid_request"
