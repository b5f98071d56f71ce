"""The chains Switchboard ships (``chains.toml``), by name, and choosing one for a request."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from app.errors import InvalidInput
from app.orchestration.schemas import ChainSpec

SHIPPED = Path(__file__).with_name("chains.toml")
DEFAULT = "default"
TASK_TYPE = "task_type"  # the metadata key that chooses a chain when none is named


def load_chains(path: Path = SHIPPED) -> dict[str, ChainSpec]:
    """The chains defined in ``path``, shape-checked (models are checked when one is run)."""
    with path.open("rb") as f:
        data = tomllib.load(f)
    return {name: ChainSpec.model_validate(spec) for name, spec in data.get("chains", {}).items()}


@cache
def shipped_chains() -> dict[str, ChainSpec]:
    return load_chains()


def chain_named(name: str, chains: Mapping[str, ChainSpec] | None = None) -> ChainSpec:
    """A shipped chain; a 400 naming the ones there are for any other name."""
    known = shipped_chains() if chains is None else chains
    found = known.get(name)
    if found is None:
        raise InvalidInput(
            f"no chain named {name!r}; shipped chains: {', '.join(sorted(known))}",
            code="unknown_chain",
            param="chain",
        )
    return found


def chain_for(
    metadata: Mapping[str, str] | None, chains: Mapping[str, ChainSpec] | None = None
) -> tuple[str, ChainSpec]:
    """The chain a request that names none gets: the first (by name) whose ``task_types``
    include its ``metadata.task_type``, else ``default`` — the seed's task analysis."""
    known = shipped_chains() if chains is None else chains
    task_type = (metadata or {}).get(TASK_TYPE)
    if task_type is not None:
        for name in sorted(known):
            if task_type in known[name].task_types:
                return name, known[name]
    return DEFAULT, chain_named(DEFAULT, known)
