"""One attempt's call to the provider, for every kind of job, and what it answered.

A chat job is one call: streaming, its deltas published as they come (``app.relay``), when
its caller reads them live, else a whole response; its answer must pass the request's
validators (``app.validation``), else the call raises the ``quality`` failure. An embedding
job is as many calls as its inputs need (``app.embeddings.calls``), and its vectors are
written with its success. Either way the runner gets one ``Answer`` to settle, record and
bill, or a ``ProviderError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from app.embeddings.calls import embed
from app.embeddings.vectors import Packed, store
from app.jobs.attempts import chat_call, result_document
from app.jobs.claims import Claim
from app.jobs.runtime import Runtime, Target
from app.providers import get_adapter
from app.providers.transport import send
from app.providers.types import RateLimitSnapshot, Usage
from app.registry.keys import ProviderKey
from app.relay.events import AttemptId
from app.relay.publisher import wants_stream
from app.validation.checks import enforce

EMBEDDING = "embedding"  # jobs.kind of an embedding job

# Writes more of a success in the transaction that records it (given the job id).
Store = Callable[[str], Callable[[psycopg.Connection[Any]], None]]


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful attempt's answer: what the job keeps, and what the provider billed."""

    result: dict[str, Any]
    usage: Usage
    http_status: int
    rate_limits: RateLimitSnapshot | None
    store: Store | None = None


def call(rt: Runtime, claim: Claim, target: Target, key: ProviderKey, *, timeout: float) -> Answer:
    """Make the attempt's call(s) within ``timeout``; raises the classified ``ProviderError``."""
    if claim.kind == EMBEDDING:
        return _embedding(rt, claim, target, key, timeout)
    adapter = get_adapter(target.provider.wire_format)
    headers = rt.provider_headers.get(target.provider.wire_format, {})
    request = chat_call(claim.request, target.model, target.provider, key, headers=headers)
    if rt.relay is not None and wants_stream(claim.request, claim.batch_id):
        streamed = rt.relay.call(
            rt.http,
            adapter,
            request,
            timeout=timeout,
            job_id=claim.id,
            attempt=AttemptId(claim.token, claim.attempt_count + 1),
            model=target.model.id,
            provider=target.model.provider,
        )
        completion, http_status = streamed.completion, streamed.http_status
    else:
        response = send(rt.http, adapter.build_request(request), timeout=timeout)
        completion, http_status = adapter.parse_response(response), response.status_code
    enforce(claim.request, completion)  # its validators: a refused answer is a quality failure
    return Answer(
        result=result_document(completion),
        usage=completion.usage,
        http_status=http_status,
        rate_limits=completion.rate_limits,
    )


def _embedding(
    rt: Runtime, claim: Claim, target: Target, key: ProviderKey, timeout: float
) -> Answer:
    answer = embed(rt.http, claim.request, target.model, target.provider, key, timeout=timeout)
    return Answer(
        result=answer.packed.summary,
        usage=answer.usage,
        http_status=answer.http_status,
        rate_limits=answer.rate_limits,
        store=_vectors(answer.packed),
    )


def _vectors(packed: Packed) -> Store:
    def for_job(job_id: str) -> Callable[[psycopg.Connection[Any]], None]:
        return lambda conn: store(conn, job_id, packed)

    return for_job
