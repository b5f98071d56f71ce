"""The chain and ensemble rules, move by move, as pure functions of a spec and its steps."""

from __future__ import annotations

from typing import Any

import pytest

from app.jobs.states import JobStatus
from app.orchestration import chain, ensemble
from app.orchestration.decisions import Cancel, Create, Finish, Move, Promote, Step
from app.orchestration.ensemble import normalise, pick_pattern, vote_of
from app.validation.compile import compile_pattern

OK, FAILED, QUEUED, RUNNING = (
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.QUEUED,
    JobStatus.RUNNING,
)
WAITING, CANCELLED = JobStatus.WAITING, JobStatus.CANCELLED
PLAN = {"models": ["m"], "providers": ["p"], "routing": None, "start": 0}


def step(index: int, status: JobStatus, text: str = "", role: str = "branch") -> Step:
    result = {"text": text, "finish_reason": "stop"} if status is OK else None
    error = None if status in (OK, CANCELLED) or status in (QUEUED, RUNNING, WAITING) else "x"
    return Step(f"job_{role}{index}", index, role, status, result, error, "boom", f"m{index}")


# -- chains --------------------------------------------------------------------------------
def chain_spec(*on_failure: str, output: str | None = None) -> dict[str, Any]:
    roles = ["plan", "do", "check"]
    return {
        "input": "the task",
        "output": output,
        "steps": [
            {
                "role": role,
                "system": None,
                "prompt": f"{role}: {{input}}" + (" after {previous}" if i else ""),
                "on_failure": on_failure[i] if i < len(on_failure) else "fail",
                "request": {"max_tokens": 5},
                "plan": PLAN,
            }
            for i, role in enumerate(roles)
        ],
    }


def chain_step(index: int, status: JobStatus, text: str = "") -> Step:
    return step(index, status, text, role=["plan", "do", "check"][index])


def only(moves: list[Move]) -> Move:
    assert len(moves) == 1, moves
    return moves[0]


def test_a_running_step_holds_the_chain() -> None:
    assert chain.next_moves(chain_spec(), [chain_step(0, OK, "p"), chain_step(1, RUNNING)]) == []


def test_the_next_step_is_rendered_with_the_outputs_so_far() -> None:
    move = only(chain.next_moves(chain_spec(), [chain_step(0, OK, "the plan")]))
    assert isinstance(move, Create)
    assert (move.step.index, move.step.role) == (1, "do")
    assert move.step.request == {
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "do: the task after the plan"}],
    }


def test_the_last_step_ends_the_chain_with_its_answer() -> None:
    steps = [chain_step(0, OK, "a"), chain_step(1, OK, "b"), chain_step(2, OK, "c")]
    move = only(chain.next_moves(chain_spec(), steps))
    assert isinstance(move, Finish)
    assert move.succeeded
    assert move.result == {"text": "c", "finish_reason": "stop"}
    assert move.synthesis == {"output": "check", "skipped": []}


def test_a_named_output_step_gives_the_chain_its_answer() -> None:
    steps = [chain_step(0, OK, "a"), chain_step(1, OK, "b"), chain_step(2, OK, "c")]
    move = only(chain.next_moves(chain_spec(output="do"), steps))
    assert isinstance(move, Finish)
    assert move.result is not None
    assert move.result["text"] == "b"


@pytest.mark.parametrize("status", [FAILED, CANCELLED])
def test_a_step_that_did_not_succeed_fails_the_chain_naming_it(status: JobStatus) -> None:
    move = only(chain.next_moves(chain_spec(), [chain_step(0, OK, "a"), chain_step(1, status)]))
    assert isinstance(move, Finish)
    assert not move.succeeded
    assert move.error_class == ("x" if status is FAILED else "cancelled")
    assert (move.error_message or "").startswith("step 2 (do) failed: ")


def test_a_skippable_step_goes_on_with_an_empty_output() -> None:
    spec = chain_spec("fail", "skip")
    move = only(chain.next_moves(spec, [chain_step(0, OK, "a"), chain_step(1, FAILED)]))
    assert isinstance(move, Create)
    assert move.step.request["messages"][0]["content"] == "check: the task after "


def test_a_chain_whose_every_step_was_skipped_fails() -> None:
    spec = chain_spec("skip", "skip", "skip")
    steps = [chain_step(0, FAILED), chain_step(1, FAILED), chain_step(2, FAILED)]
    move = only(chain.next_moves(spec, steps))
    assert isinstance(move, Finish)
    assert move.error_class == "steps_failed"


def test_a_skipped_output_step_leaves_the_answer_to_the_last_that_succeeded() -> None:
    spec = chain_spec("fail", "fail", "skip", output="check")
    steps = [chain_step(0, OK, "a"), chain_step(1, OK, "b"), chain_step(2, FAILED)]
    move = only(chain.next_moves(spec, steps))
    assert isinstance(move, Finish)
    assert move.result is not None
    assert move.result["text"] == "b"
    assert move.synthesis["skipped"] == ["check"]
    assert "note" in move.synthesis


def test_allowed_names_are_the_input_earlier_roles_and_previous() -> None:
    roles = ["plan", "do", "check"]
    assert chain.allowed_names(roles, 0) == {"input"}
    assert chain.allowed_names(roles, 2) == {"input", "previous", "steps.plan", "steps.do"}


# -- ensembles -----------------------------------------------------------------------------
def ensemble_spec(synthesizer: str, **extra: Any) -> dict[str, Any]:
    judge = {
        "mode": extra.pop("mode", "merge"),
        "system": "Judge.",
        "prompt": "Q: {input}\n{answers}",
        "request": {"max_tokens": 9},
        "plan": PLAN,
    }
    return {
        "synthesizer": synthesizer,
        "quorum": None,
        "vote_pattern": None,
        "hedge_after_s": None,
        "input": "the question",
        "judge": judge if synthesizer == "judge" else None,
        **extra,
    }


def test_first_success_wins_at_once_and_cancels_what_is_still_live() -> None:
    branches = [step(0, RUNNING), step(1, OK, "b"), step(2, QUEUED)]
    finish, cancel = ensemble.next_moves(ensemble_spec("first_success"), branches)
    assert isinstance(finish, Finish)
    assert finish.succeeded
    assert finish.synthesis == {"synthesizer": "first_success", "winner": 1, "model": "m1"}
    assert cancel == Cancel(("job_branch0", "job_branch2"))


def test_first_success_with_every_branch_failed_fails_naming_each() -> None:
    move = only(ensemble.next_moves(ensemble_spec("first_success"), [step(0, FAILED)] * 2))
    assert isinstance(move, Finish)
    assert move.error_class == "branches_failed"
    assert "branch 1: x: boom" in (move.error_message or "")


def test_hedged_first_success_starts_the_next_branch_when_the_started_ones_failed() -> None:
    spec = ensemble_spec("first_success", hedge_after_s=5)
    waiting = [step(0, FAILED), step(1, WAITING), step(2, WAITING)]
    assert ensemble.next_moves(spec, waiting) == [Promote(("job_branch1",))]
    started = [step(0, FAILED), step(1, RUNNING), step(2, WAITING)]
    assert ensemble.next_moves(spec, started) == []


def majority(*branches: Step, **extra: Any) -> list[Move]:
    return ensemble.next_moves(ensemble_spec("majority", **extra), list(branches))


def test_majority_decides_once_no_outcome_of_the_rest_can_overtake() -> None:
    assert majority(step(0, OK, "A"), step(1, OK, "B"), step(2, RUNNING)) == []
    finish, cancel = majority(step(0, OK, "a."), step(1, OK, " A "), step(2, QUEUED))
    assert isinstance(finish, Finish)
    assert finish.synthesis["winner"] == 0
    assert finish.synthesis["votes"] == [{"answer": "a", "branches": [0, 1]}]
    assert cancel == Cancel(("job_branch2",))


def test_majority_fails_once_the_quorum_is_out_of_reach() -> None:
    assert (
        majority(step(0, OK, "A"), step(1, OK, "B"), step(2, FAILED), step(3, RUNNING), quorum=2)
        == []
    )
    # Of four branches the default quorum is three: with one left, no answer can get there.
    finish, cancel = majority(step(0, OK, "A"), step(1, OK, "B"), step(2, FAILED), step(3, QUEUED))
    assert isinstance(finish, Finish)
    assert finish.error_class == "no_quorum"
    assert "quorum of 3 of 4" in (finish.error_message or "")
    assert cancel == Cancel(("job_branch3",))


def test_a_tie_at_the_end_goes_to_the_answer_first_given_by_the_lowest_branch() -> None:
    moves = majority(
        step(0, OK, "B"), step(1, OK, "A"), step(2, OK, "A"), step(3, OK, "B"), quorum=2
    )
    finish = only(moves)
    assert isinstance(finish, Finish)
    assert finish.synthesis["winner"] == 0


def test_an_answer_without_the_vote_pattern_abstains() -> None:
    moves = majority(
        step(0, OK, "Answer: Lima"),
        step(1, OK, "I think the answer: lima!"),
        step(2, OK, "no idea"),
        vote_pattern=r"(?i)answer:\s*(\w+)",
    )
    finish = only(moves)
    assert isinstance(finish, Finish)
    assert finish.succeeded
    assert finish.synthesis["abstained"] == [2]
    assert finish.synthesis["votes"] == [{"answer": "lima", "branches": [0, 1]}]


def test_json_answers_vote_by_value() -> None:
    assert normalise('{"b": 1, "a": [1, 2]}') == normalise(' {"a":[1,2],"b":1}\n')
    assert normalise("Paris.") == normalise('  "paris" ') == "paris"
    assert vote_of("x = 4", r"= (\d)") == "4"
    assert vote_of("nothing", r"\d") is None


def judged(*steps: Step, **extra: Any) -> list[Move]:
    return ensemble.next_moves(ensemble_spec("judge", **extra), list(steps))


def test_the_judge_waits_for_every_branch_then_gets_their_answers_numbered() -> None:
    assert judged(step(0, OK, "one"), step(1, RUNNING)) == []
    move = only(judged(step(0, OK, "one"), step(1, FAILED), step(2, OK, "three")))
    assert isinstance(move, Create)
    assert (move.step.index, move.step.role) == (3, "judge")
    assert move.step.request["messages"] == [
        {"role": "system", "content": "Judge."},
        {"role": "user", "content": "Q: the question\nAnswer 1:\none\n\nAnswer 2:\nthree"},
    ]


def test_a_picking_judge_is_held_to_naming_a_valid_answer() -> None:
    move = only(judged(step(0, OK, "one"), step(1, OK, "two"), mode="pick"))
    assert isinstance(move, Create)
    pattern = move.step.request["validators"][-1]["pattern"]
    compiled = compile_pattern(pattern)
    assert compiled.search("2")
    assert compiled.search("Answer #1 is best")
    assert not compiled.search("3")
    assert not compiled.search("the second")


def test_the_pick_becomes_the_answer_of_the_branch_it_names() -> None:
    steps = [step(0, OK, "one"), step(1, FAILED), step(2, OK, "three"), step(3, OK, "2", "judge")]
    finish = only(judged(*steps, mode="pick"))
    assert isinstance(finish, Finish)
    assert finish.result is not None
    assert finish.result["text"] == "three"
    assert (finish.synthesis["picked"], finish.synthesis["winner"]) == (2, 2)


def test_a_merging_judge_writes_the_answer_and_a_failed_one_fails_the_ensemble() -> None:
    merged = only(judged(step(0, OK, "a"), step(1, OK, "b"), step(2, OK, "ab", "judge")))
    assert isinstance(merged, Finish)
    assert merged.result is not None
    assert merged.result["text"] == "ab"
    failed = only(judged(step(0, OK, "a"), step(1, OK, "b"), step(2, FAILED, role="judge")))
    assert isinstance(failed, Finish)
    assert failed.error_class == "x"
    assert (failed.error_message or "").startswith("the judge failed: ")


def test_a_judge_needs_its_quorum_of_answers_and_is_skipped_for_a_single_one() -> None:
    short = only(judged(step(0, OK, "a"), step(1, FAILED), step(2, FAILED), quorum=2))
    assert isinstance(short, Finish)
    assert short.error_class == "no_quorum"
    single = only(judged(step(0, FAILED), step(1, OK, "b")))
    assert isinstance(single, Finish)
    assert single.succeeded
    assert single.synthesis["winner"] == 1


def test_pick_patterns_tell_ten_from_one() -> None:
    found = compile_pattern(pick_pattern(10)).search("10")
    assert found is not None
    assert found.group(1) == "10"
