"""``switchboard keys`` and ``switchboard models --provider/--capability`` against the real API."""

from __future__ import annotations

import uuid

import httpx
import pytest
from typer.testing import CliRunner

from app.cli.main import cli, main

SECRET = "sk-cli-secret-0123456789abcdEFGH"
runner = CliRunner(env={"COLUMNS": "200"})


def key_by_label(api: httpx.Client, provider: str, label: str) -> dict[str, object]:
    keys = api.get(f"/v1/providers/{provider}/keys").json()["data"]
    found: dict[str, object] = next(k for k in keys if k["label"] == label)
    return found


def test_keys_add_list_disable_enable_rotate_delete(
    api: httpx.Client, api_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    label = f"cli-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("SIM_KEY", SECRET)
    added = runner.invoke(
        cli,
        [
            "keys",
            "add",
            "sim-gemini",
            label,
            "--secret-env",
            "SIM_KEY",
            "--rpm",
            "30",
            "--api",
            api_url,
        ],
    )
    assert added.exit_code == 0, added.output
    assert "EFGH" in added.output
    assert SECRET not in added.output
    key = key_by_label(api, "sim-gemini", label)
    assert key["rpm"] == 30
    key_id = str(key["id"])
    try:
        listed = runner.invoke(cli, ["keys", "list", "--provider", "sim-gemini", "--api", api_url])
        assert listed.exit_code == 0, listed.output
        assert label in listed.output
        assert SECRET not in listed.output

        disabled = runner.invoke(
            cli, ["keys", "disable", "sim-gemini", key_id, "--reason", "paused", "--api", api_url]
        )
        assert disabled.exit_code == 0, disabled.output
        assert key_by_label(api, "sim-gemini", label)["disabled_reason"] == "paused"
        enabled = runner.invoke(cli, ["keys", "enable", "sim-gemini", key_id, "--api", api_url])
        assert enabled.exit_code == 0, enabled.output
        assert key_by_label(api, "sim-gemini", label)["status"] == "enabled"

        rotated_secret = "sk-cli-rotated-9876543210zyxwIJKL"
        rotated = runner.invoke(
            cli,
            ["keys", "rotate", "sim-gemini", key_id, "--api", api_url],
            input=rotated_secret + "\n",
        )
        assert rotated.exit_code == 0, rotated.output
        assert rotated_secret not in rotated.output  # the prompt does not echo it
        assert key_by_label(api, "sim-gemini", label)["last_four"] == "IJKL"

        deleted = runner.invoke(cli, ["keys", "delete", "sim-gemini", key_id, "--api", api_url])
        assert deleted.exit_code == 0, deleted.output
        assert label not in {
            k["label"] for k in api.get("/v1/providers/sim-gemini/keys").json()["data"]
        }
    finally:
        api.delete(f"/v1/providers/sim-gemini/keys/{key_id}")


def test_cli_errors_are_one_line(
    api_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIM_KEY", SECRET)
    with pytest.raises(SystemExit) as unknown:
        main(["keys", "add", "nowhere", "x", "--secret-env", "SIM_KEY", "--api", api_url])
    assert unknown.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["error: unknown_provider: unknown provider 'nowhere'"]
    assert SECRET not in err

    with pytest.raises(SystemExit) as unset:
        main(
            ["keys", "add", "sim-gemini", "x", "--secret-env", "NOT_SET_ANYWHERE", "--api", api_url]
        )
    assert unset.value.code == 1
    assert "NOT_SET_ANYWHERE" in capsys.readouterr().err

    with pytest.raises(SystemExit) as missing:
        main(["keys", "disable", "sim-gemini", "key_nope", "--api", api_url])
    assert missing.value.code == 1
    assert "key_not_found" in capsys.readouterr().err


def test_models_filters(api_url: str) -> None:
    by_provider = runner.invoke(cli, ["models", "--provider", "sim-anthropic", "--api", api_url])
    assert by_provider.exit_code == 0, by_provider.output
    assert "sim-claude-haiku" in by_provider.output
    assert "sim-gpt-mini" not in by_provider.output

    embeddings = runner.invoke(
        cli, ["models", "--capability", "embeddings", "--capability", "chat", "--api", api_url]
    )
    assert embeddings.exit_code == 0
    chat_only = runner.invoke(cli, ["models", "--capability", "chat", "--api", api_url])
    assert "sim-gpt-mini" in chat_only.output
    assert "sim-gpt-mini" not in embeddings.output
