from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from genteach.agents.parsing import (
    ParseError,
    SkipItem,
    check_no_placeholders,
    extract_json_object,
    format_placeholders,
    parse_json_as,
    shares_words,
)


class Out(BaseModel):
    title: str
    n: int


@pytest.mark.parametrize(
    "text",
    [
        '{"title": "a", "n": 1}',
        '```json\n{"title": "a", "n": 1}\n```',
        'Here it is: {"title": "a", "n": 1} hope it helps',
        '  \n{"title": "a",\n "n": 1}\n',
    ],
)
def test_extract_accepts_common_wrappings(text: str) -> None:
    assert extract_json_object(text) == {"title": "a", "n": 1}


def test_extract_braces_inside_strings() -> None:
    assert extract_json_object('{"title": "a } { b", "n": 2}')["title"] == "a } { b"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty answer"),
        ("   ", "empty answer"),
        ("no json here", "no JSON object"),
        ('{"title": "a", "n": ', "truncated JSON"),
        ('{"title": "unterminated', "truncated JSON"),
        ('{"title": "a" "n": 1}', "invalid JSON"),
        ("[1, 2]", "no JSON object"),
    ],
)
def test_extract_malformed(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        extract_json_object(text)


def test_parse_json_as_validates_and_names_the_field() -> None:
    assert parse_json_as('{"title": "x", "n": 3}', Out) == Out(title="x", n=3)
    with pytest.raises(ParseError, match=r"field n: .*integer"):
        parse_json_as('{"title": "x", "n": "three"}', Out)
    with pytest.raises(ParseError, match=r"field title: Field required"):
        parse_json_as('{"n": 1}', Out)


def test_skip_object_is_a_skip_not_a_parse_error() -> None:
    with pytest.raises(SkipItem) as exc:
        parse_json_as('{"skip": true, "reason": "only a cookie banner"}', Out)
    assert exc.value.reason == "only a cookie banner"
    with pytest.raises(SkipItem, match="no reason given"):
        parse_json_as('{"skip": true}', Out)


def test_placeholders_come_from_the_template_not_from_marked_material() -> None:
    prompt = (
        'Reply {"text": "<your transformed text, in paragraphs>", "title": "<a short title>"}.\n'
        "<<<SEED\nJava: Map<String, Integer> m; a note <see the appendix below>.\nSEED>>>\n"
        "Tags such as <div class=x> or <b> are not placeholders."
    )
    found = format_placeholders([prompt])
    assert found == {"<your transformed text, in paragraphs>", "<a short title>"}
    with pytest.raises(ParseError, match="'<a short title>', a placeholder of the format"):
        check_no_placeholders('{"title": "<a short title>", "text": "..."}', found)
    check_no_placeholders('{"title": "Tides", "text": "<see the appendix below>"}', found)


def test_shares_words_counts_runs_of_words() -> None:
    assert shares_words(
        "The FAILED message repeats the format, example!",
        "the failed message repeats the format",
        6,
    )
    assert not shares_words("the failed message", "the failed message", 6)  # too short


@pytest.mark.parametrize("value", ["<the points a correct answer must cover>", "...", " … "])
def test_a_value_that_is_only_a_placeholder_shape_is_sent_back(value: str) -> None:
    class Rubric(BaseModel):
        rubric: list[str]

    text = json.dumps({"rubric": ["Keeps every figure.", value]})
    with pytest.raises(ParseError, match=r"field rubric\[1\] is .*a placeholder of the format"):
        parse_json_as(text, Rubric)
    assert parse_json_as('{"rubric": ["Uses <b> tags for bold terms."]}', Rubric).rubric


def test_a_nested_placeholder_is_named_by_its_path_once() -> None:
    class Key(BaseModel):
        rubric: list[str]

    class Task(BaseModel):
        key: Key

    class Tasks(BaseModel):
        tasks: list[Task]

    text = json.dumps({"tasks": [{"key": {"rubric": ["Names the guilds.", "<the points>"]}}]})
    with pytest.raises(ParseError) as caught:
        parse_json_as(text, Tasks)
    assert str(caught.value).startswith("field tasks[0].key.rubric[1] is '<the points>'")
