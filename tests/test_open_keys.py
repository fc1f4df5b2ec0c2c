"""Open-answer keys that code checks. The constraints key: an answer checked against the
constraints its instruction states, each check shown passing and failing with the detail a
reject record quotes; ``fit_task`` refuses keys whose constraints the instruction does not
state or whose facts are not in the text, and the instruction agent and the editor apply
it. The fields key: an extraction as a JSON object, its values found in the text."""

from __future__ import annotations

import json

import pytest

from genteach.agents import ExcerptTaskAgent, ParseError
from genteach.agents.instruct import InstructInput
from genteach.agents.views import CategoryView, SkillView
from genteach.keys import ConstraintsKey, KeyKinds, Layout, count_words, longest_shared_run
from genteach.prompts import PromptLibrary

TEXT = (
    "The Lowmarsh tunnel opened in March 2021 after four years of work. It cut the average "
    "commute from 42 to 28 minutes, according to the city council, although critics blame a "
    "bus strike for inflating the earlier figures, and lorry drivers say the toll pushed them "
    "onto the coast road."
)
L = Layout()


def key(**kw: object) -> ConstraintsKey:
    return ConstraintsKey.model_validate({"kind": "constraints", **kw})


def test_words_are_counted_as_a_reader_counts_them() -> None:
    assert count_words("Don't count - or ** marks; well-known 3.5 km, ok?") == 8
    assert count_words("") == 0
    assert (
        longest_shared_run("The tunnel OPENED in March, late.", TEXT) == 4
    )  # tunnel opened in march
    assert longest_shared_run("nothing shared here", TEXT) == 0


def test_each_constraint_passes_and_fails_with_its_reason() -> None:
    k = key(keep=["42", "28 minutes"], include=["commuters"], exclude=["tunnel"], max_words=20)
    ok = "Commuters now travel 28 minutes instead of 42, the council says."
    v = k.check(ok, L)
    assert v.status == "passed" and v.answer is None
    assert v.detail == 'keeps 2 facts; uses "commuters"; avoids "tunnel"; at most 20 words'
    bad = "The tunnel cut the commute to 28 min. " + "Very " * 20
    v = k.check(bad, L)
    assert v.status == "failed"
    assert v.detail.startswith(
        'the answer lost "42", "28 minutes"; does not use "commuters"; uses the banned "tunnel"; '
        "28 words, more than 20; the key: "
    )
    # whole words, case and punctuation ignored: "tunnels" is not "tunnel", "42," is "42"
    assert key(exclude=["tunnel"], keep=["42"]).check("Tunnels: 42, mostly.", L).status == "passed"
    assert (
        key(min_words=5)
        .check("Too short.", L)
        .detail.startswith("the answer 2 words, fewer than 5")
    )


def test_copied_wording_is_measured_against_the_text_the_task_works_on() -> None:
    k = key(max_copied_words=4)
    assert k.fit_task("Reword it; share at most 4 words in a row with the text.", TEXT) is None
    assert k.source == TEXT
    copied = "It cut the average commute from 42 to 28 minutes, said the council."
    assert k.check(copied, L).detail.startswith("the answer copies 9 words in a row from the text")
    assert k.check("Journeys shrank to 28 minutes from 42, officials said.", L).status == "passed"


def test_a_fact_listed_twice_is_one_constraint() -> None:
    k = key(
        keep=["March 2021", "march 2021", "42 to 28 minutes", "March 2021"],
        include=["toll", "Toll"],
    )
    assert k.fit_task("Keep March 2021 and 42 to 28 minutes; use the word toll.", TEXT) is None
    assert (k.keep, k.include) == (["March 2021", "42 to 28 minutes"], ["toll"])
    assert k.summary(L).startswith("keeps 2 facts")


def test_the_text_handed_back_unchanged_fails() -> None:
    """A copy keeps every fact, so a key that asks only for facts kept would pass it; a
    change of case or layout is a change (capitalisation, formatting tasks)."""
    k = key(keep=["March 2021", "42 to 28 minutes"])
    assert (
        k.fit_task("Lay the text out in sections; keep March 2021 and 42 to 28 minutes.", TEXT)
        is None
    )
    copy = TEXT.replace(". ", ".\n\n")
    assert k.check(copy, L).status == "failed"
    assert k.check(copy, L).detail.startswith("the answer repeats the text unchanged; the key:")
    assert k.check("## Opening\n" + TEXT, L).status == "passed"
    assert k.check(TEXT.upper().replace("MARCH", "March"), L).status == "passed"
    assert key(keep=["March 2021"]).check(TEXT, L).status == "passed"  # no source given


@pytest.mark.parametrize(
    ("form", "good", "bad", "reason"),
    [
        ("json", '```json\n{"name": "x", "year": 2021}\n```', "{name: x}", "not valid JSON"),
        ("json", '[{"name": "a", "year": 1}]', '{"name": "a"}', "lacks the key year"),
        ("bullet_list", "- one\n- two\n* three", "One line.\n- two", "bullet points"),
        ("numbered_list", "1. a\n2. b\n3) c", "1. a\n3. b", "numbered list"),
        ("markdown_table", "| a | b |\n|---|---|\n| 1 | 2 |", "a | b\n1 | 2", "Markdown table"),
    ],
)
def test_formats(form: str, good: str, bad: str, reason: str) -> None:
    k = key(format=form, json_keys=["name", "year"] if form == "json" else [])
    assert k.check(good, L).status == "passed"
    v = k.check(bad, L)
    assert v.status == "failed" and reason in v.detail


def test_fit_task_drops_what_the_student_was_not_told_and_refuses_an_empty_key() -> None:
    nothing = key().fit_task("Rewrite it.", TEXT)
    assert nothing is not None and nothing.startswith("the constraints key checks nothing")
    bound = key(max_words=80, keep=["42"])
    assert bound.fit_task("Rewrite it briefly.", TEXT) is None and bound.max_words is None
    assert key(max_words=80).fit_task("Rewrite it briefly.", TEXT) == nothing  # nothing left
    stated = key(max_words=80)
    assert stated.fit_task("Rewrite it in at most 80 words.", TEXT) is None
    assert stated.max_words == 80
    assert key(min_words=90, max_words=80).fit_task("Write 80 to 90 words.", TEXT) == (
        "min_words 90 is above max_words 80"
    )
    told = key(include=["gridlock", "tunnel"])
    assert told.fit_task('Use the word "gridlock".', TEXT) is None
    assert told.include == ["gridlock"]  # "tunnel" was never asked for
    # a banned word may be named by the instruction or be in the text (a name to mask)
    masked = key(exclude=["Lowmarsh", "Paris"])
    assert masked.fit_task("Mask every place name.", TEXT) is None
    assert masked.exclude == ["Lowmarsh"]
    invented = key(keep=["45 minutes", "28"], max_words=50)
    assert invented.fit_task("Rewrite it in 50 words.", TEXT) is None
    assert invented.keep == ["28"]  # a fact the text lacks is not kept
    assert key(keep=["42"], exclude=["42"]).fit_task("Avoid 42.", TEXT) == (
        '"42" is both kept and banned'
    )
    # keys without the JSON format are dropped, not refused (the 1.5B model fills them)
    loose = key(json_keys=["a"], max_words=9)
    assert loose.fit_task("Answer in 9 words.", TEXT) is None and loose.json_keys == []


def test_same_answer_ignores_the_rubric_and_the_source() -> None:
    a, b = key(keep=["42"], rubric=["x"]), key(keep=["42"], rubric=["y"])
    b.source = TEXT
    assert a.same_answer(b) and not a.same_answer(key(keep=["28"]))


def test_the_schema_never_asks_a_model_for_the_source() -> None:
    schema = ConstraintsKey.model_json_schema()
    assert "source" not in schema["properties"] and schema["required"] == ["kind"]
    assert KeyKinds().parse({"kind": "constraints", "max_words": 5}).max_words == 5  # type: ignore[attr-defined]


def _instruct_input() -> InstructInput:
    return InstructInput(
        skill=SkillView(id="text_modification", name="Text Modification", description="d"),
        category=CategoryView(
            id="paraphrasing", name="Paraphrasing", description="d", guidance="g"
        ),
        material=None,
        material_text=TEXT + " " + TEXT,
        count=1,
    )


def test_the_instruction_agent_refuses_a_key_its_instruction_does_not_state() -> None:
    agent = ExcerptTaskAgent(
        "instruct/paraphrasing", key_kinds=[ConstraintsKey], prompts=PromptLibrary()
    )
    words = TEXT.split()
    task = {
        "instruction": "Paraphrase the text for a newsletter.",
        "start": " ".join(words[:8]),
        "end": " ".join(words[-8:]),
    }
    unstated = {**task, "key": {"kind": "constraints", "max_words": 50}}
    with pytest.raises(ParseError, match="task 1: the constraints key checks nothing the instr"):
        agent.parse(json.dumps({"tasks": [unstated]}), _instruct_input())
    stated = {**unstated, "instruction": "Paraphrase the text in at most 50 words."}
    batch = agent.parse(json.dumps({"tasks": [stated]}), _instruct_input())
    assert batch.tasks[0].key.source == TEXT  # type: ignore[attr-defined]


def test_lines_acrostic_and_numbers_the_text_lacks() -> None:
    poem = "Tides turn twice\nIn the estuary\nDown under the quay\nEbbing at dusk"
    k = key(line_count=4, acrostic="TIDE")
    assert k.fit_task('Write four lines, 4 in all, whose initials spell "TIDE".', TEXT) is None
    assert k.check(poem, L).status == "passed"
    v = k.check(poem.replace("Down", "Below"), L)
    assert v.status == "failed" and 'line initials spell "tibe", not "tide"' in v.detail
    assert "has 3 lines, not 4" in k.check("Tides\nIn\nDown", L).detail
    unnamed = key(acrostic="TIDE", max_words=40)
    assert unnamed.fit_task("Write an acrostic in 40 words.", TEXT) is None
    assert unnamed.acrostic is None  # the word to spell was never given
    assert key(acrostic="TIDE", line_count=3).fit_task("3 lines spelling TIDE", TEXT) == (
        "the acrostic has 4 letters but line_count is 3"
    )
    # data to text: every figure of the answer comes from the text
    k = key(no_new_numbers=True)
    assert k.fit_task("Describe the record; add no figure it lacks.", TEXT) is None
    assert k.check("Opened in 2021, the tunnel cut commutes from 42 to 28 minutes.", L).passed
    v = k.check("Opened in 2021, it cut commutes by 14 minutes (33%).", L)
    assert v.detail.startswith("the answer gives numbers the text lacks: 14, 33")
    assert key(no_new_numbers=True).fit_task("Describe it.", None) == (
        "no_new_numbers needs the text the task works on"
    )


def test_fields_key_checks_an_extraction_against_the_text_and_the_answer() -> None:
    from genteach.keys import FieldsKey

    k = FieldsKey.model_validate(
        {
            "kind": "fields",
            "fields": [{"name": "opened", "value": "March 2021"}, {"name": "after", "value": "28"}],
        }
    )
    assert k.fit_task("Give JSON with keys opened and after.", TEXT) is None
    assert k.fit_task("Give JSON with the key opened.", TEXT) == (
        'the field "after" is not named in the instruction'
    )
    invented = FieldsKey.model_validate(
        {**k.model_dump(), "fields": [{"name": "opened", "value": "May"}]}
    )
    reason = invented.fit_task("Give JSON with the key opened.", TEXT)
    assert reason is not None and reason.startswith('the value "May" of opened is not in the text')
    derived = FieldsKey.model_validate(
        {"kind": "fields", "fields": [{"name": "opened", "value": "May", "copied": False}]}
    )
    assert derived.fit_task("Give JSON with the key opened.", TEXT) is None
    mixed = FieldsKey.model_validate(  # only the copied value must be in the text
        {
            "kind": "fields",
            "fields": [
                {"name": "opened", "value": "March 2021"},
                {"name": "fax", "value": "not stated"},
                {"name": "after", "value": "2021-03", "copied": False},
                {"name": "by", "value": "the mayor"},
            ],
        }
    )
    instruction = "Give JSON with keys opened, fax, after and by."
    assert mixed.fit_task(instruction, TEXT) == (
        'the value "the mayor" of by is not in the text: copy it exactly, or set its "copied" '
        "to false if it is derived"
    )
    assert mixed.fit_task(instruction, None) is None  # no text to check against
    answer = 'The fields:\n```json\n{"Opened": "march 2021", "after": 28}\n```'
    v = k.check(answer, L)
    assert v.status == "passed" and v.detail == "2 fields"
    v = k.check('{"opened": "2021", "after": 28}', L)
    assert v.status == "failed" and v.detail.startswith('opened "2021"; the key is {opened: March')
    assert k.check("opened: March 2021", L).detail == "no JSON object in the answer"
    assert k.check('{"opened": "March 2021"}', L).detail.startswith("after missing")


def test_an_extraction_reads_the_outer_object_and_a_verbatim_list_is_checked() -> None:
    from genteach.keys import FieldsKey, ListKey

    k = FieldsKey.model_validate(
        {"kind": "fields", "fields": [{"name": "buyer", "value": "Ana Ruiz"}]}
    )
    nested = 'Result: {"buyer": "Ana Ruiz", "address": {"city": "Leeds"}}'
    assert k.check(nested, L).status == "passed"
    items = ListKey(items=["42", "28 minutes"], verbatim=True)
    assert items.fit_task("List the figures.", TEXT) is None
    invented = ListKey(items=["42", "30 minutes"], verbatim=True)
    assert invented.fit_task("List the figures.", TEXT) == (
        'the item "30 minutes" is not in the text: copy items exactly, or set "verbatim" to false'
    )
    assert ListKey(items=["42", "30 minutes"]).fit_task("List them.", TEXT) is None
    # a thousands separator does not split an item
    money = ListKey(items=["1,200 pounds", "a bus strike"])
    assert money.compare("1,200 pounds, a bus strike", L).status == "passed"


def test_list_markers_and_quotes_do_not_count_against_a_line_form() -> None:
    k = key(no_new_numbers=True)
    assert k.fit_task("Describe it; add no figure.", TEXT) is None
    assert k.check("1. The commute fell from 42 to 28 minutes.\n2) It opened in 2021.", L).passed
    quoted = '"Tides turn"\n“In the bay”\n‘Down we go’\nEbb'
    assert key(acrostic="TIDE").check(quoted, L).status == "passed"


def test_bans_of_function_words_and_bans_of_required_words_are_dropped() -> None:
    k = key(include=["traffic counts"], exclude=["and", "the", "tunnel", "traffic counts"])
    instruction = 'Rewrite it with "traffic counts", without the word "tunnel".'
    assert k.fit_task(instruction, TEXT) is None
    assert k.exclude == ["tunnel"]  # "and", "the": no answer avoids them; a required phrase
    named = key(keep=["42"], exclude=["42"])
    assert named.fit_task("Keep the figures; avoid 42.", TEXT) == '"42" is both kept and banned'
