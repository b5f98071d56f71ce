"""The wire formats the simulator speaks, by the name ``SimProvider.format`` uses."""

from __future__ import annotations

from app.simulator.formats.anthropic import AnthropicFormat
from app.simulator.formats.base import ReplyMeta, WireFormat
from app.simulator.formats.compat import GroqFormat, LMStudioFormat, OpenRouterFormat, VLLMFormat
from app.simulator.formats.gemini import GeminiFormat
from app.simulator.formats.ollama import OllamaFormat
from app.simulator.formats.openai import OpenAIFormat

FORMATS: dict[str, WireFormat] = {
    fmt.name: fmt
    for fmt in (
        OpenAIFormat(),
        AnthropicFormat(),
        GeminiFormat(),
        OllamaFormat(),
        GroqFormat(),
        OpenRouterFormat(),
        VLLMFormat(),
        LMStudioFormat(),
    )
}

__all__ = ["FORMATS", "ReplyMeta", "WireFormat"]
