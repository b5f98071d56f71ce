"""Headers a wire format's every request carries besides the key: configured once per process.

OpenRouter attributes traffic to an app by two optional headers (its "app attribution"):
``HTTP-Referer`` (the app's URL) and ``X-Title`` (its name), which rank it on openrouter.ai
and name it in the account's activity. They go on every OpenRouter call when configured
(``SWITCHBOARD_OPENROUTER_SITE_URL``, ``SWITCHBOARD_OPENROUTER_APP_NAME``).
"""

from __future__ import annotations

from app.providers.wire import compact


def provider_headers(
    *, openrouter_site_url: str | None = None, openrouter_app_name: str | None = None
) -> dict[str, dict[str, str]]:
    """The extra headers of each wire format that has any, by wire-format name."""
    attribution = compact(
        {"HTTP-Referer": openrouter_site_url or None, "X-Title": openrouter_app_name or None}
    )
    return {"openrouter": attribution} if attribution else {}
