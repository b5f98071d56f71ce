"""Models over the API: filters, one model's detail, operator-registered and edited models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Engine, text

from app.db.engine import make_sessionmaker, unit_of_work
from app.registry.catalog import load_catalog
from app.registry.service import sync_catalog
from app.routing.breakers import CircuitBreakers, model_target
from tests.conftest import wait_for_jobs


def ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {m["id"] for m in response.json()["data"]}


def resync(engine: Engine, simulator_url: str) -> None:
    """What `switchboard migrate` does to the registry: upsert the shipped catalog."""
    with unit_of_work(make_sessionmaker(engine)) as session:
        sync_catalog(session, load_catalog(simulator_url=simulator_url))


@pytest.fixture
def registered(engine: Engine, api_url: str) -> Iterator[list[str]]:
    """Model ids a test registers; removed afterwards, and catalog models' edits undone."""
    made: list[str] = []
    yield made
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM models WHERE id = ANY(:ids)"), {"ids": made})
        conn.execute(text("UPDATE models SET overrides = '{}' WHERE source = 'catalog'"))


def custom_model(model_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": model_id,
        "provider": "sim-openai",
        "upstream": "sim-gpt-mini",
        "capabilities": ["chat", "json_mode"],
        "context_window": 32000,
        "max_output_tokens": 2000,
        "input_per_mtok": "0.25",
        "output_per_mtok": "1.5",
        "aliases": [f"{model_id}-latest"],
        "rpm": 100,
        "tpm": 50000,
        **changes,
    }


def test_models_filter_by_provider_capability_and_status(
    api: httpx.Client, registered: list[str]
) -> None:
    assert ids(api.get("/v1/models", params={"provider": "sim-openai"})) == {
        "sim-gpt-mini",
        "sim-gpt-large",
        "sim-embed-small",
        "sim-embed-large",
    }
    embedders = ids(api.get("/v1/models", params={"capability": "embeddings"}))
    chat_tools = ids(
        api.get("/v1/models", params=[("capability", "chat"), ("capability", "tools")])
    )
    chat = ids(api.get("/v1/models", params={"capability": "chat"}))
    assert embedders
    assert chat_tools
    assert chat_tools < chat
    assert not embedders & chat_tools

    mid = f"off-{uuid.uuid4().hex[:8]}"
    registered.append(mid)
    api.post("/v1/models", json=custom_model(mid)).raise_for_status()
    assert api.patch(f"/v1/models/{mid}", json={"enabled": False}).json()["status"] == "disabled"
    assert mid not in ids(api.get("/v1/models"))
    assert mid in ids(api.get("/v1/models", params={"status": "disabled"}))
    assert mid in ids(api.get("/v1/models", params={"status": "all"}))
    assert mid not in ids(api.get("/v1/models", params={"status": "active"}))

    bad = api.get("/v1/models", params={"capability": "telepathy"})
    assert bad.status_code == 400


def test_one_model_by_id_or_alias_with_limits_and_breaker(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    catalog = api.get("/v1/models/sim-gpt-mini").json()
    assert catalog["provider"] == "sim-openai"
    assert {"rpm", "tpm"} <= catalog.keys()
    assert catalog["breaker"]["state"] == "closed"

    breakers = CircuitBreakers(redis_client)
    breakers.force_open(model_target("sim-gpt-mini"), 30, "maintenance")
    try:
        opened = api.get("/v1/models/sim-gpt-mini").json()
        assert opened["breaker"]["state"] == "open"
        assert opened["breaker"]["last_failure"] == "maintenance"
    finally:
        breakers.reset(model_target("sim-gpt-mini"))

    missing = api.get("/v1/models/no-such-model")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "model_not_found")


def test_a_registered_model_is_served_at_once(
    api: httpx.Client, engine: Engine, registered: list[str], workers: object
) -> None:
    mid = f"custom-{uuid.uuid4().hex[:8]}"
    registered.append(mid)
    created = api.post("/v1/models", json=custom_model(mid))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["source"] == "api"
    assert body["pricing"]["input_per_mtok"] == "0.25"
    assert (body["rpm"], body["tpm"]) == (100, 50000)
    by_alias = api.get(f"/v1/models/{mid}-latest")
    assert by_alias.json()["id"] == mid
    assert mid in ids(api.get("/v1/models", params={"capability": "json_mode"}))

    job = api.post(
        "/v1/jobs",
        json={
            "model": f"{mid}-latest",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ).json()
    assert wait_for_jobs(engine, [job["id"]]) == {job["id"]: "succeeded"}
    assert api.get(f"/v1/jobs/{job['id']}").json()["served_model"] == mid


def test_registering_refuses_clashes_and_bad_values(
    api: httpx.Client, registered: list[str]
) -> None:
    mid = f"clash-{uuid.uuid4().hex[:8]}"
    registered.append(mid)
    api.post("/v1/models", json=custom_model(mid)).raise_for_status()

    for body in (
        custom_model(mid, aliases=[]),  # same id
        custom_model(f"{mid}-x", aliases=[f"{mid}-latest"]),  # an alias already taken
        custom_model(f"{mid}-y", aliases=["sim-gpt-mini"]),  # an alias that is a catalog id
        custom_model("sim-gpt-large", aliases=[]),  # a catalog id
    ):
        clash = api.post("/v1/models", json=body)
        assert (clash.status_code, clash.json()["error"]["code"]) == (409, "model_exists"), body

    for change, param in (
        ({"capabilities": ["chat", "telepathy"]}, "capabilities"),
        ({"input_per_mtok": "-1"}, "input_per_mtok"),
        ({"input_per_mtok": 0.1}, "input_per_mtok"),
        ({"max_output_tokens": 64000}, "max_output_tokens"),
        ({"provider": "nowhere"}, "provider"),
        ({"id": "bad id"}, "id"),
    ):
        bad = api.post("/v1/models", json=custom_model(f"{mid}-bad", aliases=[], **change))
        assert bad.status_code == 400, (change, bad.text)
        assert param in (bad.json()["error"].get("param") or "") + bad.json()["error"]["message"]
    assert api.get(f"/v1/models/{mid}-bad").status_code == 404


def test_an_operators_price_survives_a_catalog_resync(
    api: httpx.Client, engine: Engine, stack: Any, registered: list[str]
) -> None:
    """A negotiated price must not silently revert on the next `switchboard migrate`; fields
    the operator didn't touch still follow the catalog."""
    before = api.get("/v1/models/sim-gpt-large").json()
    changed = api.patch(
        "/v1/models/sim-gpt-large", json={"input_per_mtok": "0.01", "capabilities": ["chat"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["pricing"]["input_per_mtok"] == "0.01"
    mid = f"mine-{uuid.uuid4().hex[:8]}"
    registered.append(mid)
    api.post("/v1/models", json=custom_model(mid, input_per_mtok="9")).raise_for_status()
    with engine.begin() as conn:  # drift in a column the operator never set
        conn.execute(text("UPDATE models SET context_window = 1000 WHERE id = 'sim-gpt-large'"))

    try:
        resync(engine, stack.simulator_url)
        with engine.connect() as conn:
            rows = {
                r.id: r
                for r in conn.execute(
                    text("SELECT * FROM models WHERE id IN ('sim-gpt-large', :mid)"), {"mid": mid}
                )
            }
        large = rows["sim-gpt-large"]
        assert large.input_per_mtok == Decimal("0.01")
        assert large.capabilities == ["chat"]
        assert large.context_window == before["context_window"]
        assert large.output_per_mtok == Decimal(before["pricing"]["output_per_mtok"])
        assert rows[mid].input_per_mtok == Decimal(9)
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE models SET overrides = '{}' WHERE id = 'sim-gpt-large'"))
        resync(engine, stack.simulator_url)


def test_deprecating_keeps_a_model_listed_and_served(
    api: httpx.Client, registered: list[str]
) -> None:
    mid = f"old-{uuid.uuid4().hex[:8]}"
    registered.append(mid)
    api.post("/v1/models", json=custom_model(mid)).raise_for_status()
    deprecated = api.post(f"/v1/models/{mid}/deprecate")
    assert deprecated.status_code == 200, deprecated.text
    assert (deprecated.json()["status"], deprecated.json()["deprecated"]) == ("deprecated", True)
    assert mid in ids(api.get("/v1/models"))
    assert mid in ids(api.get("/v1/models", params={"status": "deprecated"}))
    assert mid not in ids(api.get("/v1/models", params={"status": "active"}))

    assert (
        api.patch(f"/v1/models/{mid}", json={"rpm": None, "deprecated": False}).json()["rpm"]
        is None
    )
    assert api.patch(f"/v1/models/{mid}", json={"upstream": "x"}).status_code == 400
    assert api.post("/v1/models/nope/deprecate").status_code == 404
