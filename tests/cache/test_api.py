"""``cache`` on requests as the API checks it, and ``/v1/cache`` as callers read it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cache.conftest import chat


@pytest.mark.parametrize(
    ("path", "body", "param", "says"),
    [
        ("/v1/jobs", chat("Hi", cache={"mode": "exact", "threshold": 0.5}), None, "threshold"),
        ("/v1/jobs", chat("Hi", cache={"ttl": 0}), "cache.ttl", "greater than or equal to 1"),
        ("/v1/jobs", chat("Hi", cache={"mode": "sometimes"}), "cache.mode", "exact"),
        ("/v1/jobs", chat("Hi", cache={"mode": "off", "ttl": 5}), None, "ttl"),
        ("/v1/jobs", chat("Hi", cache={"keep": True}), "cache.keep", "Extra inputs"),
        ("/v1/chat/completions", chat("Hi", cache={"threshold": 2}), "cache.threshold", "1"),
        (
            "/v1/embeddings",
            {"model": "sim-embed-small", "input": "x", "cache": {"mode": "semantic"}},
            None,
            "embeddings are cached exactly",
        ),
    ],
)
def test_a_bad_cache_option_is_a_400_naming_it_and_nothing_is_queued(
    api: httpx.Client, path: str, body: dict[str, Any], param: str | None, says: str
) -> None:
    before = api.get("/v1/jobs", params={"limit": 1}).json()["first_id"]
    refused = api.post(path, json=body)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_request"
    assert says in error["message"]
    if param is not None:
        assert error["param"] == param
    assert api.get("/v1/jobs", params={"limit": 1}).json()["first_id"] == before


def test_the_cache_listing_says_how_the_cache_is_set_up(api: httpx.Client) -> None:
    listing = api.get("/v1/cache").json()
    assert listing["object"] == "cache"
    assert listing["tenant"] is None  # the admin reads every tenant's
    assert listing["default_mode"] == "exact"
    assert listing["ttl_s"] == 24 * 3600
    assert listing["semantic"] == {
        "available": True,
        "embedding_model": "sim-embed-small",
        "dimensions": 16,
        "threshold": 0.95,
        "index": "pgvector",
    }


def test_a_tenant_key_lists_and_purges_only_its_own(new_tenant: Any, api: httpx.Client) -> None:
    tenant = new_tenant()
    assert (
        tenant.get("/v1/cache", params={"tenant": "default"}).json()["tenant"] == tenant.tenant_id
    )
    purged = tenant.delete("/v1/cache", params={"tenant": "default"}).json()
    assert (purged["tenant"], purged["deleted"]) == (tenant.tenant_id, 0)
