"""The prompt templates: names in braces are substituted, nothing is ever evaluated."""

from __future__ import annotations

from app.orchestration.templates import placeholders, render, unknown_names


def test_placeholders_are_substituted_and_escapes_unescaped() -> None:
    template = "Task: {input}\nPlan: {steps.plan}\nLiteral: {{input}}"
    values = {"input": "sort a list", "steps.plan": "1. compare"}
    assert render(template, values) == "Task: sort a list\nPlan: 1. compare\nLiteral: {input}"


def test_other_braces_are_text() -> None:
    template = 'Reply as {"answer": "...", "n": 1} about {input} {a.b.c} { input } {}'
    assert [p.name for p in placeholders(template)] == ["input"]
    assert render(template, {"input": "x"}) == (
        'Reply as {"answer": "...", "n": 1} about x {a.b.c} { input } {}'
    )


def test_values_are_inserted_as_text_never_rendered_again() -> None:
    output = "{input} {steps.secret} {{x}} {__class__}"
    assert render("Review: {previous}", {"previous": output}) == f"Review: {output}"


def test_what_str_format_would_evaluate_is_text_or_an_unknown_name() -> None:
    template = "{input[0]} {input!r} {input:>10} {0}"
    assert list(placeholders(template)) == []
    assert render(template, {}) == template
    # A dotted name is only ever looked up whole, and this one no step may use.
    assert unknown_names("{input.__class__}", frozenset({"input"})) == ["input.__class__"]


def test_unknown_names_are_reported_once_each_in_order() -> None:
    template = "{input} {inptu} {steps.later} {inptu} {previous}"
    allowed = frozenset({"input", "previous"})
    assert unknown_names(template, allowed) == ["inptu", "steps.later"]
    assert unknown_names("{{inptu}}", allowed) == []  # an escape names nothing
