"""Typed material (genteach.material): the protocol generic flows use, and find/replace
edits of a passage, checked by code."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from genteach.agents.parsing import ParseError
from genteach.agents.tool_use import ApiList, ApiSpec
from genteach.material import Editable, EditSpan, Material, Passage, apply_spans
from genteach.prompts import PromptLibrary

TEXT = "The tunnel opened in March. The toll is four pounds. The tunnel opened late."


def test_passage_and_api_list_are_materials_and_only_the_passage_is_editable() -> None:
    passage = Passage(title="Tunnel", text=TEXT)
    apis = ApiList(
        library="harbour",
        apis=[
            ApiSpec(name="get_toll", description="The toll for a vehicle."),
            ApiSpec(name="get_counts", description="Vehicle counts per day."),
        ],
    )
    assert isinstance(passage, Material) and isinstance(apis, Material)
    assert isinstance(passage, Editable) and not isinstance(apis, Editable)
    assert (passage.kind, passage.title) == ("passage", "Tunnel")
    assert (apis.kind, apis.title) == ("api_list", "harbour")
    prompts = PromptLibrary()
    assert passage.render(prompts, "agent") == passage.render(prompts, "student") == TEXT


def test_api_list_renders_withheld_apis_only_for_agents() -> None:
    apis = ApiList(
        library="harbour",
        description="Tunnel data.",
        apis=[
            ApiSpec(name="get_toll", description="The toll for a vehicle.", returns="pounds"),
            ApiSpec(name="get_counts", description="Vehicle counts per day."),
        ],
    ).withholding(["get_toll", "get_toll"])
    assert apis.withheld == ["get_toll"]
    assert [a.name for a in apis.shown] == ["get_counts"]
    prompts = PromptLibrary()
    assert apis.render(prompts, "agent") == (
        "Library: harbour - Tunnel data.\n\n"
        "1. get_toll: The toll for a vehicle.\n"
        "  Parameters: none\n"
        "  Returns: pounds\n\n"
        "2. get_counts: Vehicle counts per day.\n"
        "  Parameters: none\n"
        "  Returns: not documented\n\n\n"
        "Withheld from the assistant for this task (it does not see them): get_toll"
    )
    assert apis.render(prompts, "student") == (
        "Library: harbour - Tunnel data.\n\n"
        "1. get_counts: Vehicle counts per day.\n"
        "  Parameters: none\n"
        "  Returns: not documented"
    )


def test_several_spans_apply_to_the_original_text() -> None:
    spans = [
        EditSpan(find="late.", replace="on time."),
        EditSpan(find="four", replace="five"),
    ]
    assert apply_spans(TEXT, spans) == (
        "The tunnel opened in March. The toll is five pounds. The tunnel opened on time."
    )
    # a replacement may be empty (a deletion), and a later span may not see an earlier one's
    # output: each find is looked up in the original text
    assert apply_spans(TEXT, [EditSpan(find=" The toll is four pounds.", replace="")]) == (
        "The tunnel opened in March. The tunnel opened late."
    )
    with pytest.raises(ParseError, match="the find text 'five' does not occur"):
        apply_spans(TEXT, [*spans, EditSpan(find="five", replace="six")])


def test_passage_apply_edits_keeps_the_title_and_makes_a_new_passage() -> None:
    passage = Passage(title="Tunnel", text=TEXT)
    edited = passage.apply_edits([EditSpan(find="March", replace="May")])
    assert edited == Passage(title="Tunnel", text=TEXT.replace("March", "May"))
    assert passage.text == TEXT


@pytest.mark.parametrize(
    ("spans", "reason"),
    [
        ([], "no edit: give at least one find/replace span"),
        (
            [EditSpan(find="bridge", replace="x")],
            "edit 1: the find text 'bridge' does not occur in the passage; quote one exact "
            "excerpt that occurs once",
        ),
        (
            [
                EditSpan(find="four", replace="five"),
                EditSpan(find="The tunnel opened", replace="x"),
            ],
            "edit 2: the find text 'The tunnel opened' occurs 2 times in the passage; quote one "
            "exact excerpt that occurs once",
        ),
        (
            [
                EditSpan(find="opened in March", replace="a"),
                EditSpan(find="in March. The", replace="b"),
            ],
            "two edits overlap: give separate, non-overlapping excerpts",
        ),
        (
            [EditSpan(find="four pounds", replace="four pounds")],
            "the edits change nothing: each replace must differ from its find",
        ),
    ],
)
def test_bad_edits_are_refused_with_the_reason(spans: list[EditSpan], reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        Passage(text=TEXT).apply_edits(spans)
    assert exc.value.reason == reason


def test_a_long_find_is_quoted_short_in_the_reason() -> None:
    find = "word " * 30
    with pytest.raises(ParseError) as exc:
        apply_spans(TEXT, [EditSpan(find=find, replace="x")])
    assert exc.value.reason.startswith(f"edit 1: the find text {find[:60]!r} does not occur")


def test_edit_span_shape() -> None:
    with pytest.raises(ValidationError, match="at least 3 characters"):
        EditSpan(find="ab", replace="x")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        EditSpan.model_validate({"find": "abc", "replace": "x", "note": "y"})
