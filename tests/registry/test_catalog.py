"""The shipped model catalog loads and is sound; bad catalogs fail naming the culprit."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from app.registry.catalog import (
    CAPABILITIES,
    WIRE_FORMATS,
    Catalog,
    CatalogError,
    load_catalog,
)

# ------------------------------------------------------------------------------------------
# The shipped catalog
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_shipped_catalog_has_every_provider(catalog: Catalog) -> None:
    assert set(catalog.providers) == {
        "openai",
        "anthropic",
        "gemini",
        "groq",
        "openrouter",
        "ollama",
        "lmstudio",
        "sim-openai",
        "sim-anthropic",
        "sim-gemini",
        "sim-ollama",
        "sim-groq",
        "sim-openrouter",
        "sim-vllm",
        "sim-lmstudio",
    }
    for name, provider in catalog.providers.items():
        assert provider.name == name
        assert provider.wire_format in WIRE_FORMATS
        assert provider.simulated == name.startswith("sim-")


def test_every_model_refers_to_an_existing_provider(catalog: Catalog) -> None:
    for model in catalog.models.values():
        assert model.provider in catalog.providers, model.id
        assert model.capabilities <= CAPABILITIES
        assert 0 < model.max_output_tokens <= model.context_window


def test_ids_and_aliases_are_unique_and_resolve(catalog: Catalog) -> None:
    names = [n for m in catalog.models.values() for n in (m.id, *m.aliases)]
    assert len(names) == len(set(names))
    for model in catalog.models.values():
        for name in (model.id, *model.aliases):
            assert catalog.model(name) is model


@pytest.mark.parametrize(
    ("model_id", "upstream", "deprecated"),
    [
        ("gpt-4-turbo", "gpt-4-turbo-2024-04-09", False),
        ("gpt-3.5-turbo", "gpt-3.5-turbo-0125", False),
        ("claude-3-opus", "claude-3-opus-20240229", True),
        ("claude-3-sonnet", "claude-3-sonnet-20240229", True),
    ],
)
def test_the_seeds_defaults_are_kept(
    catalog: Catalog, model_id: str, upstream: str, deprecated: bool
) -> None:
    model = catalog.model(model_id)
    assert model.upstream == upstream
    assert model.deprecated is deprecated


def test_alias_lookup_and_unknown_model(catalog: Catalog) -> None:
    assert catalog.model("claude-3-opus-20240229").id == "claude-3-opus"
    assert catalog.model("gpt-4o-mini-2024-07-18").id == "gpt-4o-mini"
    with pytest.raises(KeyError, match="no-such-model"):
        catalog.model("no-such-model")


def test_prices_are_exact_decimals(catalog: Catalog) -> None:
    mini = catalog.model("gpt-4o-mini")
    assert mini.input_per_mtok == Decimal("0.15")
    assert mini.output_per_mtok == Decimal("0.60")
    assert mini.cached_input_per_mtok == Decimal("0.075")
    for model in catalog.models.values():
        assert isinstance(model.input_per_mtok, Decimal)
        assert isinstance(model.output_per_mtok, Decimal)
        assert model.cached_input_per_mtok is None or isinstance(
            model.cached_input_per_mtok, Decimal
        )
    # Exactness that a float would break: 1M tokens of 0.1 + 0.2 per mtok is exactly 0.3.
    flash = catalog.model("gemini-2.0-flash")
    assert flash.input_per_mtok + Decimal("0.20") == Decimal("0.30")


def test_namespaced_and_local_models(catalog: Catalog) -> None:
    assert catalog.model("groq/llama-3.1-8b-instant").upstream == "llama-3.1-8b-instant"
    router = catalog.model("openrouter/meta-llama/llama-3.1-70b-instruct")
    assert router.provider == "openrouter"
    assert router.upstream == "meta-llama/llama-3.1-70b-instruct"
    for model in catalog.models.values():
        if model.provider in {"groq", "openrouter", "ollama", "lmstudio"}:
            assert model.id.startswith(f"{model.provider}/"), model.id
        if model.provider in {"ollama", "lmstudio"}:
            assert model.input_per_mtok == model.output_per_mtok == 0
    ollama = catalog.providers["ollama"]
    assert ollama.api_key_env is None
    assert ollama.rpm is ollama.tpm is None
    anthropic = catalog.providers["anthropic"]
    assert anthropic.itpm is not None
    assert anthropic.otpm is not None


@pytest.mark.parametrize(
    ("model_id", "provider", "window", "max_out", "price_in", "price_out"),
    [
        ("sim-gpt-mini", "sim-openai", 128000, 4096, "0.15", "0.60"),
        ("sim-gpt-large", "sim-openai", 128000, None, "2.50", "10.00"),
        ("sim-claude-haiku", "sim-anthropic", 200000, None, "0.80", "4.00"),
        ("sim-claude-sonnet", "sim-anthropic", 200000, None, "3.00", "15.00"),
        ("sim-gemini-flash", "sim-gemini", 1000000, None, "0.10", "0.40"),
        ("sim-llama-small", "sim-ollama", 8192, 2048, "0", "0"),
    ],
)
def test_simulator_models_are_fixed(
    catalog: Catalog,
    model_id: str,
    provider: str,
    window: int,
    max_out: int | None,
    price_in: str,
    price_out: str,
) -> None:
    model = catalog.model(model_id)
    assert model.provider == provider
    assert model.upstream == model_id
    assert model.context_window == window
    if max_out is not None:
        assert model.max_output_tokens == max_out
    assert model.input_per_mtok == Decimal(price_in)
    assert model.output_per_mtok == Decimal(price_out)


def test_simulator_url_is_substituted() -> None:
    default = load_catalog()
    assert default.providers["sim-openai"].base_url == "http://127.0.0.1:8100/sim-openai/v1"
    custom = load_catalog(simulator_url="http://sim.internal:9000/")
    assert custom.providers["sim-anthropic"].base_url == "http://sim.internal:9000/sim-anthropic/v1"
    assert custom.providers["sim-gemini"].base_url == "http://sim.internal:9000/sim-gemini/v1beta"
    assert custom.providers["sim-ollama"].base_url == "http://sim.internal:9000/sim-ollama"
    assert custom.providers["openai"].base_url == "https://api.openai.com/v1"
    for provider in custom.providers.values():
        assert "{" not in provider.base_url


def test_base_urls_replace_the_named_providers_and_no_others() -> None:
    default = load_catalog()
    moved = load_catalog(
        base_urls={"ollama": "http://gpu-box.lan:11434/", "openai": "https://proxy.corp/v1"}
    )
    assert moved.providers["ollama"].base_url == "http://gpu-box.lan:11434"
    assert moved.providers["openai"].base_url == "https://proxy.corp/v1"
    unchanged = set(default.providers) - {"ollama", "openai"}
    assert {n: moved.providers[n] for n in unchanged} == {
        n: default.providers[n] for n in unchanged
    }


def test_base_urls_naming_no_provider_or_no_url_are_rejected() -> None:
    with pytest.raises(CatalogError) as unknown:
        load_catalog(base_urls={"olama": "http://gpu-box.lan:11434"})
    assert "base_urls names 'olama', which is not a provider of the catalog" in str(unknown.value)
    with pytest.raises(CatalogError, match="provider 'lmstudio': base_url: must be an http"):
        load_catalog(base_urls={"lmstudio": "gpu-box.lan:1234"})


def test_bad_simulator_url_is_rejected() -> None:
    with pytest.raises(CatalogError, match="simulator_url"):
        load_catalog(simulator_url="127.0.0.1:8100")


def test_values_are_frozen(catalog: Catalog) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.model("gpt-4o").input_per_mtok = Decimal(0)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.providers["openai"].rpm = 1  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# Validation of hand-written catalogs
# ------------------------------------------------------------------------------------------

PROVIDER = """
[providers.acme]
display_name = "Acme"
wire_format = "openai"
base_url = "https://acme.test/v1"
"""

MODEL_DEFAULTS: dict[str, str] = {
    "id": '"acme-1"',
    "provider": '"acme"',
    "upstream": '"acme-1-2025"',
    "context_window": "8192",
    "max_output_tokens": "1024",
    "input_per_mtok": '"1.00"',
    "output_per_mtok": '"2.00"',
    "capabilities": '["chat"]',
}


def model_toml(**fields: str | None) -> str:
    """One [[models]] table: MODEL_DEFAULTS with raw TOML values replaced (None drops a key)."""
    merged: dict[str, str | None] = {**MODEL_DEFAULTS, **fields}
    lines = [f"{key} = {value}" for key, value in merged.items() if value is not None]
    return "\n[[models]]\n" + "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(CatalogError) as info:
        load_catalog(write(tmp_path, text))
    return str(info.value)


def test_minimal_catalog_loads_with_defaults(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, PROVIDER + model_toml()))
    provider = catalog.providers["acme"]
    assert provider.burst_s == 60
    assert provider.simulated is False
    assert provider.api_key_env is None
    model = catalog.model("acme-1")
    assert model.cached_input_per_mtok is None
    assert model.aliases == ()
    assert model.deprecated is False
    assert model.capabilities == frozenset({"chat"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            PROVIDER.replace('"openai"', '"soap"') + model_toml(),
            ["provider 'acme'", "wire_format", "'soap'"],
            id="unknown-wire-format",
        ),
        pytest.param(
            PROVIDER + model_toml(capabilities='["chat", "telepathy"]'),
            ["model 'acme-1'", "capabilities", "'telepathy'"],
            id="unknown-capability",
        ),
        pytest.param(
            PROVIDER + model_toml(provider='"nobody"'),
            ["model 'acme-1'", "provider", "'nobody'"],
            id="missing-provider",
        ),
        pytest.param(
            PROVIDER + model_toml() + model_toml(upstream='"other"'),
            ["model 'acme-1'", "duplicate id 'acme-1'"],
            id="duplicate-id",
        ),
        pytest.param(
            PROVIDER
            + model_toml(aliases='["acme-latest"]')
            + model_toml(id='"acme-2"', aliases='["acme-latest"]'),
            ["model 'acme-2'", "duplicate alias 'acme-latest'", "model 'acme-1'"],
            id="duplicate-alias",
        ),
        pytest.param(
            PROVIDER + model_toml() + model_toml(id='"acme-2"', aliases='["acme-1"]'),
            ["model 'acme-2'", "duplicate alias 'acme-1'"],
            id="alias-shadows-id",
        ),
        pytest.param(
            PROVIDER + model_toml(aliases='["acme one"]'),
            ["model 'acme-1'", "aliases", "'acme one'"],
            id="bad-alias",
        ),
        pytest.param(
            PROVIDER + model_toml(input_per_mtok="0.15"),
            ["model 'acme-1'", "input_per_mtok", "float", "string"],
            id="float-price",
        ),
        pytest.param(
            PROVIDER + model_toml(output_per_mtok="2"),
            ["model 'acme-1'", "output_per_mtok", "int"],
            id="int-price",
        ),
        pytest.param(
            PROVIDER + model_toml(input_per_mtok='"-0.15"'),
            ["model 'acme-1'", "input_per_mtok", "non-negative", "'-0.15'"],
            id="negative-price",
        ),
        pytest.param(
            PROVIDER + model_toml(cached_input_per_mtok='"cheap"'),
            ["model 'acme-1'", "cached_input_per_mtok", "'cheap'"],
            id="unparseable-price",
        ),
        pytest.param(
            PROVIDER + model_toml(output_per_mtok='"NaN"'),
            ["model 'acme-1'", "output_per_mtok", "'NaN'"],
            id="nan-price",
        ),
        pytest.param(
            PROVIDER + model_toml(context_window="0"),
            ["model 'acme-1'", "context_window", "greater than 0"],
            id="zero-context-window",
        ),
        pytest.param(
            PROVIDER + model_toml(max_output_tokens="-5"),
            ["model 'acme-1'", "max_output_tokens", "greater than 0"],
            id="negative-max-output",
        ),
        pytest.param(
            PROVIDER + model_toml(context_window="8192.0"),
            ["model 'acme-1'", "context_window", "integer"],
            id="float-context-window",
        ),
        pytest.param(
            PROVIDER + model_toml(context_window='"8192"'),
            ["model 'acme-1'", "context_window", "integer"],
            id="string-context-window",
        ),
        pytest.param(
            PROVIDER + model_toml(max_output_tokens="16384"),
            ["model 'acme-1'", "max_output_tokens (16384) exceeds context_window (8192)"],
            id="output-exceeds-window",
        ),
        pytest.param(
            PROVIDER + model_toml(input_per_mtk='"1.00"'),
            ["model 'acme-1'", "unknown key 'input_per_mtk'"],
            id="model-typo",
        ),
        pytest.param(
            PROVIDER + "rpn = 500\n" + model_toml(),
            ["provider 'acme'", "unknown key 'rpn'"],
            id="provider-typo",
        ),
        pytest.param(
            "version = 2\n" + PROVIDER + model_toml(),
            ["unknown top-level key 'version'"],
            id="top-level-typo",
        ),
        pytest.param(
            PROVIDER + model_toml(upstream=None),
            ["model 'acme-1'", "upstream", "missing"],
            id="missing-key",
        ),
        pytest.param(
            PROVIDER + model_toml(id=None),
            ["models[0]", "id", "missing"],
            id="missing-id",
        ),
        pytest.param(
            PROVIDER.replace("https://acme.test/v1", "{sim_url}/v1") + model_toml(),
            ["provider 'acme'", "base_url", "placeholder"],
            id="unknown-placeholder",
        ),
        pytest.param(
            PROVIDER.replace("https://acme.test/v1", "acme.test/v1") + model_toml(),
            ["provider 'acme'", "base_url", "http"],
            id="url-without-scheme",
        ),
        pytest.param(
            PROVIDER + 'api_key_env = "acme key"\n' + model_toml(),
            ["provider 'acme'", "api_key_env"],
            id="bad-env-var-name",
        ),
        pytest.param(
            PROVIDER.replace("providers.acme", 'providers."acme.corp"') + model_toml(),
            ["provider 'acme.corp'", "lowercase"],
            id="bad-provider-name",
        ),
        pytest.param(
            PROVIDER + model_toml(deprecated='"yes"'),
            ["model 'acme-1'", "deprecated", "boolean"],
            id="string-bool",
        ),
    ],
)
def test_invalid_catalog_names_the_culprit(tmp_path: Path, text: str, expected: list[str]) -> None:
    message = load_error(tmp_path, text)
    assert str(tmp_path / "catalog.toml") in message
    for fragment in expected:
        assert fragment in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        PROVIDER.replace('"openai"', '"soap"')
        + model_toml(input_per_mtok="0.1")
        + model_toml(id='"acme-2"', capabilities='["mind_reading"]')
    )
    message = load_error(tmp_path, text)
    assert "3 problems" in message
    assert "provider 'acme'" in message
    assert "model 'acme-1'" in message
    assert "model 'acme-2'" in message


def test_broken_toml_is_a_catalog_error(tmp_path: Path) -> None:
    message = load_error(tmp_path, PROVIDER + "[[models]\n")
    assert "not valid TOML" in message
