"""An ensemble's rules: branches in parallel, and the synthesizer that decides from them.

It decides as soon as the outcome can no longer change, and what is still queued is then
cancelled, never billed (a branch a worker already holds finishes and is billed):

- ``first_success``: the first branch to succeed wins (two at once: the lower index). With
  ``hedge_after_s``, branch n waits n × that long before it starts — or starts at once when
  every started branch has failed — so a fast first answer leaves the rest unstarted.
- ``majority``: each successful branch votes with its normalised answer (or the
  ``vote_pattern`` capture in it; no match abstains). An answer wins once it has ``quorum``
  votes (default: more than half of the branches) and no outcome of the branches still
  running could overtake it; ties at the end go to the answer whose first vote came from the
  lowest branch. The ensemble fails ``no_quorum`` once no answer can reach the quorum.
- ``judge``: once every branch has ended, a judge step (a job of its own) gets the answers
  numbered, and either writes the answer (``merge``) or names the best (``pick``, held to
  naming a valid number by a regex validator). Fewer answers than ``quorum`` (default 1):
  ``no_quorum``; exactly one: it is the answer and no judge is paid for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from app.jobs.states import JobStatus
from app.orchestration.decisions import (
    Cancel,
    Create,
    Finish,
    Move,
    Promote,
    Step,
    failed,
    live_ids,
)
from app.orchestration.steps import NewStep, messages
from app.validation.compile import compile_pattern

BRANCH, JUDGE = "branch", "judge"
NO_QUORUM, BRANCHES_FAILED = "no_quorum", "branches_failed"
MAX_VOTE_CHARS = 200
_STRIPPED = " \t\n.!?;:,'\"`"


def next_moves(spec: Mapping[str, Any], steps: list[Step]) -> list[Move]:
    branches = [s for s in steps if s.role == BRANCH]
    judge = next((s for s in steps if s.role == JUDGE), None)
    synthesizer = spec["synthesizer"]
    if synthesizer == "first_success":
        return _first_success(spec, branches)
    if synthesizer == "majority":
        return _majority(spec, branches)
    return _judged(spec, branches, judge)


def _first_success(spec: Mapping[str, Any], branches: list[Step]) -> list[Move]:
    won = next((b for b in branches if b.succeeded), None)
    if won is not None:
        finish = Finish(True, result=won.result, synthesis=_won("first_success", won))
        return _ending(finish, branches)
    if all(not b.live for b in branches):
        return [_all_failed(branches)]
    started = [b for b in branches if b.status in (JobStatus.QUEUED, JobStatus.RUNNING)]
    waiting = [b for b in branches if b.status is JobStatus.WAITING]
    if spec.get("hedge_after_s") and not started and waiting:
        return [Promote((waiting[0].id,))]  # every started branch failed: the next goes now
    return []


def _majority(spec: Mapping[str, Any], branches: list[Step]) -> list[Move]:
    quorum = spec.get("quorum") or len(branches) // 2 + 1
    pattern = spec.get("vote_pattern")
    groups: dict[str, list[Step]] = {}
    abstained = []
    for branch in branches:
        if not branch.succeeded:
            continue
        vote = vote_of(branch.text, pattern)
        if vote is None:
            abstained.append(branch.index)
        else:
            groups.setdefault(vote, []).append(branch)
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[1][0].index))
    remaining = sum(1 for b in branches if b.live)
    leader = len(ranked[0][1]) if ranked else 0
    runner_up = len(ranked[1][1]) if len(ranked) > 1 else 0
    tally = {
        "synthesizer": "majority",
        "quorum": quorum,
        "votes": [
            {"answer": vote[:MAX_VOTE_CHARS], "branches": [b.index for b in voters]}
            for vote, voters in ranked
        ],
        "abstained": abstained,
    }
    decided = leader > runner_up + remaining or remaining == 0
    if leader >= quorum and decided:
        winner = ranked[0][1][0]
        tally.update(winner=winner.index, model=winner.model)
        return _ending(Finish(True, result=winner.result, synthesis=tally), branches)
    if leader + remaining < quorum:
        if not groups and remaining == 0 and not abstained:
            return [_all_failed(branches)]
        why = (
            f"no answer can reach the quorum of {quorum} of {len(branches)} branches "
            f"(best: {leader} vote{'s' if leader != 1 else ''})"
        )
        return _ending(failed(NO_QUORUM, why, **tally), branches)
    return []


def _judged(spec: Mapping[str, Any], branches: list[Step], judge: Step | None) -> list[Move]:
    if judge is not None:
        return _verdict(spec, branches, judge)
    if any(b.live for b in branches):
        return []
    answers = [b for b in branches if b.succeeded]
    quorum = spec.get("quorum") or 1
    if not answers:
        return [_all_failed(branches)]
    if len(answers) < quorum:
        why = f"{len(answers)} of {len(branches)} branches answered; the judge needs {quorum}"
        return [failed(NO_QUORUM, why, synthesizer=JUDGE)]
    if len(answers) == 1:
        only = answers[0]
        synthesis = _won(JUDGE, only) | {"note": "one answer: nothing to judge, no judge called"}
        return [Finish(True, result=only.result, synthesis=synthesis)]
    return [Create(judge_step(spec, len(branches), answers))]


def judge_step(spec: Mapping[str, Any], index: int, answers: Sequence[Step]) -> NewStep:
    """The judge's job: the request and the branches' answers, numbered from 1."""
    judge: dict[str, Any] = spec["judge"]
    values = {"input": spec["input"], "answers": numbered(a.text for a in answers)}
    request = {**judge["request"], "messages": messages(judge["system"], judge["prompt"], values)}
    if judge["mode"] == "pick":
        request["validators"] = [
            *request.get("validators", []),
            {"type": "regex", "pattern": pick_pattern(len(answers))},
        ]
    return NewStep(index=index, role=JUDGE, request=request, plan=judge["plan"])


def numbered(texts: Any) -> str:
    """``Answer 1:`` … blocks, as the judge reads them."""
    return "\n\n".join(f"Answer {n}:\n{text}" for n, text in enumerate(texts, start=1))


def pick_pattern(count: int) -> str:
    """An RE2 pattern a ``pick`` judge's reply must match: a number from 1 to ``count``."""
    numbers = "|".join(str(n) for n in range(count, 0, -1))  # 10 before 1
    return rf"(?i)^\W*(?:answer\W*)?({numbers})\b"


def _verdict(spec: Mapping[str, Any], branches: list[Step], judge: Step) -> list[Move]:
    if judge.live:
        return []
    if not judge.succeeded:
        why = f"the judge failed: {judge.failure()}"
        return [failed(judge.error_class or JobStatus.CANCELLED.value, why, synthesizer=JUDGE)]
    answers = [b for b in branches if b.succeeded]
    synthesis: dict[str, Any] = {
        "synthesizer": JUDGE,
        "mode": spec["judge"]["mode"],
        "answers": [b.index for b in answers],
        "judge_model": judge.model,
    }
    if spec["judge"]["mode"] == "merge":
        return [Finish(True, result=judge.result, synthesis=synthesis)]
    found = compile_pattern(pick_pattern(len(answers))).search(judge.text)
    picked = int(found.group(1) or 0) if found is not None else 0
    if not 1 <= picked <= len(answers):  # its validator let it through: cannot happen
        return [failed("quality", "the judge's reply names no answer", **synthesis)]
    winner = answers[picked - 1]
    synthesis.update(picked=picked, winner=winner.index, model=winner.model)
    return [Finish(True, result=winner.result, synthesis=synthesis)]


def vote_of(text: str, pattern: str | None) -> str | None:
    """A branch's vote: its answer (or the pattern's capture in it), normalised; None if the
    pattern does not match (an abstention)."""
    if pattern is not None:
        compiled = compile_pattern(pattern)
        found = compiled.search(text)
        if found is None:
            return None
        text = found.group(1 if compiled.groups else 0) or ""
    return normalise(text)


def normalise(text: str) -> str:
    """Answers that say the same compare equal: a JSON object or array by value (keys
    sorted), any other text case-folded, its blanks collapsed, surrounding punctuation and
    quotes dropped."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            document = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass
        else:
            return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()
    return " ".join(stripped.casefold().split()).strip(_STRIPPED)


def _won(synthesizer: str, branch: Step) -> dict[str, Any]:
    return {"synthesizer": synthesizer, "winner": branch.index, "model": branch.model}


def _all_failed(branches: list[Step]) -> Finish:
    reasons = "; ".join(f"branch {b.index + 1}: {b.failure()}" for b in branches)
    return failed(BRANCHES_FAILED, f"no branch answered ({reasons})")


def _ending(finish: Finish, branches: list[Step]) -> list[Move]:
    """The ensemble's end, cancelling the branches it no longer needs."""
    live = live_ids(branches)
    return [finish, Cancel(live)] if live else [finish]
