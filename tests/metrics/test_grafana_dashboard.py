"""The Grafana dashboard (ops/grafana/dashboards/switchboard.json) against what the code exports:
every query names series that exist, every exported family has a panel, on one datasource."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from app.metrics.api import ApiMetrics
from app.metrics.worker import WorkerMetrics
from tests.metrics.scrape import scrape

DASHBOARD = (
    Path(__file__).resolve().parents[2] / "ops" / "grafana" / "dashboards" / "switchboard.json"
)
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
NAME = re.compile(r"\bswitchboard_[a-z_]+\b")
UNCHARTED = {
    "switchboard_process_virtual_memory_bytes",
    "switchboard_process_open_fds",
    "switchboard_process_max_fds",
    "switchboard_process_start_time_seconds",
}


def load() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def charts(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def series_of(registry: CollectorRegistry) -> set[str]:
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def exported(api_url: str) -> set[str]:
    """Every series name the workers and the API export (the API's state gauges as scraped)."""
    return (
        series_of(WorkerMetrics().registry)
        | series_of(ApiMetrics().registry)
        | scrape(f"{api_url}/metrics").names()
    )


def queried(board: dict[str, Any]) -> set[str]:
    exprs = [t["expr"] for p in charts(board) for t in p["targets"]]
    exprs.append(board["templating"]["list"][0]["query"]["query"])
    return {name for expr in exprs for name in NAME.findall(expr)}


def test_every_query_names_a_series_the_code_exports(api_url: str) -> None:
    unknown = queried(load()) - exported(api_url)
    assert not unknown, f"the dashboard queries series nobody exports: {sorted(unknown)}"


def test_every_exported_family_is_charted(api_url: str) -> None:
    used = queried(load())
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in exported(api_url)}
    missing = {
        f for f in families - UNCHARTED if not any(n == f or n.startswith(f + "_") for n in used)
    }
    assert not missing, f"exported but on no panel: {sorted(missing)}"


def test_panels_use_the_prometheus_datasource_and_do_not_overlap() -> None:
    board = load()
    assert board["uid"] == "switchboard"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
            assert all(t["datasource"]["uid"] == "prometheus" for t in panel["targets"])
        g = panel["gridPos"]
        assert g["x"] >= 0
        assert g["x"] + g["w"] <= 24
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"panel {panel['title']!r} overlaps another"
        taken |= cells
