"""Rate limits over HTTP: 429s with retry-after, rate-limit headers, refunds and scopes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from app.simulator.formats.openai import go_duration

if TYPE_CHECKING:
    from tests.simulator.conftest import RunningSimulator

GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?(ms|s))$")


def limited(sim: RunningSimulator, provider: str, **limits: Any) -> None:
    sim.configure(sim.fast_config(**{provider: limits}))


def test_second_request_within_the_burst_is_refused(sim: RunningSimulator) -> None:
    limited(sim, "sim-openai", rpm=60, burst_s=1)  # capacity 1 request, 1 more per second
    first = sim.chat("openai")
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "60"
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    second = sim.chat("openai")
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1
    assert 0 < int(second.headers["retry-after-ms"]) <= 1000
    error = second.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "requests")
    assert "requests per min (RPM): Limit 60" in error["message"]
    stats = sim.stats()["providers"]["sim-openai"]
    assert stats["rate_limited"] == 1
    assert stats["responses"] == {"200": 1, "429": 1}
    assert stats["injected"] == {}


@pytest.mark.parametrize(
    ("fmt", "provider"),
    [("anthropic", "sim-anthropic"), ("gemini", "sim-gemini"), ("ollama", "sim-ollama")],
)
def test_every_format_answers_its_own_429(sim: RunningSimulator, fmt: str, provider: str) -> None:
    limited(sim, provider, rpm=60, burst_s=1)
    assert sim.chat(fmt).status_code == 200
    refused = sim.chat(fmt)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    body = refused.json()
    if fmt == "anthropic":
        assert body["error"]["type"] == "rate_limit_error"
    elif fmt == "gemini":
        assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
        retry = [d for d in body["error"]["details"] if d["@type"].endswith("RetryInfo")]
        assert retry[0]["retryDelay"].endswith("s")
    else:
        assert isinstance(body["error"], str)


def test_tokens_are_all_or_nothing(sim: RunningSimulator) -> None:
    limited(sim, "sim-openai", rpm=600, tpm=1000)
    first = sim.chat("openai", max_tokens=600)  # 10 prompt + 600 reserved
    assert first.status_code == 200
    assert first.headers["x-ratelimit-remaining-requests"] == "599"
    assert first.headers["x-ratelimit-remaining-tokens"] == "390"
    refused = sim.chat("openai", max_tokens=5000)  # larger than the whole bucket
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-remaining-requests"] == "599"  # took no request token
    assert refused.json()["error"]["type"] == "tokens"
    small = sim.chat("openai", max_tokens=100)
    assert small.status_code == 200
    assert small.headers["x-ratelimit-remaining-requests"] == "598"


def test_unused_output_is_refunded(sim: RunningSimulator) -> None:
    config = sim.fast_config(**{"sim-openai": {"tpm": 1000}})
    config["providers"]["sim-openai"]["models"]["sim-gpt-mini"]["output_tokens"] = [8, 8]
    sim.configure(config)
    # 10 + 700 reserved, 692 of it unused: without the refund the second would not fit.
    assert sim.chat("openai", max_tokens=700).status_code == 200
    second = sim.chat("openai", max_tokens=700)
    assert second.status_code == 200
    remaining = int(second.headers["x-ratelimit-remaining-tokens"])
    assert 1000 - 18 - 710 <= remaining <= 1000 - 18 - 710 + 2  # plus a few ms of refill


def test_each_key_has_its_own_buckets(sim: RunningSimulator) -> None:
    limited(sim, "sim-openai", rpm=60, burst_s=1, keys=["key-a", "key-b"])
    a = {"authorization": "Bearer key-a"}
    b = {"authorization": "Bearer key-b"}
    assert sim.chat("openai", headers=a).status_code == 200
    assert sim.chat("openai", headers=a).status_code == 429
    assert sim.chat("openai", headers=b).status_code == 200
    by_key = sim.stats()["providers"]["sim-openai"]["by_key"]
    assert len(by_key) == 2
    assert all("key-" not in fingerprint for fingerprint in by_key)
    assert sorted(c["rate_limited"] for c in by_key.values()) == [0, 1]


def test_provider_scope_shares_the_buckets(sim: RunningSimulator) -> None:
    limited(sim, "sim-openai", rpm=60, burst_s=1, limit_scope="provider")
    assert sim.chat("openai", headers={"authorization": "Bearer one"}).status_code == 200
    assert sim.chat("openai", headers={"authorization": "Bearer two"}).status_code == 429


def test_openai_resets_are_go_durations(sim: RunningSimulator) -> None:
    limited(sim, "sim-openai", rpm=30, tpm=100_000)
    response = sim.chat("openai")
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        assert GO_DURATION.match(response.headers[name]), response.headers[name]
    assert response.headers["x-ratelimit-reset-requests"] == "2s"  # one request at 0.5/s
    assert [go_duration(s) for s in (0, 0.012, 3.89, 360, 3725.5)] == [
        "0s",
        "12ms",
        "3.89s",
        "6m0s",
        "1h2m5.5s",
    ]


def test_anthropic_headers_have_rfc3339_resets(sim: RunningSimulator) -> None:
    limited(sim, "sim-anthropic", rpm=50, itpm=30_000, otpm=8_000)
    response = sim.chat("anthropic", max_tokens=100)
    headers = response.headers
    assert headers["anthropic-ratelimit-requests-limit"] == "50"
    assert headers["anthropic-ratelimit-requests-remaining"] == "49"
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == str(30_000 - 10)
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == str(8_000 - 100)
    assert headers["anthropic-ratelimit-tokens-limit"] == "38000"  # input + output
    for kind in ("requests", "input-tokens", "output-tokens", "tokens"):
        reset = headers[f"anthropic-ratelimit-{kind}-reset"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", reset)
        moment = datetime.strptime(reset, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert 0 <= (moment - datetime.now(UTC)).total_seconds() <= 3


def test_an_injected_429_costs_nothing_and_is_not_counted_as_limited(
    sim: RunningSimulator,
) -> None:
    config = sim.fast_config(**{"sim-openai": {"rpm": 60}})
    config["providers"]["sim-openai"]["models"]["sim-gpt-mini"]["errors"] = {"rate_limit": 1.0}
    sim.configure(config)
    response = sim.chat("openai")
    assert response.status_code == 429
    assert response.headers["x-ratelimit-remaining-requests"] == "60"
    stats = sim.stats()["providers"]["sim-openai"]
    assert (stats["rate_limited"], stats["injected"]) == (0, {"rate_limit": 1})
