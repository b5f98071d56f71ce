"""The simulator's request pipeline, the same for every wire format.

A request to ``/{provider}/...`` goes through these steps; the first that fails answers in
the provider's format and the rest are skipped:

1. route (format's 404) → ``down`` (503) → key check (401, Gemini 400/403) →
2. body is JSON (400) → body is a valid call (400) → model is known (404) →
3. prompt + max output fit the context window (400) →
4. rate-limit admission (429, counted ``rate_limited``; see ``limiter``) →
5. injected faults, drawn from the seeded RNG (``ErrorRates``; a timeout holds the request
   for ``hang_s`` then answers 504; the stream faults cut a stream half-way) →
6. the reply, after ``latency_ms ± jitter_ms`` plus ``completion_tokens / tokens_per_s``
   (streams wait the first part before the first chunk and spread the rest between chunks).

Everything runs on one event loop, so the limiter and counters need no locks; run one
process per simulator (state is per process).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
import time

import orjson

from app.simulator.calls import ChatRequest, EmbedRequest, HttpRequest, Operation, Route
from app.simulator.config import SimModel, SimulatorConfig
from app.simulator.faults import Fault, SimError
from app.simulator.formats import ReplyMeta
from app.simulator.formats.base import Headers
from app.simulator.limiter import Admission
from app.simulator.responder import Responder, retry_headers, send_stream, send_whole
from app.simulator.runtime import ModelRuntime, ProviderRuntime
from app.simulator.stats import Outcome, Stats
from app.simulator.structured import structured
from app.simulator.tokens import (
    embedding,
    generate_reply,
    prompt_digest,
    prompt_tokens,
    text_tokens,
)

logger = logging.getLogger(__name__)

_INJECTED_FAULTS = {
    "timeout": Fault.TIMEOUT,
    "server_error": Fault.SERVER_ERROR,
    "unavailable": Fault.UNAVAILABLE,
    "overloaded": Fault.OVERLOADED,
    "rate_limit": Fault.RATE_LIMIT,
}
SPURIOUS_RETRY_AFTER_S = 1.0
MAX_EMBED_INPUTS = 2048
MAX_EMBED_DIMENSIONS = 8192
CLIENT_CLOSED = 499  # recorded when the caller hangs up during an injected timeout


class _ClientGoneError(Exception):
    """The caller disconnected while the engine was holding its request."""


class Simulator:
    """The state of one simulator process: config, limiters, counters and RNGs."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.stats = Stats()
        self._serial = itertools.count(1)
        self._uid_prefix = "sim" + secrets.token_hex(4)
        self.configure(config)

    def configure(self, config: SimulatorConfig) -> None:
        """Serve ``config`` from now on, with fresh buckets and reseeded RNGs."""
        self.config = config
        self.providers = {name: ProviderRuntime(name, p) for name, p in config.providers.items()}
        self._faults_rng = random.Random(config.seed)
        self._jitter_rng = random.Random(config.seed + 1)

    def reset(self) -> None:
        """Zero the counters and forget every bucket, as if just started."""
        self.stats = Stats()
        self.configure(self.config)

    async def serve(self, request: HttpRequest, out: Responder) -> None:
        """Answer one request to a provider route (``/{provider}/...``)."""
        name, _, rest = request.path[1:].partition("/")
        provider = self.providers.get(name)
        if provider is None:
            body = {
                "error": {"message": f"No simulated provider named {name!r}.", "type": "not_found"}
            }
            await send_whole(out, 404, orjson.dumps(body))
            return
        stats = self.stats.provider(name)
        outcome = Outcome()
        stats.begin()
        try:
            await self._serve(provider, request, "/" + rest, out, outcome)
        except _ClientGoneError:
            outcome.status = CLIENT_CLOSED
        finally:
            stats.end(outcome)

    async def _serve(
        self,
        provider: ProviderRuntime,
        request: HttpRequest,
        path: str,
        out: Responder,
        outcome: Outcome,
    ) -> None:
        fmt = provider.format
        authorized = False
        try:
            route = fmt.route(request, path)
            if route is None:
                raise SimError(Fault.NO_ROUTE, detail=f"{request.method} {request.path}")
            if provider.spec.down:
                raise SimError(Fault.UNAVAILABLE)
            key = outcome.key = fmt.api_key(request)
            if not provider.accepts(key):
                raise SimError(Fault.AUTH, key=key)
            authorized = True
            if route.operation is Operation.MODELS:
                body = orjson.dumps(fmt.render_models(provider.spec.models))
                await self._reply(out, outcome, body, [])
                return
            try:
                payload = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                raise SimError(Fault.INVALID_JSON) from None
            if route.operation is Operation.CHAT:
                await self._chat(provider, route, fmt.parse_chat(payload, route), out, outcome)
            else:
                await self._embed(provider, route, fmt.parse_embed(payload, route), out, outcome)
        except SimError as error:
            await self._fail(provider, error, out, outcome, authorized=authorized)
        except _ClientGoneError:
            raise
        except Exception:  # a bug must not take the simulator down; answer like a provider
            logger.exception("simulator failed on %s %s", request.method, request.path)
            await self._fail(provider, SimError(Fault.SERVER_ERROR), out, outcome, authorized=False)

    async def _chat(
        self,
        provider: ProviderRuntime,
        route: Route,
        chat: ChatRequest,
        out: Responder,
        outcome: Outcome,
    ) -> None:
        outcome.model = chat.model
        model = provider.model(chat.model)
        spec = model.spec
        prompt = prompt_tokens(chat.texts, chat.images)
        max_out = chat.max_tokens or spec.max_output_tokens
        if prompt + max_out > spec.context_window:
            raise SimError(
                Fault.CONTEXT_LENGTH,
                model=chat.model,
                prompt_tokens=prompt,
                output_tokens=max_out,
                context_window=spec.context_window,
            )
        admission, headers = self._admit(provider, chat.model, prompt, max_out, outcome)
        completion_tokens = 0
        try:
            injected = await self._inject(provider, model, chat.model, admission, out, outcome)
            reply = generate_reply(
                chat.texts,
                prompt_tokens=prompt,
                output_range=spec.output_tokens,
                max_tokens=min(max_out, spec.max_output_tokens),
                filtered=injected == "content_filter",
                tool=chat.tool,
            )
            if chat.json_schema is not None and spec.follows_response_format:
                reply = structured(
                    reply,
                    chat.json_schema,
                    max_tokens=min(max_out, spec.max_output_tokens),
                    digest=prompt_digest(chat.texts),
                )
            first_s = self._latency(spec)
            generate_s = reply.completion_tokens / spec.tokens_per_s if spec.tokens_per_s else 0.0
            meta = self._meta(first_s + generate_s)
            headers += provider.format.reply_headers(meta)
            malformed = injected == "malformed"
            if chat.stream:
                chunks = provider.format.render_stream(chat, reply, meta)
                hold_s = 0.0
                if malformed:
                    chunks = [chunks[0][: len(chunks[0]) // 2]]
                elif injected == "stream_error":
                    error = provider.format.render_stream_error()
                    chunks = [*chunks[: len(chunks) // 2], error]
                elif injected == "stream_stall":
                    chunks, hold_s = chunks[: len(chunks) // 2], spec.errors.hang_s
                if first_s > 0:
                    await asyncio.sleep(first_s)
                outcome.status = 200
                media = provider.format.stream_media_type(route)
                await send_stream(out, chunks, headers, media, generate_s, hold_s=hold_s)
            else:
                if first_s + generate_s > 0:
                    await asyncio.sleep(first_s + generate_s)
                body = orjson.dumps(provider.format.render_chat(chat, reply, meta))
                await self._reply(
                    out, outcome, body[: len(body) // 2] if malformed else body, headers
                )
            if not malformed:
                completion_tokens = reply.completion_tokens
                outcome.prompt_tokens, outcome.completion_tokens = prompt, completion_tokens
        finally:
            if admission is not None:
                admission.settle(completion_tokens)

    async def _embed(
        self,
        provider: ProviderRuntime,
        route: Route,
        embed: EmbedRequest,
        out: Responder,
        outcome: Outcome,
    ) -> None:
        outcome.model = embed.model
        model = provider.model(embed.model)
        if len(embed.inputs) > MAX_EMBED_INPUTS:
            raise SimError(Fault.INVALID_REQUEST, detail=f"At most {MAX_EMBED_INPUTS} inputs.")
        dimensions = embed.dimensions or model.spec.embedding_dim
        if dimensions > MAX_EMBED_DIMENSIONS:
            detail = f"dimensions must be at most {MAX_EMBED_DIMENSIONS}."
            raise SimError(Fault.INVALID_REQUEST, detail=detail, param="dimensions")
        counts = [text_tokens(text) for text in embed.inputs]
        if max(counts) > model.spec.context_window:
            raise SimError(
                Fault.CONTEXT_LENGTH,
                model=embed.model,
                prompt_tokens=max(counts),
                context_window=model.spec.context_window,
            )
        prompt = sum(counts)
        admission, headers = self._admit(provider, embed.model, prompt, 0, outcome)
        try:
            injected = await self._inject(provider, model, embed.model, admission, out, outcome)
            vectors = [embedding(text, dimensions) for text in embed.inputs]
            delay = self._latency(model.spec)
            if delay > 0:
                await asyncio.sleep(delay)
            body = orjson.dumps(provider.format.render_embed(embed, vectors, prompt, route))
            if injected == "malformed":
                await self._reply(out, outcome, body[: len(body) // 2], headers)
                return
            await self._reply(out, outcome, body, headers)
            outcome.prompt_tokens = prompt
        finally:
            if admission is not None:
                admission.settle(0)

    def _admit(
        self,
        provider: ProviderRuntime,
        model: str,
        prompt: int,
        max_out: int,
        outcome: Outcome,
    ) -> tuple[Admission | None, Headers]:
        """Take the request's tokens; a refusal is counted ``rate_limited`` and raised."""
        limiter = provider.limiter
        if limiter is None:
            return None, []
        try:
            admission = limiter.admit(outcome.key, prompt, max_out)
        except SimError as refusal:
            outcome.rate_limited = True
            refusal.model = model
            raise
        return admission, provider.format.rate_limit_headers(admission.views(), time.time())

    async def _inject(
        self,
        provider: ProviderRuntime,
        model: ModelRuntime,
        name: str,
        admission: Admission | None,
        out: Responder,
        outcome: Outcome,
    ) -> str | None:
        """Draw the injected faults; raise the failing ones, return a 200-shaped one or None."""
        injected = model.draw(self._faults_rng, filters_content=provider.format.filters_content)
        if injected is None:
            return None
        outcome.injected = injected
        fault = _INJECTED_FAULTS.get(injected)
        if fault is None:
            return injected
        if fault is Fault.TIMEOUT and not await out.hold(model.spec.errors.hang_s):
            raise _ClientGoneError
        if fault is Fault.RATE_LIMIT and admission is not None:
            admission.release()  # a 429 never costs anything
        raise SimError(fault, model=name)

    def _latency(self, spec: SimModel) -> float:
        """Seconds before the first byte: ``latency_ms`` plus uniform jitter, never negative."""
        latency_ms = spec.latency_ms
        if spec.jitter_ms:
            latency_ms += self._jitter_rng.uniform(-spec.jitter_ms, spec.jitter_ms)
        return max(0.0, latency_ms / 1000.0)

    def _meta(self, duration_s: float) -> ReplyMeta:
        uid = f"{self._uid_prefix}{next(self._serial):012x}"
        return ReplyMeta(uid, time.time(), duration_s)

    @staticmethod
    async def _reply(out: Responder, outcome: Outcome, body: bytes, headers: Headers) -> None:
        outcome.status = 200
        await send_whole(out, 200, body, headers)

    async def _fail(
        self,
        provider: ProviderRuntime,
        error: SimError,
        out: Responder,
        outcome: Outcome,
        *,
        authorized: bool,
    ) -> None:
        fmt = provider.format
        status, body = fmt.render_error(error)
        headers: Headers = []
        if authorized and provider.limiter is not None:
            headers += fmt.rate_limit_headers(provider.limiter.views(outcome.key), time.time())
        if error.fault is Fault.RATE_LIMIT:
            wait = (
                SPURIOUS_RETRY_AFTER_S
                if error.rate_limit is None
                else error.rate_limit.retry_after_s
            )
            headers += retry_headers(wait)
        outcome.status = status
        await send_whole(out, status, orjson.dumps(body), headers)
