"""The routing policies Switchboard ships (``seeds.toml``), loaded by ``switchboard migrate``."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.policies.schemas import PolicyCreate
from app.policies.store import check_rules, insert_missing
from app.registry.service import Registry

SEEDS = Path(__file__).with_name("seeds.toml")

log = logging.getLogger(__name__)


def shipped_policies(path: Path = SEEDS) -> list[PolicyCreate]:
    """The shipped policies, shape-checked (the registry check needs a database)."""
    with path.open("rb") as f:
        data = tomllib.load(f)
    return [PolicyCreate.model_validate(p) for p in data.get("policies", [])]


def seed_policies(session: Session, registry: Registry, path: Path = SEEDS) -> list[str]:
    """Insert the shipped policies the database lacks; the names inserted. One that names a
    model this registry does not serve (an operator disabled it) is skipped with a warning
    rather than failing the whole migration."""
    ready = []
    for policy in shipped_policies(path):
        try:
            rules = check_rules(policy, registry)
        except InvalidInput as exc:
            log.warning("shipped routing policy %s skipped: %s", policy.name, exc.message)
            continue
        ready.append((policy.name, policy.model_copy(update={"rules": rules})))
    return insert_missing(session, ready)
