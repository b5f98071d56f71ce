"""A chain's rules: one step at a time, each prompted with the outputs before it.

The next step is created only once the step before it has ended — in the transaction that
recorded that end — so a chain is never between steps in a way a crash could lose. A step
that fails after its own retries and fallbacks fails the chain (``on_failure = "fail"``,
with the step's error class and a message naming it) or is skipped, its output empty
(``"skip"``). The chain's answer is its ``output`` step's (default: the last step that
succeeded), its cost the sum of its steps'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.jobs.states import JobStatus
from app.orchestration.decisions import Create, Finish, Move, Step, failed
from app.orchestration.steps import NewStep, messages

INPUT, PREVIOUS, STEPS = "input", "previous", "steps."


def next_moves(spec: Mapping[str, Any], steps: list[Step]) -> list[Move]:
    """What the chain does now: nothing while a step runs; else the next step, or its end."""
    planned: list[dict[str, Any]] = spec["steps"]
    if not steps:  # its first step is inserted with it; without one, start it
        return [Create(new_step(spec, 0, {}))]
    last = steps[-1]
    if last.live:
        return []
    step_spec = planned[last.index]
    skipped = [s.role for s in steps if not s.succeeded]
    if not last.succeeded and step_spec["on_failure"] != "skip":
        name = f"step {last.index + 1} ({last.role})"
        return [
            failed(
                last.error_class or JobStatus.CANCELLED.value,
                f"{name} failed: {last.failure()}",
                failed_step=last.index,
            )
        ]
    if last.index + 1 < len(planned):
        return [Create(new_step(spec, last.index + 1, outputs(steps)))]
    return [_end(spec, steps, skipped)]


def outputs(steps: list[Step]) -> dict[str, str]:
    """Each ended step's output by role ("" for one skipped after failing)."""
    return {s.role: s.text if s.succeeded else "" for s in steps}


def values(spec: Mapping[str, Any], index: int, done: Mapping[str, str]) -> dict[str, str]:
    """What step ``index``'s templates may name, from the outputs so far."""
    planned: list[dict[str, Any]] = spec["steps"]
    found = {INPUT: spec["input"]}
    for earlier in planned[:index]:
        found[STEPS + earlier["role"]] = done.get(earlier["role"], "")
    if index > 0:
        found[PREVIOUS] = done.get(planned[index - 1]["role"], "")
    return found


def allowed_names(spec_steps: list[dict[str, Any]] | list[str], index: int) -> frozenset[str]:
    """The placeholders step ``index`` may use (given the roles of the chain, in order)."""
    roles = [s if isinstance(s, str) else s["role"] for s in spec_steps]
    names = {INPUT, *(STEPS + role for role in roles[:index])}
    if index > 0:
        names.add(PREVIOUS)
    return frozenset(names)


def new_step(spec: Mapping[str, Any], index: int, done: Mapping[str, str]) -> NewStep:
    """Step ``index`` as a job: its templates rendered with the outputs ``done`` so far."""
    step: dict[str, Any] = spec["steps"][index]
    rendered = messages(step.get("system"), step["prompt"], values(spec, index, done))
    return NewStep(
        index=index,
        role=step["role"],
        request={**step["request"], "messages": rendered},
        plan=step["plan"],
        metadata=step.get("metadata"),
    )


def _end(spec: Mapping[str, Any], steps: list[Step], skipped: list[str]) -> Finish:
    wanted = spec.get("output")
    by_role = {s.role: s for s in steps}
    chosen = by_role.get(wanted) if wanted else None
    if chosen is None or not chosen.succeeded:
        chosen = next((s for s in reversed(steps) if s.succeeded), None)
    if chosen is None:
        return failed("steps_failed", "every step failed (each was skipped)", skipped=skipped)
    if wanted and chosen.role != wanted:
        note = f"its output step {wanted!r} was skipped; the answer is {chosen.role!r}'s"
    else:
        note = None
    synthesis: dict[str, Any] = {"output": chosen.role, "skipped": skipped}
    if note:
        synthesis["note"] = note
    return Finish(True, result=chosen.result, synthesis=synthesis)
