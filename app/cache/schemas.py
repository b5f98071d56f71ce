"""What a request says about the cache, and what a job shows of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.constants import MAX_CACHE_TTL_S
from app.ledger.cost import format_usd

if TYPE_CHECKING:
    from app.db.tables import JobRow

Mode = Literal["off", "exact", "semantic"]


class CacheOptions(BaseModel):
    """``cache`` on a request: how the response cache treats it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mode: Mode | None = Field(
        default=None,
        description="`exact`: reuse the answer of an identical earlier request (and wait for "
        "one in flight); `semantic`: also one whose last user message is similar enough; "
        "`off`: neither, and store nothing. Unset: the gateway's default (`exact` for "
        "deterministic requests — temperature 0 or a seed — and every embedding; others run).",
    )
    ttl: Annotated[int, Field(ge=1, le=MAX_CACHE_TTL_S)] | None = Field(
        default=None,
        description="Seconds this request's answer may be reused after it was produced "
        "(default: the gateway's, 24 h).",
    )
    threshold: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None,
        description="`semantic`: the least cosine similarity of the prompts (default: the "
        "gateway's, 0.95).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CacheOptions:
        if self.threshold is not None and self.mode != "semantic":
            raise ValueError("`cache.threshold` applies to `cache.mode: semantic` only")
        if self.ttl is not None and self.mode == "off":
            raise ValueError("`cache.ttl` does not apply with `cache.mode: off`")
        return self


class CacheOut(BaseModel):
    """How the response cache served a job (``GET /v1/jobs/{id}``)."""

    mode: Literal["exact", "semantic"] = Field(
        description="A hit: the lookup that found the answer. A miss: the mode looked up."
    )
    hit: bool = Field(description="Served from the cache: no provider call, cost 0.")
    source_job_id: str | None = Field(
        default=None, description="A hit: the job whose answer this is."
    )
    similarity: float | None = Field(
        default=None, description="A semantic hit: the cosine similarity of the two prompts."
    )
    cost_saved_usd: str | None = Field(
        default=None, description="A hit: what the answer cost its source job (exact decimal)."
    )

    @classmethod
    def of(cls, job: JobRow) -> CacheOut | None:
        """What a job's row says of the cache (None: it took no part, or is still waiting)."""
        if not job.cache:
            return None
        mode, _, outcome = job.cache.partition(":")
        if mode not in ("exact", "semantic"):
            return None
        return cls(
            mode=mode,
            hit=outcome == "hit",
            source_job_id=job.cache_source_job_id,
            similarity=job.cache_similarity,
            cost_saved_usd=format_usd(job.cost_saved_usd),
        )
