"""Failure tests on real processes: after each, every job is finished and classified, none
is lost, and none has more than one succeeded attempt or recorded result.

These run on a stack of their own (embedded PostgreSQL and Redis, simulator, two worker
pools, beat, API), since they kill and restart its parts.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.bench.chaos import PROVIDERS, SCENARIOS, Scenario, chaos_config, run_scenario
from app.bench.common import FAST_RECOVERY_ENV, bench_stack
from app.cli.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


@pytest.fixture(scope="module")
def chaos_stack() -> Iterator[tuple[Stack, str]]:
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-chaos-"))
    data_dir.chmod(0o755)
    try:
        with bench_stack(
            data_dir,
            chaos_config(),
            PROVIDERS,
            concurrency=4,
            quiet=True,
            beat=True,
            extra_env=FAST_RECOVERY_ENV,
        ) as running:
            yield running
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_nothing_is_lost_or_recorded_twice(
    chaos_stack: tuple[Stack, str], scenario: Scenario
) -> None:
    stack, api_url = chaos_stack
    result = run_scenario(stack, api_url, scenario, jobs=60)
    ledger = result.audit
    assert ledger.lost == 0, result.as_dict()
    assert ledger.duplicated == 0, result.as_dict()
    assert ledger.unclassified == 0, result.as_dict()
    assert ledger.counters_off == 0, result.as_dict()
    # Every request can fall back to the healthy provider, so every one succeeds.
    assert ledger.succeeded == ledger.submitted, result.as_dict()
