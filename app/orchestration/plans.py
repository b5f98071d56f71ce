"""Planning an orchestration when it is submitted: every step checked, routed and costed.

Everything a worker will need later is decided here, so a bad name is a 400 now and never a
failure half-way through a chain: each step's templates may name only what it will have
(``{input}``, earlier roles, ``{previous}`` after the first), each step is routed like a job
(its models, policy or strategy resolved to a fallback chain, stored with the step) and each
gets a worst-case cost. A later step's prompt holds earlier outputs, so its worst case counts
each output it names at that step's most output tokens. The orchestration reserves every
step's worst case at once (it fits whole or is refused, like a batch); a step takes its own
reservation when it is created and settles it like any job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from app.errors import InvalidInput, SwitchboardError
from app.jobs.schemas import ChatParams
from app.jobs.service import first_usable
from app.ledger.cost import cost_usd
from app.orchestration.chain import PREVIOUS, STEPS, allowed_names
from app.orchestration.definitions import chain_for, chain_named
from app.orchestration.ensemble import numbered
from app.orchestration.schemas import (
    ROUTING_FIELDS,
    SAMPLING_FIELDS,
    ChainCreate,
    ChainSpec,
    EnsembleCreate,
    Judge,
    Sampling,
)
from app.orchestration.steps import messages
from app.orchestration.templates import placeholders, unknown_names
from app.providers.types import Usage
from app.ratelimit.estimate import estimate_request
from app.registry.service import ModelInfo, Registry
from app.routing.plan import PerformanceSource, Plan, PolicySource, plan_chain

# What an output stands for while a prompt is estimated: its tokens are counted separately.
_OUTPUT_STAND_IN = "…"

JUDGE_SYSTEM = {
    "merge": "You are a judge. Several assistants answered the same request. Write the single "
    "best answer to it: keep what is right in theirs, correct what is wrong, add what is "
    "missing. Reply with that answer only.",
    "pick": "You are a judge. Several assistants answered the same request. Decide which "
    "answer is best. Reply with its number only.",
}
JUDGE_PROMPT = "Request:\n{input}\n\nAnswers:\n{answers}"
JUDGE_NAMES = frozenset({"input", "answers"})


@dataclass(frozen=True, slots=True)
class Router:
    """What routing a step needs: the registry, live performance, breakers and policies."""

    registry: Registry
    performance: PerformanceSource | None = None
    usable: Callable[[ModelInfo], bool] | None = None
    policies: PolicySource | None = None


@dataclass
class Planned:
    """An orchestration ready to insert: its stored spec and each step's worst-case cost."""

    kind: str
    spec: dict[str, Any]
    worst_usd: list[Decimal] = field(default_factory=list)  # by step index
    name: str | None = None  # a shipped chain's


def plan_json(plan: Plan, usable: Callable[[ModelInfo], bool] | None = None) -> dict[str, Any]:
    """What a step keeps of its routing: the models and their providers, the record, and
    where a step created now starts (past an open breaker)."""
    return {
        "models": [m.id for m in plan.chain],
        "providers": [m.provider for m in plan.chain],
        "routing": plan.routing,
        "start": first_usable(plan.chain, usable),
    }


# -- chains --------------------------------------------------------------------------------
def plan_chain_run(create: ChainCreate, router: Router) -> Planned:
    name, definition, inline = _definition(create)
    roles = [step.role for step in definition.steps]
    for role in create.models or {}:
        if role not in roles:
            raise InvalidInput(
                f"`models` names role {role!r}, which this chain does not have "
                f"(its roles: {', '.join(roles)})",
                code="unknown_role",
                param=f"models.{role}",
            )
    planned = Planned("chain", {}, name=name)
    stored: list[dict[str, Any]] = []
    most_output: dict[str, int] = {}
    for index, step in enumerate(definition.steps):
        where = f"chain.steps[{index}]" if inline else f"chain ({name}) step {step.role}"
        allowed = allowed_names(roles, index)
        for field_name in ("system", "prompt"):
            template = getattr(step, field_name)
            bad = unknown_names(template, allowed) if template is not None else []
            if bad:
                names = ", ".join("{" + n + "}" for n in sorted(allowed))
                raise InvalidInput(
                    f"`{where}.{field_name}` uses {{{bad[0]}}}, which step {index + 1} does not "
                    f"have; it may use {names}",
                    code="unknown_template_name",
                    param=f"chain.steps[{index}].{field_name}" if inline else "chain",
                )
        override = (create.models or {}).get(step.role)
        routing = {"model": override} if override is not None else _routing(step)
        stand_ins = dict.fromkeys(allowed, _OUTPUT_STAND_IN) | {"input": create.input}
        prefix = f"models.{step.role}" if override is not None else f"chain.steps[{index}]"
        with _at(prefix if inline or override is not None else "chain"):
            params = _chat_params(routing, step, messages(step.system, step.prompt, stand_ins))
            plan = plan_chain(
                router.registry,
                params,
                performance=router.performance,
                usable=router.usable,
                policies=router.policies,
                metadata={**(create.metadata or {}), **(step.metadata or {})},
                param=prefix if override is not None else f"{prefix}.model",
            )
        request = params.to_request()
        request.pop("messages")
        extra = sum(
            most_output.get(_role_of(p.name, roles, index), 0)
            for template in (step.system, step.prompt)
            if template is not None
            for p in placeholders(template)
        )
        planned.worst_usd.append(_worst_usd(params.to_request(), plan.chain, extra))
        most_output[step.role] = step.max_tokens or max(m.max_output_tokens for m in plan.chain)
        stored.append(
            {
                "role": step.role,
                "system": step.system,
                "prompt": step.prompt,
                "on_failure": step.on_failure,
                "metadata": step.metadata,
                "request": request,
                "plan": plan_json(plan, router.usable),
            }
        )
    planned.spec = {
        "name": name,
        "input": create.input,
        "output": definition.output,
        "steps": stored,
    }
    return planned


def _definition(create: ChainCreate) -> tuple[str | None, ChainSpec, bool]:
    if isinstance(create.chain, ChainSpec):
        return None, create.chain, True
    if create.chain is not None:
        return create.chain, chain_named(create.chain), False
    name, definition = chain_for(create.metadata)
    return name, definition, False


def _role_of(name: str, roles: list[str], index: int) -> str:
    """The role whose output placeholder ``name`` inserts in step ``index`` ("" for none)."""
    if name == PREVIOUS:
        return roles[index - 1]
    return name.removeprefix(STEPS) if name.startswith(STEPS) else ""


# -- ensembles -----------------------------------------------------------------------------
def plan_ensemble(create: EnsembleCreate, router: Router) -> Planned:
    conversation = (
        [{"role": "user", "content": create.prompt}]
        if create.prompt is not None
        else [m.model_dump(exclude_none=True, mode="json") for m in create.messages or []]
    )
    planned = Planned("ensemble", {})
    branches: list[dict[str, Any]] = []
    most_output = 0
    param = "models" if create.models is not None else "branches"
    for index, branch in enumerate(create.branch_list()):
        extra = [v.model_dump(mode="json") for v in branch.validators or []]
        where = f"{param}[{index}]"
        with _at(where):
            params = _chat_params(_routing(branch), create, conversation, extra_validators=extra)
            plan = plan_chain(
                router.registry,
                params,
                performance=router.performance,
                usable=router.usable,
                policies=router.policies,
                metadata=create.metadata,
                param=where if create.models is not None else f"{where}.model",
            )
        request = params.to_request()
        planned.worst_usd.append(_worst_usd(request, plan.chain, 0))
        most_output += create.max_tokens or max(m.max_output_tokens for m in plan.chain)
        branches.append({"request": request, "plan": plan_json(plan)})
    input_text = transcript(conversation)
    judge = None
    if create.judge is not None:
        judge, worst = _plan_judge(create.judge, router, input_text, len(branches), most_output)
        planned.worst_usd.append(worst)
    planned.spec = {
        "synthesizer": create.synthesizer,
        "quorum": create.quorum,
        "vote_pattern": create.vote_pattern,
        "hedge_after_s": create.hedge_after_s,
        "input": input_text,
        "branches": branches,
        "judge": judge,
    }
    return planned


def _plan_judge(
    judge: Judge, router: Router, input_text: str, branches: int, answers_tokens: int
) -> tuple[dict[str, Any], Decimal]:
    system = judge.system or JUDGE_SYSTEM[judge.mode]
    prompt = judge.prompt or JUDGE_PROMPT
    for field_name, template in (("system", system), ("prompt", prompt)):
        bad = unknown_names(template, JUDGE_NAMES)
        if bad:
            raise InvalidInput(
                f"`judge.{field_name}` uses {{{bad[0]}}}; a judge's templates may use "
                "{input} and {answers}",
                code="unknown_template_name",
                param=f"judge.{field_name}",
            )
    framing = numbered([""] * branches)  # the numbering, without the answers themselves
    with _at("judge"):
        rendered = messages(system, prompt, {"input": input_text, "answers": framing})
        params = _chat_params(_routing(judge), judge, rendered)
        plan = plan_chain(
            router.registry,
            params,
            performance=router.performance,
            usable=router.usable,
            policies=router.policies,
            param="judge.model",
        )
    mentions = sum(1 for t in (system, prompt) for p in placeholders(t) if p.name == "answers")
    request = params.to_request()
    worst = _worst_usd(request, plan.chain, answers_tokens * mentions)
    request.pop("messages")
    stored = {
        "mode": judge.mode,
        "system": system,
        "prompt": prompt,
        "request": request,
        "plan": plan_json(plan, router.usable),
    }
    return stored, worst


def transcript(conversation: Sequence[Mapping[str, Any]]) -> str:
    """A conversation as a judge reads it (``{input}``): one message as its text, several
    as ``role: text`` paragraphs."""
    texts = [(m["role"], _text(m.get("content"))) for m in conversation]
    if len(texts) == 1:
        return texts[0][1]
    return "\n\n".join(f"{role}: {text}" for role, text in texts)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


# -- shared --------------------------------------------------------------------------------
def _routing(step: Any) -> dict[str, Any]:
    routing: dict[str, Any] = step.model_dump(
        include=set(ROUTING_FIELDS), exclude_none=True, mode="json"
    )
    return routing


def _chat_params(
    routing: Mapping[str, Any],
    sampling: Sampling,
    conversation: list[dict[str, Any]],
    *,
    extra_validators: list[dict[str, Any]] | None = None,
) -> ChatParams:
    body = sampling.model_dump(include=set(SAMPLING_FIELDS), exclude_none=True, mode="json")
    if extra_validators:
        body["validators"] = [*body.get("validators", []), *extra_validators]
    try:
        return ChatParams.model_validate({**routing, **body, "messages": conversation})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {message}" if where else message, param=where) from None


def _worst_usd(request: dict[str, Any], chain: Sequence[ModelInfo], extra_prompt: int) -> Decimal:
    """The dearest model of the chain at the prompt's upper bound (plus ``extra_prompt``
    tokens of earlier outputs) and the most output the request allows."""
    worst = Decimal(0)
    for model in chain:
        prompt, output = estimate_request(request, model.max_output_tokens)
        worst = max(worst, cost_usd(model, Usage(prompt + extra_prompt, output)))
    return worst


@contextmanager
def _at(prefix: str) -> Iterator[None]:
    """Errors of routing one step name that step in ``param``."""
    try:
        yield
    except SwitchboardError as err:
        if err.param is None or not err.param.startswith(prefix):
            err.param = f"{prefix}.{err.param}" if err.param else prefix
        raise
