"""A finished request of a batch as one line of OpenAI's output or error file.

    succeeded                        output  response {status_code: 200, request_id, body}
    failed on the provider's answer  error   response {status_code ≥ 400, request_id,
                                             body: {error}}, as /v1/chat/completions answers
    not executed (cancelled, window  error   response null, error {code, message}
    expired)

The HTTP status and error body of a failed request are exactly what ``POST
/v1/chat/completions`` answers for the same job (app/chat/answers.py), so a caller handles a
batch's failures the way it handles interactive ones. Lines are rendered from the job rows
whenever they are read; a finished job never changes, so neither does its line. A finish
reason is OpenAI's (``end_turn`` is ``stop``), so OpenAI's own types parse every body.
"""

from __future__ import annotations

from typing import Any

from app.batches.stop import EXPIRED
from app.chat.answers import completion, failure
from app.db.tables import JobRow
from app.ledger.cost import format_usd
from app.providers.finish_reasons import openai_finish_reason
from app.routing.decision import DEADLINE

# A request that never got an answer from a model: no HTTP response to show.
_NOT_EXECUTED = {
    "cancelled": ("cancelled", "This request was cancelled before it was executed."),
}


def result_line(job: JobRow) -> dict[str, Any]:
    """The job's line: in the output file if it succeeded, else in the error file."""
    if job.status == "succeeded" and job.result is not None:
        return output_line(job)
    return error_line(job)


def output_line(job: JobRow) -> dict[str, Any]:
    body = completion(job).model_dump(mode="json")
    for choice in body["choices"]:
        choice["finish_reason"] = openai_finish_reason(
            choice["finish_reason"], tool_calls=bool(choice["message"].get("tool_calls"))
        )
    return {
        "id": job.id,
        "custom_id": job.custom_id,
        "response": {"status_code": 200, "request_id": job.id, "body": body},
        "error": None,
        "cost_usd": format_usd(job.cost_usd) or "0",
    }


def error_line(job: JobRow) -> dict[str, Any]:
    line: dict[str, Any] = {"id": job.id, "custom_id": job.custom_id}
    if job.status == "cancelled" or job.error_class == DEADLINE:
        if job.error_class == DEADLINE:
            code, message = EXPIRED.code, EXPIRED.message
        elif job.error_class is not None:
            code, message = job.error_class, job.error_message or job.error_class
        else:
            code, message = _NOT_EXECUTED["cancelled"]
        line.update(response=None, error={"code": code, "message": message})
        return line
    status, body = failure(job)
    line.update(response={"status_code": status, "request_id": job.id, "body": body}, error=None)
    if job.cost_usd is not None:
        line["cost_usd"] = format_usd(job.cost_usd)
    return line
