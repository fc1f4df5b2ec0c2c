"""json_shape: the abstract shape of an agent's JSON answer, generated from the model that
parses it (placeholders from field descriptions, never content a model could copy)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from genteach.agents import Suggestions, TaskDraft, TransformedText, draft_models, json_shape
from genteach.agents.instruct import KEY_PLACEHOLDER, key_shapes
from genteach.agents.tool_use import ApiResult, ToolTaskDraft
from genteach.keys import (
    ChoiceKey,
    ExactKey,
    MatchingKey,
    NumericKey,
    ToolOutcomeKey,
    UnanswerableKey,
)


def test_shapes_of_agent_answers() -> None:
    assert json_shape(TransformedText) == (
        '{"title": "<a short, specific title>", '
        '"text": "<the transformed text, paragraphs separated by \\n\\n>"}'
    )
    assert json_shape(Suggestions) == (
        '{"suggestions": ["<one suggestion per goal, in order: what to change in this task and '
        'how, naming the exact sentence, figure, claim or option>", ...]}'
    )
    assert json_shape(ApiResult) == (
        '{"status": "<one of ok or error>", "result": <a JSON value>, "error": "<text>"}'
    )


def test_shapes_of_key_kinds() -> None:
    assert key_shapes([ChoiceKey, NumericKey, MatchingKey, UnanswerableKey]) == {
        "choice": '{"kind": "choice", "correct": ["<the correct option, written out in full '
        '(more than one only if the question asks to select all that apply)>", ...], '
        '"distractors": ["<the wrong options, each plausible to a careless reader and wrong '
        'for a stated reason>", ...], "explanation": "<why the correct option is right and, '
        'briefly, what is wrong with each distractor>"}',
        "numeric": '{"kind": "numeric", "value": <the number>, "unit": "<its unit, or an empty '
        'string>", "tolerance": <the largest difference still counted right (0: exact; use it '
        "for rounded results)>}",
        "matching": '{"kind": "matching", "pairs": [{"left": "<an item of the first column>", '
        '"right": "<the item of the second column it goes with>"}, ...], "unused": ["<items of '
        "the second column that match nothing (plausible ones, so the last pair does not "
        'follow by elimination); may be empty>", ...]}',
        # "shown" is set by code and never asked of a model
        "unanswerable": '{"kind": "unanswerable", "missing": "<the information the material '
        'lacks>"}',
    }
    assert key_shapes([ToolOutcomeKey])["tool_outcome"] == (
        '{"kind": "tool_outcome", "outcome": "<how a correct conversation ends: with '
        'FINAL_ANSWER or with FAILED: final_answer or failed>", "required_apis": ["<the APIs a '
        'complete solution calls, in call order>", ...], "reference": "<the reference solution '
        'on one line>"}'
    )


def test_shapes_of_instruction_batches() -> None:
    _, batch = draft_models(TaskDraft, [ChoiceKey, ExactKey])
    instruction = (
        '"instruction": "<the complete instruction the student reads; options, items or '
        'statements to judge go in the key, not here>"'
    )
    assert json_shape(batch, overrides={"key": KEY_PLACEHOLDER}) == (
        '{"tasks": [{' + instruction + ', "key": ' + KEY_PLACEHOLDER + "}, ...]}"
    )
    _, tool = draft_models(ToolTaskDraft, [ToolOutcomeKey])
    assert json_shape(tool, overrides={"key": "KEY"}) == (
        '{"tasks": [{"instruction": "<the user\'s request, exactly as the assistant will see it>", '
        '"key": KEY, "withheld_apis": ["<the APIs removed from the list the assistant is shown; '
        'empty unless the family says otherwise>", ...]}, ...]}'
    )


class Inner(BaseModel):
    name: str = Field(description="its name")


class Sample(BaseModel):
    count: int
    ratio: float | None = None
    flag: bool = Field(description="whether it holds")
    extra: dict[str, int] = Field(default_factory=dict)
    mode: Literal["fast", "slow"] = "fast"
    described: Literal["a", "b"] = Field("a", description="the variant")
    fixed: Literal["x"] = "x"
    numbers: list[int] = Field(default_factory=list, description="the numbers")
    inner: Inner | None = None
    either: int | str = 1
    hidden: str = Field(default="", exclude=True)


def test_shape_of_every_annotation() -> None:
    assert json_shape(Sample) == (
        '{"count": <an integer>, "ratio": <a number> or null, "flag": <whether it holds>, '
        '"extra": <a JSON object>, "mode": "<one of fast or slow>", '
        '"described": "<the variant: a or b>", "fixed": "x", "numbers": [<the numbers>, ...], '
        '"inner": {"name": "<its name>"} or null, "either": <a value>}'
    )


def test_skip_and_overrides_at_any_depth() -> None:
    assert json_shape(
        Sample,
        skip=frozenset({"count", "extra", "mode", "described", "fixed", "either"}),
        overrides={"flag": "<FLAG>", "name": '"<NAME>"'},
    ) == (
        '{"ratio": <a number> or null, "flag": <FLAG>, "numbers": [<the numbers>, ...], '
        '"inner": {"name": "<NAME>"} or null}'
    )
