"""``switchboard policies``: list, show, create, update, delete and dry-run routing policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.client import ApiClient
from app.errors import InvalidInput

app = typer.Typer(
    help="Routing policies: rules mapping request metadata to models.", no_args_is_help=True
)
console = Console()

ApiUrl = Annotated[
    str,
    typer.Option("--api", envvar="SWITCHBOARD_API_URL", help="Base URL of the Switchboard API."),
]
DEFAULT_API = "http://127.0.0.1:8000"
NameArg = Annotated[str, typer.Argument(help="The policy's name.")]
FileArg = Annotated[Path, typer.Argument(help="A JSON file holding the policy.", dir_okay=False)]


def _read_json(file: Path) -> dict[str, Any]:
    """The policy in ``file``; a missing file or bad JSON is one readable error."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}", code="unreadable_file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{file} is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{file} must hold one JSON object (a policy)", code="invalid_json")
    return data


READ_ONLY = ("object", "created_at", "updated_at")


def _as_body(policy: dict[str, Any]) -> dict[str, Any]:
    """A policy file as a request body: what ``show`` printed works too (its ``id`` is the
    name; the read-only fields are dropped), so show, edit, update is a round trip."""
    body = {k: v for k, v in policy.items() if k not in READ_ONLY and k != "id"}
    if "id" in policy and "name" not in policy:
        body["name"] = policy["id"]
    return body


def _print_json(data: object) -> None:
    console.print_json(json.dumps(data))


@app.command("list")
def list_policies(api: ApiUrl = DEFAULT_API) -> None:
    """The policies, highest priority first."""
    with ApiClient(api) as client:
        policies = client.policies()
    table = Table("name", "priority", "enabled", "rules", "description")
    for p in policies:
        table.add_row(
            p["id"],
            str(p["priority"]),
            "yes" if p["enabled"] else "no",
            str(len(p["rules"])),
            p["description"],
        )
    console.print(table)


@app.command()
def show(name: NameArg, api: ApiUrl = DEFAULT_API) -> None:
    """One policy as JSON."""
    with ApiClient(api) as client:
        _print_json(client.policy(name))


@app.command()
def create(file: FileArg, api: ApiUrl = DEFAULT_API) -> None:
    """Create a policy from a JSON file (the object names it with "name")."""
    body = _as_body(_read_json(file))
    with ApiClient(api) as client:
        policy = client.create_policy(body)
    console.print(f"created policy {policy['id']} ({len(policy['rules'])} rules)")


@app.command()
def update(name: NameArg, file: FileArg, api: ApiUrl = DEFAULT_API) -> None:
    """Replace a policy whole with the one in a JSON file (creates it if absent)."""
    body = _as_body(_read_json(file))
    with ApiClient(api) as client:
        policy = client.replace_policy(name, body)
    console.print(f"saved policy {policy['id']} ({len(policy['rules'])} rules)")


@app.command()
def delete(name: NameArg, api: ApiUrl = DEFAULT_API) -> None:
    """Delete a policy."""
    with ApiClient(api) as client:
        client.delete_policy(name)
    console.print(f"deleted policy {name}")


@app.command()
def resolve(
    name: NameArg,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="Request metadata as key=value (repeat).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A request tag (repeat).")] = None,
    tenant: Annotated[str | None, typer.Option(help="Resolve as this tenant (admin).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed the weighted pick.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the route as JSON.")] = False,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Dry run: the models a job with this metadata would be routed to, and why."""
    metadata = {}
    for pair in meta or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--meta {pair!r} is not key=value", code="invalid_meta")
        metadata[key] = value
    body: dict[str, Any] = {"metadata": metadata, "tags": tag or []}
    if tenant is not None:
        body["tenant_id"] = tenant
    if seed is not None:
        body["seed"] = seed
    with ApiClient(api) as client:
        route = client.resolve_policy(name, body)
    if as_json:
        _print_json(route)
        return
    console.print(route["reason"], markup=False, highlight=False)
    console.print("models: " + " -> ".join(route["models"]), markup=False, highlight=False)
    if route["strategy"]:
        console.print(f"strategy: {route['strategy']}", markup=False, highlight=False)
    if route["max_cost_usd"]:
        console.print(f"max cost: ${route['max_cost_usd']}", markup=False, highlight=False)
