"""What the API process holds for its lifetime: engine, sessions, registry, Redis, dispatcher."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.api.auth import Gatekeeper
from app.config import Settings
from app.jobs.service import Dispatcher
from app.registry.secrets import SecretBox
from app.registry.service import ModelInfo, RegistryCache
from app.relay.subscriber import StreamSubscriber
from app.routing.breakers import CircuitBreakers, model_target, provider_target


@dataclass
class ApiState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    registry: RegistryCache
    redis: redis.Redis
    dispatcher: Dispatcher
    secrets: SecretBox | None = None
    breakers: CircuitBreakers | None = None
    gatekeeper: Gatekeeper | None = None
    streams: StreamSubscriber | None = None  # None: `stream: true` waits for the whole answer

    def usable(self, model: ModelInfo) -> bool:
        """Not behind an open breaker: where a new job should start."""
        if self.breakers is None:
            return True
        return self.breakers.usable((provider_target(model.provider), model_target(model.id)))

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()

    async def aclose(self) -> None:
        if self.streams is not None:
            await self.streams.close()
        self.close()
