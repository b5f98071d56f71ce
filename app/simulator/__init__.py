"""The provider simulator: a real HTTP server speaking the OpenAI, Anthropic, Gemini and
Ollama wire formats — and OpenAI's as Groq, OpenRouter, vLLM and LM Studio speak it, quirks
included — with configurable latency, rate limits, injected errors and context
windows, counting everything it received and answered.

    from app.simulator import default_config, run
    run("127.0.0.1", 9100, default_config())          # or: python -m app.simulator

Modules: ``config`` (what is simulated), ``server`` (ASGI app, admin routes, ``run``),
``engine`` (the request pipeline), ``formats`` (one module per wire format), ``limiter``
(token buckets — the reference semantics a gateway mirrors), ``tokens`` (token counting and
generated content), ``tools`` (the tool calls models make when offered tools), ``stats``
(counters), ``faults`` (failure kinds), ``calls`` (requests),
``runtime`` / ``responder`` (engine helpers), ``bench`` (``python -m app.simulator.bench``).
"""

from __future__ import annotations

from app.simulator.config import (
    ErrorRates,
    SimModel,
    SimProvider,
    SimulatorConfig,
    default_config,
    load_config,
)
from app.simulator.server import SimulatorApp, create_app, run
from app.simulator.stats import key_fingerprint

__all__ = [
    "ErrorRates",
    "SimModel",
    "SimProvider",
    "SimulatorApp",
    "SimulatorConfig",
    "create_app",
    "default_config",
    "key_fingerprint",
    "load_config",
    "run",
]
