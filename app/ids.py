"""Identifiers: a type prefix and a ULID, so ids sort by creation time and say what they name."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    return f"{prefix}_{str(ULID()).lower()}"


def job_id() -> str:
    return new_id("job")


def batch_id() -> str:
    return new_id("batch")


def file_id() -> str:
    """OpenAI's shape for file ids (``file-…``), which its SDKs and users expect."""
    return f"file-{str(ULID()).lower()}"
