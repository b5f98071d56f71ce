"""``switchboard routing`` against the real API process."""

from __future__ import annotations

import pytest

from app.cli.main import main


def test_choose_prints_the_reason_and_chain(
    api_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["routing", "choose", "--strategy", "quality", "--capability", "vision", "--api", api_url])
    out = capsys.readouterr().out
    assert "highest-quality chat/vision model: gemini-2.5-pro" in out
    assert "chain: gemini-2.5-pro -> " in out


def test_an_impossible_route_is_one_error_line(
    api_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "routing",
                "choose",
                "--capability",
                "embeddings",
                "--capability",
                "vision",
                "--api",
                api_url,
            ]
        )
    assert exited.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no_model_available: ")
    assert "capabilities (chat, embeddings, vision) filter" in " ".join(err.split())
    assert "Traceback" not in err


def test_performance_of_one_model(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["routing", "performance", "sim-gpt-mini", "--api", api_url])
    assert "sim-gpt-mini" in capsys.readouterr().out
