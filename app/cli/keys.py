"""``switchboard keys``: the provider API keys the gateway calls providers with.

A secret is read from a hidden prompt or from an environment variable (``--secret-env``),
never from the command line (shell history, ``ps``), and is never printed back: listings show
the last four characters only.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.client import ApiClient
from app.errors import InvalidInput

keys_cli = typer.Typer(help="Provider API keys (stored encrypted).", no_args_is_help=True)

ApiUrl = Annotated[
    str,
    typer.Option("--api", envvar="SWITCHBOARD_API_URL", help="Base URL of the Switchboard API."),
]
DEFAULT_API = "http://127.0.0.1:8000"
Provider = Annotated[str, typer.Argument(help="The provider, e.g. openai.")]
KeyId = Annotated[str, typer.Argument(help="The key's id (see `switchboard keys list`).")]
SecretEnv = Annotated[
    str | None,
    typer.Option(help="Read the secret from this environment variable instead of a prompt."),
]
Limit = Annotated[int | None, typer.Option(min=1)]


def _secret(secret_env: str | None) -> str:
    if secret_env is None:
        value: str = typer.prompt("secret", hide_input=True)
        return value
    value_env = os.environ.get(secret_env)
    if not value_env:
        raise InvalidInput(f"the environment variable {secret_env} is not set or is empty")
    return value_env


def _print_keys(keys: list[dict[str, Any]]) -> None:
    table = Table("id", "provider", "label", "key", "status", "calls", "cost", "last used")
    for k in keys:
        status = k["status"] + (f": {k['disabled_reason']}" if k["disabled_reason"] else "")
        table.add_row(
            k["id"],
            k["provider"],
            k["label"],
            f"…{k['last_four']}" if k["last_four"] else "(short)",
            status,
            str(k["usage"]["calls"]),
            "$" + k["usage"]["cost_usd"],
            (k["last_used_at"] or "never")[:19],
        )
    table.caption = "calls and cost: the last hour"
    Console().print(table)  # made now, so it fits the terminal (or $COLUMNS) of this run


@keys_cli.command("list")
def list_keys(
    provider: Annotated[str | None, typer.Option(help="Only this provider's keys.")] = None,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """List stored keys: last four characters, status, usage over the last hour."""
    with ApiClient(api) as client:
        _print_keys(client.keys(provider))


@keys_cli.command()
def add(
    provider: Provider,
    label: Annotated[str, typer.Argument(help="A name for the key, unique per provider.")],
    secret_env: SecretEnv = None,
    rpm: Limit = None,
    tpm: Limit = None,
    itpm: Limit = None,
    otpm: Limit = None,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Store a key for PROVIDER (encrypted), with optional per-key limits."""
    limits = {
        name: value
        for name, value in (("rpm", rpm), ("tpm", tpm), ("itpm", itpm), ("otpm", otpm))
        if value is not None
    }
    secret = _secret(secret_env)
    with ApiClient(api) as client:
        _print_keys([client.add_key(provider, label, secret, **limits)])


@keys_cli.command()
def rotate(
    provider: Provider, key_id: KeyId, secret_env: SecretEnv = None, api: ApiUrl = DEFAULT_API
) -> None:
    """Replace a key's secret; its id, label and limits stay, and it is enabled again."""
    secret = _secret(secret_env)
    with ApiClient(api) as client:
        _print_keys([client.key_action(provider, key_id, "rotate", {"secret": secret})])


@keys_cli.command()
def disable(
    provider: Provider,
    key_id: KeyId,
    reason: Annotated[
        str, typer.Option(help="Shown in the key listing.")
    ] = "disabled by an operator",
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Stop calling the provider with this key."""
    with ApiClient(api) as client:
        _print_keys([client.key_action(provider, key_id, "disable", {"reason": reason})])


@keys_cli.command()
def enable(provider: Provider, key_id: KeyId, api: ApiUrl = DEFAULT_API) -> None:
    """Use a disabled key again."""
    with ApiClient(api) as client:
        _print_keys([client.key_action(provider, key_id, "enable")])


@keys_cli.command()
def delete(provider: Provider, key_id: KeyId, api: ApiUrl = DEFAULT_API) -> None:
    """Forget a stored key."""
    with ApiClient(api) as client:
        client.delete_key(provider, key_id)
    Console().print(f"deleted {key_id}")
