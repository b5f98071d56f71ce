"""What the ops tests share: a deployment of their own on the test services, and the compose
file as docker-compose itself reads it. (A module of its own, not the conftest: helpers imported
from a conftest would be a second copy of it.)"""

from __future__ import annotations

import itertools
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from sqlalchemy import create_engine, make_url, text

from app.cli.stack import Stack
from app.embedded import ServiceUrls

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# What an operator exports before `docker compose up` (the file refuses to start without them).
COMPOSE_ENV = {
    "SWITCHBOARD_SECRET_KEY": "DyTAYmeV7bnX2ZXSZDKqNPkTg60iIJ6RDHEf4XMlEVg=",
    "SWITCHBOARD_ADMIN_KEY": "compose-admin-key-for-tests-0123456789",
    "SWITCHBOARD_FLOWER_PASSWORD": "compose-flower-password-for-tests",
    "GRAFANA_ADMIN_PASSWORD": "compose-grafana-password-for-tests",
}
_redis_databases = itertools.count(1)  # the session's own stack uses database 0


@contextmanager
def fresh_deployment(stack: Stack) -> Iterator[ServiceUrls]:
    """A new database on the test PostgreSQL and a Redis database of its own (Celery scopes
    queues, broadcasts and events by database), dropped afterwards: processes started on it
    see no other test's rows, queues or workers."""
    assert stack.urls is not None
    server = make_url(stack.urls.database_url)
    name = f"sb_ops_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = server.set(drivername="postgresql", database=name)
    redis_url = f"{stack.urls.redis_url.rsplit('/', 1)[0]}/{next(_redis_databases)}"
    try:
        yield ServiceUrls(database_url.render_as_string(hide_password=False), redis_url)
    finally:
        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        client.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def compose_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``docker-compose config``: the file validated against the compose schema, its anchors
    merged and its variables interpolated."""
    return subprocess.run(
        ["docker-compose", "--project-directory", str(ROOT), "-f", str(path), "config"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=ROOT,
    )
