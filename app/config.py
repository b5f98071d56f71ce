"""Settings, read once at the edges (API factory, Celery app, CLI) and passed down."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from app.constants import MAX_CACHE_TTL_S
from app.errors import InvalidSettings

ENV_PREFIX = "SWITCHBOARD_"


class Settings(BaseSettings):
    """Switchboard's configuration, from ``SWITCHBOARD_*`` environment variables.

    ``DATABASE_URL`` and ``REDIS_URL`` are read without the prefix, as most deployments name
    them. When either is unset, the CLI starts the embedded PostgreSQL / Redis in ``data_dir``.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SWITCHBOARD_DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "SWITCHBOARD_REDIS_URL")
    )
    data_dir: Path = Path(".switchboard")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    flower_port: int = 5555
    # Flower always asks for a login: this user with this password, else (no password set)
    # a password made once in the data folder; Flower's own FLOWER_BASIC_AUTH wins over both.
    flower_user: str = "admin"
    flower_password: SecretStr | None = None
    simulator_host: str = "127.0.0.1"
    simulator_port: int = 8100
    simulator_url: str | None = None
    # Where shipped providers are reached instead of the catalog's base_url, by provider name
    # (JSON: {"ollama": "http://host.docker.internal:11434"}); applied when migrating.
    base_urls: dict[str, str] = {}

    # Workers
    worker_concurrency: int = 32
    attempt_timeout_s: float = 60.0
    lease_margin_s: float = 30.0
    max_in_slot_wait_s: float = 1.0
    registry_refresh_s: float = 5.0

    # Jobs
    default_deadline_s: float = 24 * 3600.0
    max_batch_requests: int = 50_000
    max_request_bytes: int = 200 * 1024 * 1024
    # POST /v1/files: OpenAI's limit for a batch input file (its lines: max_batch_requests).
    max_file_bytes: int = 200 * 1024 * 1024
    # POST /v1/chat/completions waits this long for its job, then answers 504 with the job id.
    chat_wait_timeout_s: float = 600.0

    # Live model performance (app/routing/performance.py)
    performance_window_s: float = 15 * 60.0
    performance_refresh_s: float = 3.0
    performance_min_samples: int = 10

    # Reconciler and broker
    reconcile_interval_s: float = 10.0
    stale_queued_s: float = 30.0
    visibility_timeout_s: int = 300

    # Webhooks: retries back off exponentially with full jitter (a random delay up to
    # min(cap, base * factor^(n-1))) for up to max_attempts tries; the sweep republishes due
    # and stranded outbox rows every sweep interval.
    webhook_retry_base_s: float = 5.0
    webhook_retry_factor: float = 4.0
    webhook_retry_cap_s: float = 3600.0
    webhook_max_attempts: int = 8
    webhook_sweep_interval_s: float = 2.0
    webhook_lease_s: float = 60.0
    webhook_connect_timeout_s: float = 5.0
    webhook_timeout_s: float = 10.0
    # Receivers on internal addresses (127.0.0.1, 10.x, ...) are refused unless allowed here.
    webhook_allow_private: bool = False
    webhook_allow_hosts: list[str] = []
    webhook_concurrency: int = 8

    # Prometheus: the API serves /metrics beside its endpoints; each worker process serves its
    # own at metrics_host:metrics_port (0: none). With a token set (an empty one is unset),
    # every /metrics answers only to `Authorization: Bearer <token>`.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    metrics_token: SecretStr | None = None

    # OpenRouter's app attribution: sent as HTTP-Referer / X-Title on its requests when set.
    openrouter_site_url: str | None = None
    openrouter_app_name: str | None = None
    # Response cache (app/cache): requests that do not say `cache.mode` get `cache_default_mode`
    # ("exact": deterministic requests only; "off": none); an answer is reused for `ttl` seconds
    # after it was produced. The semantic cache embeds prompts with `cache_embedding_model` (an
    # embeddings model of the registry; unset: semantic requests are refused) at its native size
    # or `cache_embedding_dimensions`, and reuses an answer whose prompt is at least
    # `cache_semantic_threshold` similar (cosine). `cache_semantic_index`: "auto" uses pgvector
    # where the database has it, else an in-process index. Each tenant keeps at most
    # `cache_max_entries` answers (the least recently used go first).
    cache_default_mode: Literal["exact", "off"] = "exact"
    cache_ttl_s: int = Field(default=24 * 3600, ge=1, le=MAX_CACHE_TTL_S)
    cache_embedding_model: str | None = None
    cache_embedding_dimensions: int | None = Field(default=None, ge=1, le=8192)
    cache_semantic_threshold: float = Field(default=0.95, gt=0, le=1)
    cache_semantic_index: Literal["auto", "pgvector", "in_process"] = "auto"
    cache_max_entries: int = Field(default=100_000, ge=1)

    secret_key: SecretStr | None = None
    # The operator's key to the API; tenants call with gateway keys the admin issues.
    admin_key: SecretStr | None = None

    @property
    def resolved_simulator_url(self) -> str:
        return self.simulator_url or f"http://{self.simulator_host}:{self.simulator_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings; a variable that does not parse is ``InvalidSettings`` naming it."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ENV_PREFIX + "_".join(str(part) for part in first["loc"]).upper()
        raise InvalidSettings(f"{name}: {first['msg']}") from exc
    except SettingsError as exc:  # a JSON value that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = ENV_PREFIX + field.group(1).upper() if field else "a SWITCHBOARD_* variable"
        raise InvalidSettings(f"{name}: not valid JSON ({exc.__cause__ or exc})") from exc
