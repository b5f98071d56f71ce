"""The registry over HTTP: ``/v1/models``, ``/v1/providers`` (with their keys) and ``/v1/keys``.

The routes live in ``models_api``, ``providers_api`` and ``keys_api``; this module assembles
the routers ``app.main`` includes.
"""

from __future__ import annotations

from app.registry.keys_api import keys_router, provider_keys_router
from app.registry.models_api import router
from app.registry.providers_api import router as providers_router

providers_router.include_router(provider_keys_router)

__all__ = ["keys_router", "providers_router", "router"]
