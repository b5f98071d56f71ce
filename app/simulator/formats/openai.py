"""OpenAI's wire format: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``.

Bodies, SSE chunks, error objects and ``x-ratelimit-*`` headers follow the recorded payloads
in ``tests/fixtures/wire/openai_*.json``; resets are Go durations (``"12ms"``, ``"6m0s"``).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

from app.simulator.calls import ChatRequest, EmbedRequest, HttpRequest, Operation, Route
from app.simulator.config import SimModel
from app.simulator.faults import Fault, SimError
from app.simulator.formats.base import (
    Headers,
    ReplyMeta,
    WireFormat,
    content_text,
    image_url_count,
    invalid,
    positive_int,
    sse_event,
    string_list,
)
from app.simulator.limiter import BucketView
from app.simulator.structured import requested_schema
from app.simulator.tokens import Finish, Reply, float32_bytes
from app.simulator.tools import ToolSpec, choose_tool, spec_of

_ROUTES = {
    ("POST", "/v1/chat/completions"): Route(Operation.CHAT),
    ("POST", "/v1/embeddings"): Route(Operation.EMBED),
    ("GET", "/v1/models"): Route(Operation.MODELS),
}
_FINISH = {
    Finish.STOP: "stop",
    Finish.LENGTH: "length",
    Finish.CONTENT_FILTER: "content_filter",
    Finish.TOOL_CALLS: "tool_calls",
}
_LIMIT_NAMES = {
    "requests": "requests per min (RPM)",
    "tokens": "tokens per min (TPM)",
    "input_tokens": "input tokens per min (ITPM)",
    "output_tokens": "output tokens per min (OTPM)",
}
_KEYS_URL = "https://platform.openai.com/account/api-keys"
_LIMITS_URL = "https://platform.openai.com/account/rate-limits"
_MESSAGES = {
    Fault.INVALID_JSON: (
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
        "contact us through our help center at help.openai.com.)"
    ),
    Fault.SERVER_ERROR: (
        "The server had an error processing your request. Sorry about that! You can retry your "
        "request, or contact us through our help center at help.openai.com if you keep seeing "
        "this error."
    ),
    Fault.UNAVAILABLE: "The service is temporarily unavailable. Please retry your request.",
    Fault.OVERLOADED: "The engine is currently overloaded, please try again later.",
    Fault.TIMEOUT: "Request timed out.",
}
_STATUS = {
    Fault.NO_ROUTE: 404,
    Fault.AUTH: 401,
    Fault.INVALID_JSON: 400,
    Fault.INVALID_REQUEST: 400,
    Fault.NOT_FOUND: 404,
    Fault.CONTEXT_LENGTH: 400,
    Fault.RATE_LIMIT: 429,
    Fault.SERVER_ERROR: 500,
    Fault.UNAVAILABLE: 503,
    Fault.OVERLOADED: 503,
    Fault.TIMEOUT: 504,
}


def go_duration(seconds: float) -> str:
    """``seconds`` as OpenAI prints resets: a Go duration to the millisecond, rounded up."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _mask(key: str) -> str:
    """How OpenAI echoes a rejected key: the first three and last four characters."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


class OpenAIFormat(WireFormat):
    name = "openai"

    def route(self, request: HttpRequest, path: str) -> Route | None:
        return _ROUTES.get((request.method, path))

    def parse_chat(self, body: Any, route: Route) -> ChatRequest:
        if not isinstance(body, dict):
            raise invalid("Invalid type for request body: expected an object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("you must provide a model parameter", "model")
        messages = body.get("messages")
        if messages is None:
            raise invalid("Missing required parameter: 'messages'.", "messages")
        if not isinstance(messages, list) or not messages:
            raise invalid("Invalid 'messages': expected a non-empty array.", "messages")
        texts: list[str] = []
        images = 0
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise invalid(f"Missing required parameter: 'messages[{index}].role'.", "messages")
            text = content_text(message.get("content"))
            if text is None:
                raise invalid(
                    f"Invalid type for 'messages[{index}].content': expected one of a string "
                    "or array of objects.",
                    f"messages[{index}].content",
                )
            texts.append(text)
            images += image_url_count(message.get("content"), index)
        field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        try:
            max_tokens = positive_int(body.get(field))
        except ValueError:
            raise invalid(
                f"Invalid '{field}': expected an integer >= 1, but got {body.get(field)!r}.",
                field,
            ) from None
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise invalid("Invalid type for 'stream': expected a boolean.", "stream")
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return ChatRequest(
            model,
            texts,
            max_tokens,
            bool(stream),
            include_usage,
            tool=_tool(body, messages),
            images=images,
            json_schema=requested_schema(body.get("response_format")),
        )

    def parse_embed(self, body: Any, route: Route) -> EmbedRequest:
        if not isinstance(body, dict):
            raise invalid("Invalid type for request body: expected an object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("you must provide a model parameter", "model")
        if "input" not in body:
            raise invalid("Missing required parameter: 'input'.", "input")
        inputs = string_list(body["input"])
        if inputs is None or any(not text for text in inputs):
            raise invalid("'$.input' is invalid. Please check the API reference.", "input")
        try:
            dimensions = positive_int(body.get("dimensions"))
        except ValueError:
            raise invalid("Invalid 'dimensions': expected an integer >= 1.", "dimensions") from None
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise invalid("Invalid 'encoding_format': expected 'float' or 'base64'.", "encoding")
        return EmbedRequest(model, inputs, dimensions, encoding == "base64")

    def usage(self, reply: Reply) -> dict[str, Any]:
        """The ``usage`` object of an answer or of a stream's last chunk."""
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def render_chat(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> Any:
        silent = reply.finish in (Finish.CONTENT_FILTER, Finish.TOOL_CALLS)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if silent else reply.text,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_call is not None:
            call = reply.tool_call
            function = {"name": call.name, "arguments": call.arguments}
            message["tool_calls"] = [
                {"id": "call_" + meta.uid, "type": "function", "function": function}
            ]
        return {
            "id": self.response_id(meta),
            "object": "chat.completion",
            "created": int(meta.created),
            "model": chat.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _FINISH[reply.finish],
                }
            ],
            "usage": self.usage(reply),
            "service_tier": "default",
            "system_fingerprint": "fp_simulator",
        }

    def render_stream(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> list[bytes]:
        events = [sse_event(payload) for payload in self.stream_payloads(chat, reply, meta)]
        return [*self.stream_preamble(), *events, b"data: [DONE]\n\n"]

    def stream_preamble(self) -> list[bytes]:
        """What a stream sends before its first chunk (OpenRouter's keep-alive comments)."""
        return []

    def stream_payloads(
        self, chat: ChatRequest, reply: Reply, meta: ReplyMeta
    ) -> list[dict[str, Any]]:
        """The JSON of each ``chat.completion.chunk``, the finish chunk and usage last."""
        head = {
            "id": self.response_id(meta),
            "object": "chat.completion.chunk",
            "created": int(meta.created),
            "model": chat.model,
            "system_fingerprint": "fp_simulator",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            extra = {"usage": None} if chat.include_usage else {}
            return {**head, "choices": [choice], **extra}

        call = reply.tool_call
        if call is None:
            chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
            chunks += [chunk({"content": piece}) for piece in reply.deltas(self.words_per_delta)]
        else:  # the call's head first, then its arguments in fragments, as OpenAI streams it
            function = {"name": call.name, "arguments": ""}
            first = {"index": 0, "id": "call_" + meta.uid, "type": "function", "function": function}
            role = {"role": "assistant", "content": None, "tool_calls": [first], "refusal": None}
            chunks = [chunk(role)]
            chunks += [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in call.pieces()
            ]
        chunks.append(chunk({}, _FINISH[reply.finish]))
        if chat.include_usage:
            chunks.append({**head, "choices": [], "usage": self.usage(reply)})
        return chunks

    def response_id(self, meta: ReplyMeta) -> str:
        return "chatcmpl-" + meta.uid

    def render_embed(
        self, embed: EmbedRequest, vectors: list[list[float]], prompt_tokens: int, route: Route
    ) -> Any:
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": (
                    base64.b64encode(float32_bytes(vector)).decode() if embed.base64 else vector
                ),
            }
            for index, vector in enumerate(vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": embed.model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }

    def render_models(self, models: Mapping[str, SimModel]) -> Any:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "simulator"}
                for name in models
            ],
        }

    def render_error(self, error: SimError) -> tuple[int, Any]:
        param: str | None = None
        code: str | None = None
        kind = "invalid_request_error"
        fault = error.fault
        if fault is Fault.NO_ROUTE:
            message = f"Invalid URL ({error.detail})"
        elif fault is Fault.AUTH:
            if error.key is None:
                message = (
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                    f"YOUR_KEY). You can obtain an API key from {_KEYS_URL}."
                )
            else:
                code = "invalid_api_key"
                message = (
                    f"Incorrect API key provided: {_mask(error.key)}. You can find your API key "
                    f"at {_KEYS_URL}."
                )
        elif fault is Fault.INVALID_REQUEST:
            message, param = error.detail, error.param
        elif fault is Fault.NOT_FOUND:
            code = "model_not_found"
            message = f"The model `{error.model}` does not exist or you do not have access to it."
        elif fault is Fault.CONTEXT_LENGTH:
            code, param = "context_length_exceeded", "messages"
            total = error.prompt_tokens + error.output_tokens
            message = (
                f"This model's maximum context length is {error.context_window} tokens. However, "
                f"you requested {total} tokens ({error.prompt_tokens} in the messages, "
                f"{error.output_tokens} in the completion). Please reduce the length of the "
                "messages or completion."
            )
        elif fault is Fault.RATE_LIMIT:
            code = "rate_limit_exceeded"
            kind, message = self._rate_limit_message(error)
        else:
            kind = "server_error"
            message = _MESSAGES[fault]
        body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return _STATUS[fault], body

    @staticmethod
    def _rate_limit_message(error: SimError) -> tuple[str, str]:
        facts = error.rate_limit
        where = f"{error.model or 'this model'} in organization org-simulator"
        if facts is None:  # an injected 429, not the limiter's
            return "requests", f"Rate limit reached for {where}. Please try again in 1s."
        kind = "requests" if facts.kind == "requests" else "tokens"
        limit = f"{_LIMIT_NAMES[facts.kind]}: Limit {facts.limit}"
        if facts.too_large:
            return kind, (
                f"Request too large for {where} on {limit}, Requested {facts.requested}. "
                "The input or output tokens must be reduced in order to run successfully. "
                f"Visit {_LIMITS_URL} to learn more."
            )
        return kind, (
            f"Rate limit reached for {where} on {limit}, Used {facts.used}, Requested "
            f"{facts.requested}. Please try again in {go_duration(facts.retry_after_s)}. "
            f"Visit {_LIMITS_URL} to learn more."
        )

    def rate_limit_headers(self, views: Mapping[str, BucketView], now: float) -> Headers:
        headers: Headers = []
        for kind in ("requests", "tokens"):
            view = views.get(kind)
            if view is not None:
                name = kind.encode()
                headers += [
                    (b"x-ratelimit-limit-" + name, str(view.limit).encode()),
                    (b"x-ratelimit-remaining-" + name, str(view.remaining).encode()),
                    (b"x-ratelimit-reset-" + name, go_duration(view.reset_s).encode()),
                ]
        return headers

    def reply_headers(self, meta: ReplyMeta) -> Headers:
        return [
            (b"x-request-id", b"req_" + meta.uid.encode()),
            (b"openai-processing-ms", str(round(meta.duration_s * 1000)).encode()),
        ]


def _tool(body: dict[str, Any], messages: list[Any]) -> ToolSpec | None:
    """The tool the simulated model calls: OpenAI's ``tools`` and ``tool_choice``."""
    choice = body.get("tool_choice")
    tools = body.get("tools")
    if choice == "none" or not isinstance(tools, list):
        return None
    offered = [
        spec_of(tool["function"].get("name"), tool["function"].get("parameters"))
        for tool in tools
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]
    named = choice.get("function") if isinstance(choice, dict) else None
    forced = named.get("name") if isinstance(named, dict) else None
    answered = isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"
    return choose_tool(offered, forced=forced, answered=answered)
