"""The model catalog shipped with Switchboard: providers, models, prices and default limits.

``catalog.toml`` beside this module is the registry's seed; ``switchboard migrate`` and
``switchboard up`` sync it into Postgres. :func:`load_catalog` parses and validates it strictly
(unknown keys, unknown wire formats or capabilities, dangling providers, duplicate ids or
aliases, float prices, impossible token limits are all :class:`CatalogError`) and returns
frozen value objects. Prices stay :class:`~decimal.Decimal` from file to ledger: the file
writes them as strings, because a TOML float would already have lost the exact cents.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

WireFormat = Literal[
    "openai", "anthropic", "gemini", "ollama", "openrouter", "groq", "lmstudio", "vllm"
]
Capability = Literal[
    "chat", "completion", "embeddings", "tools", "vision", "json_mode", "audio", "reasoning"
]
WIRE_FORMATS: frozenset[str] = frozenset(get_args(WireFormat))
CAPABILITIES: frozenset[str] = frozenset(get_args(Capability))

DEFAULT_SIMULATOR_URL = "http://127.0.0.1:8100"
SIMULATOR_PLACEHOLDER = "{simulator_url}"

# Provider names become Celery queue names ("<provider>.<priority>"), so no dots.
_PROVIDER_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")
_ENV_VAR = r"^[A-Z_][A-Z0-9_]*$"
_PRICE = re.compile(r"\d{1,6}(\.\d{1,6})?")  # what a NUMERIC(12, 6) column holds
_URL = re.compile(r"https?://[^\s{}]+")
_TOP_KEYS = frozenset({"providers", "models"})


MODEL_ID_PATTERN = f"^{_MODEL_ID.pattern}$"
PROVIDER_NAME_PATTERN = f"^{_PROVIDER_NAME.pattern}$"


def parse_price(value: object) -> Decimal:
    """A price in USD per million tokens, from a string (a float can't hold one exactly).

    Raises ``ValueError`` (which pydantic reports as a field error) for anything else.
    """
    if not isinstance(value, str):
        raise ValueError(
            f'must be a string such as "0.15" (USD per million tokens), not '
            f"{type(value).__name__} {value!r}: a float cannot hold a price exactly"
        )
    if not _PRICE.fullmatch(value):
        raise ValueError(f'must be a non-negative decimal such as "0.15", got {value!r}')
    return Decimal(value)


class CatalogError(ValueError):
    """The catalog file is malformed; the message names each culprit and field."""


@dataclass(frozen=True, slots=True)
class CatalogProvider:
    """A provider endpoint and the default limits of one of its keys (None: unlimited)."""

    name: str
    display_name: str
    wire_format: str
    base_url: str
    api_key_env: str | None
    rpm: int | None
    tpm: int | None
    itpm: int | None
    otpm: int | None
    burst_s: int
    simulated: bool


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A model callers can name, the provider serving it, its limits and its list prices.

    Prices are USD per million tokens; ``rpm``/``tpm`` override the provider's defaults.
    """

    id: str
    provider: str
    upstream: str
    context_window: int
    max_output_tokens: int
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    capabilities: frozenset[str]
    rpm: int | None
    tpm: int | None
    aliases: tuple[str, ...]
    deprecated: bool
    # Routing priors: a typical latency (ms) and a 0-100 benchmark-derived quality score.
    latency_ms_hint: int | None = None
    quality: int | None = None


@dataclass(frozen=True)
class Catalog:
    """Every provider and model of a catalog file, keyed by provider name and model id."""

    providers: dict[str, CatalogProvider]
    models: dict[str, CatalogModel]
    _by_alias: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_alias = {alias: m.id for m in self.models.values() for alias in m.aliases}
        object.__setattr__(self, "_by_alias", by_alias)

    def model(self, id_or_alias: str) -> CatalogModel:
        """The model with this id or alias; ``KeyError`` if the catalog has none."""
        found = self.models.get(id_or_alias)
        if found is not None:
            return found
        canonical = self._by_alias.get(id_or_alias)
        if canonical is None:
            raise KeyError(id_or_alias)
        return self.models[canonical]


class _Strict(BaseModel):
    # strict: a TOML float is not an int, an int is not a string, a string is not a bool.
    model_config = ConfigDict(extra="forbid", strict=True)


class _ProviderSpec(_Strict):
    display_name: str = Field(min_length=1)
    wire_format: WireFormat
    base_url: str
    api_key_env: str | None = Field(default=None, pattern=_ENV_VAR)
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    itpm: PositiveInt | None = None
    otpm: PositiveInt | None = None
    burst_s: PositiveInt = 60
    simulated: bool = False

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if "{" in value or "}" in value:
            raise ValueError(
                f"unknown placeholder in {value!r} (only {SIMULATOR_PLACEHOLDER} is substituted)"
            )
        if not _URL.fullmatch(value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")


class _ModelSpec(_Strict):
    id: str = Field(pattern=f"^{_MODEL_ID.pattern}$")
    provider: str = Field(min_length=1)
    upstream: str = Field(min_length=1)
    context_window: PositiveInt
    max_output_tokens: PositiveInt
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    capabilities: list[Capability] = Field(min_length=1)
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    aliases: list[str] = Field(default_factory=list)
    deprecated: bool = False
    latency_ms_hint: PositiveInt | None = None
    quality: Annotated[int, Field(ge=0, le=100)] | None = None

    @field_validator("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", mode="before")
    @classmethod
    def _parse_price(cls, value: object) -> Decimal:
        return parse_price(value)

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, value: list[str]) -> list[str]:
        for alias in value:
            if not _MODEL_ID.fullmatch(alias):
                raise ValueError(f"alias {alias!r} is not a valid model id")
        return value

    @model_validator(mode="after")
    def _check_output_fits(self) -> Self:
        if self.max_output_tokens > self.context_window:
            raise ValueError(
                f"max_output_tokens ({self.max_output_tokens}) exceeds "
                f"context_window ({self.context_window})"
            )
        return self


def load_catalog(
    path: Path | None = None,
    *,
    simulator_url: str = DEFAULT_SIMULATOR_URL,
    base_urls: Mapping[str, str] | None = None,
) -> Catalog:
    """Read and validate a catalog file (default: the packaged ``catalog.toml``).

    ``{simulator_url}`` in a provider's ``base_url`` is replaced by ``simulator_url``;
    ``base_urls`` (``SWITCHBOARD_BASE_URLS``) replaces the ``base_url`` of the providers it
    names (a local server on another host, a proxy in front of a cloud provider).
    Raises :class:`CatalogError` listing every problem found, each naming its culprit.
    """
    if path is None:
        source = "app/registry/catalog.toml"
        raw = resources.files("app.registry").joinpath("catalog.toml").read_bytes()
    else:
        source = str(path)
        raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from exc
    if not _URL.fullmatch(simulator_url):
        raise CatalogError(f"simulator_url must be an http(s) URL, got {simulator_url!r}")
    return _build(
        data, source=source, simulator_url=simulator_url.rstrip("/"), base_urls=base_urls or {}
    )


def _build(
    data: dict[str, Any], *, source: str, simulator_url: str, base_urls: Mapping[str, str]
) -> Catalog:
    problems: list[str] = [
        f"unknown top-level key {key!r}" for key in sorted(data.keys() - _TOP_KEYS)
    ]

    raw_providers = data.get("providers", {})
    if not isinstance(raw_providers, dict):
        problems.append("'providers' must be a table of [providers.<name>] tables")
        raw_providers = {}
    problems.extend(
        f"base_urls names {name!r}, which is not a provider of the catalog"
        for name in sorted(base_urls.keys() - raw_providers.keys())
    )
    providers: dict[str, CatalogProvider] = {}
    for name, raw in raw_providers.items():
        where = f"provider {name!r}"
        if not _PROVIDER_NAME.fullmatch(name):
            problems.append(f"{where}: name must be lowercase letters, digits and '-'")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a table")
            continue
        url = base_urls.get(name, raw.get("base_url"))
        if isinstance(url, str):
            raw = {**raw, "base_url": url.replace(SIMULATOR_PLACEHOLDER, simulator_url)}
        try:
            spec = _ProviderSpec.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_describe(where, exc))
            continue
        providers[name] = CatalogProvider(name=name, **spec.model_dump())

    raw_models = data.get("models", [])
    if not isinstance(raw_models, list):
        problems.append("'models' must be an array of [[models]] tables")
        raw_models = []
    models: dict[str, CatalogModel] = {}
    owners: dict[str, str] = {}  # every id and alias -> the model id that claims it
    for index, raw in enumerate(raw_models):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        where = f"model {raw_id!r}" if isinstance(raw_id, str) else f"models[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a table")
            continue
        try:
            spec_m = _ModelSpec.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_describe(where, exc))
            continue
        if spec_m.provider not in raw_providers:
            problems.append(f"{where}: provider: no provider named {spec_m.provider!r}")
        clash = False
        for name in (spec_m.id, *spec_m.aliases):
            kind = "id" if name == spec_m.id else "alias"
            if name in owners:
                problems.append(
                    f"{where}: duplicate {kind} {name!r}, already claimed by model {owners[name]!r}"
                )
                clash = True
            else:
                owners[name] = spec_m.id
        if clash:
            continue
        models[spec_m.id] = CatalogModel(
            id=spec_m.id,
            provider=spec_m.provider,
            upstream=spec_m.upstream,
            context_window=spec_m.context_window,
            max_output_tokens=spec_m.max_output_tokens,
            input_per_mtok=spec_m.input_per_mtok,
            output_per_mtok=spec_m.output_per_mtok,
            cached_input_per_mtok=spec_m.cached_input_per_mtok,
            capabilities=frozenset(spec_m.capabilities),
            rpm=spec_m.rpm,
            tpm=spec_m.tpm,
            aliases=tuple(spec_m.aliases),
            deprecated=spec_m.deprecated,
            latency_ms_hint=spec_m.latency_ms_hint,
            quality=spec_m.quality,
        )

    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise CatalogError(f"{source}: invalid catalog ({count}):\n{listing}")
    return Catalog(providers=providers, models=models)


def _describe(where: str, exc: ValidationError) -> list[str]:
    """One line per pydantic error: culprit, field path, and what was wrong."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        prefix = f"{where}: {loc}" if loc else where
        kind = err["type"]
        if kind == "extra_forbidden":
            lines.append(f"{where}: unknown key {loc!r}")
        elif kind == "missing":
            lines.append(f"{prefix}: missing required key")
        elif kind == "value_error":
            lines.append(f"{prefix}: {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"{prefix}: {err['msg']} (got {err['input']!r})")
    return lines
