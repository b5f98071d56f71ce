"""Switchboard: a durable, multi-provider LLM job gateway."""

__version__ = "0.1.0"
