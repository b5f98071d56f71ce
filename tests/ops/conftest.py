"""Fixtures of the ops tests (their helpers are in ``support.py``)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.ops.support import COMPOSE_ENV, COMPOSE_FILE, ROOT, compose_config


@pytest.fixture(scope="session")
def ops_tools() -> None:
    """Debian's docker-compose and promtool (``ops/install-ops-tools`` installs them)."""
    installer = ROOT / "ops" / "install-ops-tools"
    installed = subprocess.run([str(installer)], capture_output=True, text=True, check=False)
    if installed.returncode != 0:
        pytest.fail(f"could not install docker-compose and promtool: {installed.stderr}")


@pytest.fixture(scope="session")
def compose(ops_tools: None) -> dict[str, Any]:
    """docker-compose.yml as docker-compose resolves it."""
    resolved = compose_config(COMPOSE_FILE, COMPOSE_ENV)
    assert resolved.returncode == 0, resolved.stderr
    config: dict[str, Any] = yaml.safe_load(resolved.stdout)
    return config
