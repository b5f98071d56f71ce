"""Bringing a database to the current schema and loading the shipped model catalog."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool

from app.db.engine import make_sessionmaker, unit_of_work
from app.embedded import to_sqlalchemy_url
from app.policies.seeds import seed_policies
from app.registry.catalog import load_catalog
from app.registry.service import SyncReport, load_registry, sync_catalog

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = to_sqlalchemy_url(url)
    return config


def migrate(
    url: str, *, simulator_url: str, base_urls: Mapping[str, str] | None = None
) -> SyncReport:
    """Upgrade to the newest revision, upsert the catalog (its providers' ``base_url``
    replaced where ``base_urls`` names them), then add the shipped routing policies the
    database lacks (idempotent; safe to rerun)."""
    catalog = load_catalog(simulator_url=simulator_url, base_urls=base_urls)  # before any change
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            report = sync_catalog(session, catalog)
            session.flush()
            seed_policies(session, load_registry(session))
            return report
    finally:
        engine.dispose()
