from __future__ import annotations

import pytest
from pydantic import BaseModel

from genteach.agents.parsing import ParseError, SkipItem, extract_json_object, parse_json_as


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
