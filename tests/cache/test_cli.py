"""``switchboard cache show`` and ``purge`` against the real API, as a tenant."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from app.cli.main import main
from tests.cache.conftest import chat

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out + err


def test_show_then_purge_one_models_answers(
    api_url: str,
    new_tenant: Callable[[], httpx.Client],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant = new_tenant()
    for _ in range(3):
        assert tenant.post("/v1/chat/completions", json=chat("Spell 'cache'.")).status_code == 200
    monkeypatch.setenv("SWITCHBOARD_API_KEY", tenant.headers["authorization"][len("Bearer ") :])
    monkeypatch.setenv("COLUMNS", "200")

    code, out = run(capsys, "cache", "show", "--api", api_url)
    assert code == 0, out
    (row,) = [line for line in out.splitlines() if "sim-gpt-mini" in line]
    assert [cell.strip() for cell in row.split("│")[2:4]] == ["1", "2"]  # reused twice
    assert "semantic: sim-embed-small on pgvector, threshold 0.95" in out

    code, out = run(capsys, "cache", "purge", "--model", "sim-gpt-mini", "--api", api_url)
    assert (code, out.strip()) == (0, "deleted 1 cached answer(s)")
    assert tenant.get("/v1/cache").json()["entries"] == 0
