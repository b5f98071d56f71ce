"""``/v1/stats`` and ``/v1/costs`` on the real API over ledger rows written with SQL, so that
every total, share and percentile can be asserted exactly; and the rollup behind them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.api.auth import Caller
from app.errors import Forbidden
from app.ledger.endpoints import _tenant_scope
from app.ledger.rollup import ROLLUP_INTERVAL_S, roll_up
from app.ledger.spend import CostGroup, cost_breakdown
from app.ledger.stats import StatsGroup, job_stats
from app.ledger.timeframe import Timeframe, plan
from tests.conftest import wait_until


@dataclass
class Attempt:
    model: str
    provider: str
    key: str | None
    status: str
    cost: str


@dataclass
class Job:
    finished_at: datetime
    model: str
    provider: str
    status: str = "succeeded"
    project: str | None = None
    priority: str = "normal"
    cost: str = "0"
    latency_ms: int = 100
    input_tokens: int = 10
    output_tokens: int = 5
    error_class: str | None = None
    attempts: list[Attempt] = field(default_factory=list)


def insert(engine: Engine, tenant: str, jobs: list[Job]) -> None:
    with engine.begin() as conn:
        for job in jobs:
            job_id = f"job_{uuid.uuid4().hex}"
            served = job.status == "succeeded"
            conn.execute(
                text(
                    """INSERT INTO jobs (id, tenant_id, project, status, priority, request,
                        models, provider, served_model, served_provider, input_tokens,
                        output_tokens, cost_usd, latency_ms, error_class, attempt_count,
                        created_at, finished_at)
                    VALUES (:id, :tenant, :project, :status, :priority, '{}', ARRAY[:model],
                        :provider, :served_model, :served_provider, :inp, :out, :cost,
                        :latency, :error, :n, :finished - interval '1 second', :finished)"""
                ),
                {
                    "id": job_id,
                    "tenant": tenant,
                    "project": job.project,
                    "status": job.status,
                    "priority": job.priority,
                    "model": job.model,
                    "provider": job.provider,
                    "served_model": job.model if served else None,
                    "served_provider": job.provider if served else None,
                    "inp": job.input_tokens,
                    "out": job.output_tokens,
                    "cost": Decimal(job.cost),
                    "latency": job.latency_ms,
                    "error": job.error_class,
                    "n": len(job.attempts),
                    "finished": job.finished_at,
                },
            )
            for number, a in enumerate(job.attempts, start=1):
                conn.execute(
                    text(
                        """INSERT INTO attempts (job_id, number, model_id, provider, key_id,
                            status, started_at, finished_at, latency_ms, decision, cost_usd,
                            input_tokens, output_tokens)
                        VALUES (:job, :n, :model, :provider, :key, :status, :at, :at, 10,
                            'done', :cost, 10, 5)"""
                    ),
                    {
                        "job": job_id,
                        "n": number,
                        "model": a.model,
                        "provider": a.provider,
                        "key": a.key,
                        "status": a.status,
                        "at": job.finished_at,
                        "cost": Decimal(a.cost),
                    },
                )


MINI, CLAUDE = ("sim-gpt-mini", "sim-openai"), ("sim-claude-haiku", "sim-anthropic")


def ok(model: tuple[str, str], key: str, cost: str) -> Attempt:
    return Attempt(model[0], model[1], key, "succeeded", cost)


def failed(model: tuple[str, str], key: str, cost: str) -> Attempt:
    return Attempt(model[0], model[1], key, "failed", cost)


@dataclass
class Ledger:
    tenant: str
    hour: datetime  # the current hour's start


@pytest.fixture
def ledger(engine: Engine) -> Ledger:
    """Five jobs in the last 24 h (one in the live tail) and one 3 days old, for a tenant of
    their own; rolled up so that the older hours are read from the rollups."""
    tenant = f"t_{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    jobs = [
        Job(
            hour - timedelta(hours=5, minutes=-10),
            *MINI,
            project="alpha",
            priority="high",
            cost="0.0001",
            latency_ms=100,
            attempts=[ok(MINI, "key_a", "0.0001")],
        ),
        Job(
            hour - timedelta(hours=5, minutes=-12),
            *MINI,
            project="alpha",
            priority="high",
            cost="0.0001",
            latency_ms=120,
            attempts=[ok(MINI, "key_a", "0.0001")],
        ),
        Job(
            hour - timedelta(hours=3, minutes=-20),
            *CLAUDE,
            status="failed",
            cost="0.00001",
            latency_ms=2000,
            error_class="server_error",
            attempts=[failed(CLAUDE, "key_b", "0.00001")],
        ),
        Job(
            hour - timedelta(hours=2, minutes=-5),
            *MINI,
            project="beta",
            priority="low",
            cost="0.000205",
            latency_ms=400,
            attempts=[failed(CLAUDE, "key_b", "0.000005"), ok(MINI, "key_a", "0.0002")],
        ),
        Job(
            now - timedelta(seconds=30),
            *MINI,
            project="alpha",
            cost="0.0003",
            latency_ms=300,
            attempts=[ok(MINI, "key_a", "0.0003")],
        ),
        Job(
            now - timedelta(days=3),
            *MINI,
            cost="1",
            attempts=[ok(MINI, "key_a", "1")],
        ),
    ]
    insert(engine, tenant, jobs)
    with engine.begin() as conn:
        roll_up(conn, until=hour, since=now - timedelta(days=4))
    return Ledger(tenant, hour)


def get(api: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_key(report: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    return {row["key"]: row for row in report["data"]}


def test_costs_are_exact_with_shares_by_model_key_project_and_day(
    api: httpx.Client, ledger: Ledger
) -> None:
    report = get(api, "/v1/costs", tenant=ledger.tenant, period="24h", group_by="model")
    assert report["total_cost_usd"] == "0.000715"
    models = by_key(report)
    assert models["sim-gpt-mini"]["cost_usd"] == "0.0007"
    assert models["sim-gpt-mini"]["percent"] == 97.9
    # Failed attempts are billed to the model they ran on, not the one that served the job.
    assert models["sim-claude-haiku"]["cost_usd"] == "0.000015"
    assert models["sim-claude-haiku"]["percent"] == 2.1
    assert models["sim-claude-haiku"]["failed_attempts"] == 2
    assert [r["key"] for r in report["data"]] == ["sim-gpt-mini", "sim-claude-haiku"]

    keys = by_key(get(api, "/v1/costs", tenant=ledger.tenant, period="24h", group_by="key"))
    assert {k: (v["cost_usd"], v["percent"]) for k, v in keys.items()} == {
        "key_a": ("0.0007", 97.9),
        "key_b": ("0.000015", 2.1),
    }
    projects = by_key(get(api, "/v1/costs", tenant=ledger.tenant, period="24h", group_by="project"))
    assert {k: (v["cost_usd"], v["percent"]) for k, v in projects.items()} == {
        "alpha": ("0.0005", 69.93),
        "beta": ("0.000205", 28.67),
        None: ("0.00001", 1.4),
    }
    days = get(api, "/v1/costs", tenant=ledger.tenant, period="7d", group_by="day")
    assert days["total_cost_usd"] == "1.000715"
    assert sum(Decimal(d["cost_usd"]) for d in days["data"]) == Decimal("1.000715")
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%d")
    assert by_key(days)[three_days_ago]["cost_usd"].startswith("1")


def test_stats_count_volume_success_errors_and_latency(api: httpx.Client, ledger: Ledger) -> None:
    report = get(api, "/v1/stats", tenant=ledger.tenant, period="24h")
    overall = report["overall"]
    assert overall["jobs"] == 5
    assert overall["by_status"] == {"succeeded": 4, "failed": 1}
    assert overall["success_rate"] == 0.8
    assert overall["errors"] == {"server_error": 1}
    assert overall["tokens"] == {"input": 50, "output": 25, "cached": 0}
    assert overall["cost_usd"] == "0.000715"
    # Latencies 100, 120, 300, 400, 2000: the median is 300 and p95 2000, within 4.5%.
    assert overall["latency_ms"]["p50"] == pytest.approx(300, rel=0.045)
    assert overall["latency_ms"]["p95"] == pytest.approx(2000, rel=0.045)
    assert report["data"] == []

    grouped = by_key(get(api, "/v1/stats", tenant=ledger.tenant, group_by="priority"))
    assert {k: v["jobs"] for k, v in grouped.items()} == {"high": 2, "normal": 2, "low": 1}
    providers = by_key(get(api, "/v1/stats", tenant=ledger.tenant, group_by="provider"))
    assert providers["sim-anthropic"]["by_status"] == {"failed": 1}
    assert providers["sim-anthropic"]["success_rate"] == 0.0
    assert providers["sim-openai"]["success_rate"] == 1.0


def test_timeframes_select_jobs_by_when_they_finished(api: httpx.Client, ledger: Ledger) -> None:
    week = get(api, "/v1/stats", tenant=ledger.tenant, period="7d")
    assert week["overall"]["jobs"] == 6
    hour = get(api, "/v1/stats", tenant=ledger.tenant, period="1h")
    assert hour["overall"]["jobs"] == 1  # only the live tail
    start = (ledger.hour - timedelta(hours=4)).isoformat()
    end = (ledger.hour - timedelta(hours=1)).isoformat()
    window = get(api, "/v1/costs", tenant=ledger.tenant, start=start, end=end, group_by="model")
    assert window["total_cost_usd"] == "0.000215"
    assert get(api, "/v1/stats", tenant=ledger.tenant, start=start, end=end)["overall"][
        "by_status"
    ] == {"failed": 1, "succeeded": 1}


def test_rollups_plus_the_live_tail_answer_exactly_what_the_raw_ledger_does(
    engine: Engine, ledger: Ledger
) -> None:
    with engine.connect() as conn:
        rolled = conn.execute(
            text("SELECT count(*) FROM job_rollups WHERE tenant_id = :t AND span = 'hour'"),
            {"t": ledger.tenant},
        ).scalar_one()
        days = conn.execute(
            text("SELECT count(*) FROM cost_rollups WHERE tenant_id = :t AND span = 'day'"),
            {"t": ledger.tenant},
        ).scalar_one()
    assert rolled >= 4  # the older hours really are read from the rollups
    assert days >= 1  # and whole days from the daily ones
    now = datetime.now(UTC)
    with Session(engine) as session:
        for start in (now - timedelta(days=7), ledger.hour - timedelta(hours=4, minutes=17)):
            frame = Timeframe(start, now)
            for group in (None, *StatsGroup):
                answers = [
                    job_stats(
                        session,
                        plan(session, frame, use_rollups=r),
                        tenant_id=ledger.tenant,
                        group=group,
                    )
                    for r in (True, False)
                ]
                assert answers[0] == answers[1]
            for cost_group in (None, *CostGroup):
                both = [
                    cost_breakdown(
                        session, frame, tenant_id=ledger.tenant, group=cost_group, use_rollups=r
                    )
                    for r in (True, False)
                ]
                assert both[0] == both[1]


def rollup_rows(engine: Engine, tenant: str) -> list[Any]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for table in ("job_rollups", "latency_rollups", "cost_rollups")
            for r in conn.execute(
                text(f"SELECT * FROM {table} WHERE tenant_id = :t ORDER BY 1, 2, 3, 4, 5, 6, 7, 8"),
                {"t": tenant},
            )
        ]


def test_the_rollup_is_idempotent_and_picks_up_jobs_that_finish_out_of_order(
    api: httpx.Client, engine: Engine, ledger: Ledger
) -> None:
    before = rollup_rows(engine, ledger.tenant)
    for _ in range(2):
        with engine.begin() as conn:
            roll_up(conn, until=ledger.hour, since=ledger.hour - timedelta(days=4))
    assert rollup_rows(engine, ledger.tenant) == before

    # A job whose finish commits late, in an hour already rolled up: the next periodic run
    # recomputes the recent hours and counts it.
    late = Job(
        ledger.hour - timedelta(minutes=50),
        *MINI,
        cost="0.5",
        attempts=[ok(MINI, "key_c", "0.5")],
    )
    insert(engine, ledger.tenant, [late])
    with engine.begin() as conn:
        roll_up(conn)
    report = get(api, "/v1/costs", tenant=ledger.tenant, period="24h", group_by="key")
    assert report["total_cost_usd"] == "0.500715"
    assert by_key(report)["key_c"]["percent"] == 99.86


def test_bad_timeframes_and_groupings_are_400s(api: httpx.Client) -> None:
    cases = [
        ("/v1/stats", {"period": "2h"}),
        ("/v1/costs", {"group_by": "color"}),
        ("/v1/stats", {"start": "2026-11-22T10:00:00"}),  # no UTC offset
        ("/v1/costs", {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T09:00:00Z"}),
        ("/v1/stats", {"start": "2026-11-22T10:00:00Z", "period": "1h"}),
    ]
    for path, params in cases:
        response = api.get(path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["error"]["code"] in {"invalid_request", "invalid_timeframe"}


def test_a_tenant_sees_only_its_own_and_cannot_group_by_tenant() -> None:
    tenant = Caller(tenant_id="acme", admin=False)
    assert _tenant_scope(tenant, "someone-else", by_tenant=False) == "acme"
    with pytest.raises(Forbidden) as caught:
        _tenant_scope(tenant, None, by_tenant=True)
    assert caught.value.code == "admin_required"
    admin = Caller(tenant_id="default", admin=True)
    assert _tenant_scope(admin, None, by_tenant=True) is None  # every tenant
    assert _tenant_scope(admin, "acme", by_tenant=False) == "acme"


def test_usage_per_model_still_answers(api: httpx.Client) -> None:
    report = get(api, "/v1/usage")
    assert report["object"] == "usage_report"
    assert set(report) == {"object", "batch_id", "data", "total_cost_usd"}


def test_the_cli_prints_stats_and_costs_tables(
    api_url: str,
    admin_key: str,
    ledger: Ledger,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rich.console import Console

    from app.cli import reports
    from app.cli.main import main

    monkeypatch.setattr(reports, "console", Console(width=200))  # a wide terminal
    monkeypatch.setenv("SWITCHBOARD_API_KEY", admin_key)

    main(["stats", "--api", api_url, "--by", "model", "--tenant", ledger.tenant])
    out = capsys.readouterr().out
    assert "sim-gpt-mini" in out
    assert "0.000715" in out  # the total row's cost
    assert "server_error 1" in out

    main(["costs", "--api", api_url, "--by", "key", "--period", "24h", "--tenant", ledger.tenant])
    out = capsys.readouterr().out
    assert "key_a" in out
    assert "97.90%" in out
    assert "forecast $" in out


def test_the_cli_says_what_is_wrong_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["costs", "--api", "http://127.0.0.1:9"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith("error: api_unreachable:")


@pytest.mark.usefixtures("workers")
def test_the_beat_rolls_up_recently_finished_jobs_on_its_own(engine: Engine) -> None:
    tenant = f"t_{uuid.uuid4().hex[:10]}"
    finished = datetime.now(UTC) - timedelta(hours=1)  # within the hours every run redoes
    insert(engine, tenant, [Job(finished, *MINI, cost="0.25", attempts=[ok(MINI, "k", "0.25")])])

    def rolled_up() -> bool:
        with engine.connect() as conn:
            cost = conn.execute(
                text("SELECT sum(cost_usd) FROM cost_rollups WHERE tenant_id = :t"),
                {"t": tenant},
            ).scalar()
        return cost == Decimal("0.25")

    wait_until(rolled_up, timeout=ROLLUP_INTERVAL_S + 30, every=1.0)
