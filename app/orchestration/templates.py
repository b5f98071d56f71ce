"""The prompt templates of chain steps and judges: names in braces, nothing else.

    {input}            the orchestration's input
    {previous}         the output of the step just before (not in the first step)
    {steps.<role>}     the output of an earlier step with that role
    {answers}          a judge's numbered list of the branches' answers
    {{input}}          a literal ``{input}``

A placeholder is a brace, a name (letters, digits, ``_``, ``-``, at most one ``.``), a brace;
every other brace is text, so a prompt can show JSON as it is. There are no expressions,
attributes, filters or calls — rendering is substitution — and a name the template may not
use is found when it is submitted (``names``), never when a worker renders it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

# ``{{name}}`` (an escape) or ``{name}``; the name's grammar is the placeholder's.
_PLACEHOLDER = re.compile(
    r"\{\{([A-Za-z_][\w-]*(?:\.[\w-]+)?)\}\}|\{([A-Za-z_][\w-]*(?:\.[\w-]+)?)\}"
)


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    start: int  # where it is in the template, for messages


def placeholders(template: str) -> Iterator[Placeholder]:
    """The placeholders of ``template`` in order (escaped ones are text, not placeholders)."""
    for match in _PLACEHOLDER.finditer(template):
        if match.group(2) is not None:
            yield Placeholder(match.group(2), match.start())


def unknown_names(template: str, allowed: frozenset[str]) -> list[str]:
    """The placeholders' names that are not in ``allowed``, in order, once each."""
    seen: dict[str, None] = {}
    for placeholder in placeholders(template):
        if placeholder.name not in allowed:
            seen.setdefault(placeholder.name)
    return list(seen)


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with every placeholder replaced by its value and escapes unescaped.

    Every name must be in ``values`` (checked at submission); values are inserted as they
    are, never read as templates themselves, so an output containing ``{input}`` stays text.
    """

    def substitute(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped is not None:
            return "{" + escaped + "}"
        return values[name]

    return _PLACEHOLDER.sub(substitute, template)
