"""``switchboard policies`` against the real API: the round trip, and one-line errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from app.cli.main import main


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, admin_key: str) -> None:
    """The CLI calls as the operator; rich wraps at 80 columns when not on a terminal, and a
    real one is usually wider."""
    monkeypatch.setenv("SWITCHBOARD_API_KEY", admin_key)
    monkeypatch.setenv("COLUMNS", "250")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_policies_round_trip_through_the_cli(
    api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    api = ("--api", api_url)
    policy = {
        "name": name,
        "priority": -5,
        "rules": [
            {"match": {"language": "go"}, "route": {"models": ["sim-gpt-large"]}},
            {"route": {"models": ["sim-gpt-mini"], "fallbacks": ["sim-claude-haiku"]}},
        ],
    }
    file = tmp_path / "policy.json"
    file.write_text(json.dumps(policy))
    try:
        code, out, _ = run(capsys, "policies", "create", str(file), *api)
        assert code == 0
        assert f"created policy {name} (2 rules)" in out

        code, out, _ = run(capsys, "policies", "list", *api)
        assert code == 0
        assert name in out

        code, shown_out, _ = run(capsys, "policies", "show", name, *api)
        assert code == 0
        assert json.loads(shown_out)["priority"] == -5

        code, out, _ = run(
            capsys, "policies", "resolve", name, "--meta", "language=go", "--json", *api
        )
        assert code == 0
        assert json.loads(out)["models"] == ["sim-gpt-large"]
        code, out, _ = run(capsys, "policies", "resolve", name, "--meta", "language=c", *api)
        assert code == 0
        assert "rule 1 (default)" in out
        assert "sim-gpt-mini -> sim-claude-haiku" in out

        shown = json.loads(shown_out)  # show, edit, update: the shown object is a valid file
        shown["rules"] = shown["rules"][:1]
        file.write_text(json.dumps(shown))
        code, out, _ = run(capsys, "policies", "update", name, str(file), *api)
        assert code == 0
        assert "(1 rules)" in out
        code, _, err = run(capsys, "policies", "resolve", name, "--meta", "language=c", *api)
        assert code == 1
        assert err.strip().startswith("error: no_matching_rule:")
        assert len(err.strip().splitlines()) == 1

        code, out, _ = run(capsys, "policies", "delete", name, *api)
        assert code == 0
        assert f"deleted policy {name}" in out
        code, _, err = run(capsys, "policies", "show", name, *api)
        assert code == 1
        assert err.startswith("error: policy_not_found:")
    finally:
        run(capsys, "policies", "delete", name, *api)


def test_cli_errors_are_one_readable_line(
    api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = ("--api", api_url)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(
        json.dumps({"name": "cli-unknown", "rules": [{"route": {"models": ["gpt-9"]}}]})
    )
    cases = [
        (("policies", "create", str(broken)), "error: invalid_json:"),
        (("policies", "create", str(tmp_path / "absent.json")), "error: unreadable_file:"),
        (("policies", "create", str(unknown)), "error: unknown_model:"),
        (("policies", "resolve", "CodeGeneration", "--meta", "language"), "error: invalid_meta:"),
    ]
    for args, start in cases:
        code, out, err = run(capsys, *args, *api)
        assert code == 1, (args, out, err)
        assert err.startswith(start), (args, err)
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
