"""Typed answer keys (genteach.keys): validation, layout, views, and the check of a
response's final answer against its key, with the exact detail strings stored in records."""

from __future__ import annotations

import json
import random
from typing import Any, ClassVar, Literal

import pytest
from pydantic import ValidationError

from genteach.keys import (
    BUILTIN_KEYS,
    AnswerKey,
    ChoiceKey,
    EnvironmentKey,
    ExactKey,
    FreeTextKey,
    Judgement,
    KeyKinds,
    LabelsKey,
    Layout,
    ListKey,
    MatchingKey,
    NumericKey,
    OrderingKey,
    Pair,
    ProgramTestsKey,
    ToolOutcomeKey,
    UnanswerableKey,
    Verification,
    final_answer,
    kind_of,
    normalize,
    parse_number,
    public_view,
    says_unsettled,
)

CHOICE = ChoiceKey(
    correct=["Rents rose, and wages fell."],
    distractors=["Rents fell.", "Wages rose, as did rents.", "Nothing changed."],
    explanation="The passage gives both figures.",
)
#: Display: (A) Wages rose, as did rents. (B) Rents rose, and wages fell. (C) Nothing
#: changed. (D) Rents fell.
CHOICE_LAYOUT = Layout(order=[2, 0, 3, 1], labels="upper_paren")
CHOICE_KEY = '(B) "Rents rose, and wages fell."'


def v(kind: str, status: str, detail: str, answer: str | None) -> Verification:
    return Verification(kind=kind, status=status, detail=detail, answer=answer)  # type: ignore[arg-type]


# -- helpers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Reasoning.\n\nFinal answer: (B)", "(B)"),
        ("**Final answer:** b)", "b)"),
        ("### Final Answer: 42", "42"),
        ("> final answer： yes", "yes"),
        ("Final answer: first\nFinal answer: second", "second"),
        ("Final answer:\n- one\n- two", "- one\n- two"),
        ("Final answer: `1998`", "1998"),
        ("No final line here.", None),
        ("Final answer:   ", None),
    ],
)
def test_final_answer_reads_the_last_final_line(response: str, expected: str | None) -> None:
    assert final_answer(response) == expected


@pytest.mark.parametrize(
    "text",
    [
        "cannot be determined from the passage",
        "It can't be known.",
        "not stated",
        "The passage does not say.",
        "insufficient information",
        "Unanswerable.",
        "impossible to tell",
    ],
)
def test_unsettled_phrases(text: str) -> None:
    assert says_unsettled(text)


@pytest.mark.parametrize("text", ["1998", "It was stated in 1998.", "the council decided"])
def test_settled_answers_are_not_unsettled(text: str) -> None:
    assert not says_unsettled(text)


def test_normalize_and_parse_number() -> None:
    assert normalize("  The  Harbour-Tunnel, an ÉTÉ! ") == "harbour tunnel été"
    assert parse_number("about 12,500 km") == 12500.0
    assert parse_number("−3.5 degrees") == -3.5
    assert parse_number("12.5e3") == 12500.0
    assert parse_number("37%") == 37.0
    assert parse_number("none") is None


# -- choice -------------------------------------------------------------------------------
def test_choice_view_and_public_view() -> None:
    view = CHOICE.view(CHOICE_LAYOUT)
    assert view == {
        "form": "choice",
        "kind": "choice",
        "options": [
            {"label": "(A)", "text": "Wages rose, as did rents.", "correct": False},
            {"label": "(B)", "text": "Rents rose, and wages fell.", "correct": True},
            {"label": "(C)", "text": "Nothing changed.", "correct": False},
            {"label": "(D)", "text": "Rents fell.", "correct": False},
        ],
        "answer": "(B)",
        "multiple": False,
        "explanation": "The passage gives both figures.",
    }
    assert public_view(view) == {
        "form": "choice",
        "kind": "choice",
        "options": [
            {"label": "(A)", "text": "Wages rose, as did rents."},
            {"label": "(B)", "text": "Rents rose, and wages fell."},
            {"label": "(C)", "text": "Nothing changed."},
            {"label": "(D)", "text": "Rents fell."},
        ],
        "multiple": False,
    }
    assert CHOICE.summary(CHOICE_LAYOUT) == CHOICE_KEY
    assert CHOICE.correct_positions(CHOICE_LAYOUT) == [1]


@pytest.mark.parametrize(
    "response",
    [
        "Final answer: (B)",
        "Final answer: B",
        "**Final answer:** b)",
        "Final answer: B. Rents rose, and wages fell.",
        "Final answer: (B) Rents rose, and wages fell.",
        "Final answer: Rents rose, and wages fell.",
        "Final answer: rents rose and wages fell",
        "Weighing the options...\nFinal answer: [B]\n\nThat is all.",
    ],
)
def test_choice_passes_every_spelling_of_the_right_option(response: str) -> None:
    got = CHOICE.check(response, CHOICE_LAYOUT)
    assert (got.status, got.detail) == ("passed", "(B)")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            "Final answer: (C)",
            v("choice", "failed", f"the response chose (C); the key is {CHOICE_KEY}", "(C)"),
        ),
        (
            "Final answer: Wages rose, as did rents.",
            v(
                "choice",
                "failed",
                f"the response chose (A); the key is {CHOICE_KEY}",
                "Wages rose, as did rents.",
            ),
        ),
        (
            "Final answer: B, D",
            v("choice", "failed", f"the response chose (B), (D); the key is {CHOICE_KEY}", "B, D"),
        ),
        (
            "Final answer: (E)",
            v(
                "choice",
                "failed",
                f"the final answer names no option; the key is {CHOICE_KEY}",
                "(E)",
            ),
        ),
        (
            "Final answer: cannot be determined",
            v(
                "choice",
                "failed",
                f"the response says the material does not settle it; the key is {CHOICE_KEY}",
                "cannot be determined",
            ),
        ),
        ("I think it is B.", v("choice", "failed", "no 'Final answer:' line", None)),
    ],
)
def test_choice_failures_say_what_was_chosen_and_the_key(
    response: str, expected: Verification
) -> None:
    assert CHOICE.check(response, CHOICE_LAYOUT) == expected


def test_choice_with_several_correct_options() -> None:
    key = ChoiceKey(correct=["alpha", "gamma"], distractors=["beta", "delta"])
    layout = Layout(
        order=[2, 0, 3, 1], labels="lower_paren"
    )  # (a) beta (b) alpha (c) delta (d) gamma
    assert key.view(layout)["answer"] == "(b), (d)" and key.view(layout)["multiple"] is True
    for response in ("Final answer: (b), (d)", "Final answer: b and d", "Final answer: d; b"):
        assert key.check(response, layout).status == "passed", response
    assert key.check("Final answer: (b)", layout) == v(
        "choice", "failed", 'the response chose (b); the key is (b) "alpha"; (d) "gamma"', "(b)"
    )


def test_choice_number_labels() -> None:
    layout = Layout(order=[3, 2, 1, 0], labels="number_dot")
    assert [o["label"] for o in CHOICE.view(layout)["options"]] == ["1.", "2.", "3.", "4."]
    assert CHOICE.check("Final answer: 4.", layout).status == "passed"
    assert CHOICE.check("Final answer: 1", layout).detail == (
        'the response chose 1.; the key is 4. "Rents rose, and wages fell."'
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"correct": ["(A) The rent rose."], "distractors": ["b c", "d e"]},
            "option '(A) The rent rose.' starts with a label: write the option text only; "
            "labels are added when it is shown",
        ),
        (
            {"correct": ["x y"], "distractors": ["B. Wages fell.", "d e"]},
            "option 'B. Wages fell.' starts with a label",
        ),
        (
            {"correct": ["Same thing."], "distractors": ["same thing", "other"]},
            "two options are the same",
        ),
        ({"correct": ["x y"], "distractors": ["!!", "other"]}, "an option is empty"),
        ({"correct": ["x y"], "distractors": ["only one"]}, "distractors"),
        ({"correct": [], "distractors": ["a b", "c d"]}, "correct"),
    ],
)
def test_choice_validation(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ChoiceKey(**data)


def test_choice_layout_is_a_permutation_with_a_listed_label_style() -> None:
    rng = random.Random(5)
    seen = set()
    for _ in range(200):
        layout = CHOICE.layout(rng, ["lower_paren", "number_dot"])
        assert sorted(layout.order) == [0, 1, 2, 3]
        assert layout.labels in ("lower_paren", "number_dot")
        seen.add(tuple(layout.order))
    assert len(seen) == 24  # every order of four options occurs
    assert CHOICE.layout(rng, []).labels == "upper_paren"


# -- exact, numeric, list -----------------------------------------------------------------
EXACT = ExactKey(value="1998", aliases=["nineteen ninety-eight"])


@pytest.mark.parametrize(
    "response",
    ["Final answer: 1998", "Final answer: In 1998.", "Final answer: Nineteen ninety-eight"],
)
def test_exact_passes(response: str) -> None:
    got = EXACT.check(response, Layout())
    assert (got.status, got.detail) == ("passed", "1998")


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        ("Final answer: 1999", 'the response answered "1999"; the key is "1998"'),
        (
            "Final answer: it was in the year 1998 according to the passage text",
            'the response answered "it was in the year 1998 according to the passage text"; '
            'the key is "1998"',
        ),
        (
            "Final answer: not stated in the passage",
            'the response says the material does not settle it; the key is "1998"',
        ),
        ("1998", "no 'Final answer:' line"),
    ],
)
def test_exact_fails(response: str, detail: str) -> None:
    got = EXACT.check(response, Layout())
    assert (got.status, got.detail) == ("failed", detail)


NUMERIC = NumericKey(value=12500, unit="km")


@pytest.mark.parametrize(
    "response",
    ["Final answer: 12,500 km", "Final answer: about 12500", "Final answer: 12.5e3 km"],
)
def test_numeric_passes_with_separators_and_units(response: str) -> None:
    got = NUMERIC.check(response, Layout())
    assert (got.status, got.detail) == ("passed", "12500")


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        ("Final answer: 12,400 km", "the response gave 12400; the key is 12500 km"),
        ("Final answer: many", "no number in the final answer; the key is 12500 km"),
        (
            "Final answer: cannot be determined",
            "the response says the material does not settle it; the key is 12500 km",
        ),
    ],
)
def test_numeric_fails(response: str, detail: str) -> None:
    got = NUMERIC.check(response, Layout())
    assert (got.status, got.detail) == ("failed", detail)


def test_numeric_tolerance_and_validation() -> None:
    key = NumericKey(value=2.5, unit="%", tolerance=0.1)
    assert key.summary(Layout()) == "2.5 ± 0.1 %"
    assert key.check("Final answer: 2.58%", Layout()).status == "passed"
    assert key.check("Final answer: 2.7%", Layout()).detail == (
        "the response gave 2.7; the key is 2.5 ± 0.1 %"
    )
    with pytest.raises(ValidationError, match="the value must be a finite number"):
        NumericKey(value=float("inf"))
    with pytest.raises(ValidationError, match="tolerance"):
        NumericKey(value=1, tolerance=-1)


LIST = ListKey(items=["a bus strike", "the coast road"])


@pytest.mark.parametrize(
    "response",
    [
        "Final answer: a bus strike; the coast road",
        "Final answer: the coast road, a bus strike",
        "Final answer:\n- a bus strike\n- the coast road",
        "Final answer:\n1. A bus strike\n2. The coast road.",
    ],
)
def test_list_passes_with_any_separator(response: str) -> None:
    got = LIST.check(response, Layout())
    assert (got.status, got.detail) == ("passed", "all items")


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        (
            "Final answer: a bus strike",
            "missing the coast road; the key is [a bus strike; the coast road]",
        ),
        (
            "Final answer: a bus strike; the coast road; the ferry",
            "extra the ferry; the key is [a bus strike; the coast road]",
        ),
        (
            "Final answer: a rail strike; the ferry",
            "missing a bus strike; the coast road, extra a rail strike; the ferry; the key is "
            "[a bus strike; the coast road]",
        ),
        (
            "Final answer: not mentioned",
            "the response says the material does not settle it; the key is "
            "[a bus strike; the coast road]",
        ),
    ],
)
def test_list_fails(response: str, detail: str) -> None:
    got = LIST.check(response, Layout())
    assert (got.status, got.detail) == ("failed", detail)


def test_ordered_list_checks_the_order() -> None:
    key = ListKey(items=["first step", "second step"], ordered=True)
    assert key.check("Final answer: first step; second step", Layout()).status == "passed"
    assert key.check("Final answer: second step; first step", Layout()).detail == (
        "items out of order; the key is [first step; second step]"
    )


# -- ordering and matching ----------------------------------------------------------------
ORDERING = OrderingKey(items=["strike", "opening", "counts", "critique"])


def test_ordering_layout_never_shows_the_true_order_or_its_reverse() -> None:
    rng = random.Random(0)
    seen = set()
    for _ in range(500):
        layout = ORDERING.layout(rng, ["upper_dot"])
        assert sorted(layout.order) == [0, 1, 2, 3] and layout.labels == "upper_dot"
        seen.add(tuple(layout.order))
    assert (0, 1, 2, 3) not in seen and (3, 2, 1, 0) not in seen
    assert len(seen) == 22  # every other order of four


def test_ordering_view_and_check() -> None:
    layout = Layout(order=[3, 0, 2, 1], labels="upper_paren")
    view = ORDERING.view(layout)
    assert view == {
        "form": "items",
        "kind": "ordering",
        "items": [
            {"label": "(A)", "text": "critique"},
            {"label": "(B)", "text": "strike"},
            {"label": "(C)", "text": "counts"},
            {"label": "(D)", "text": "opening"},
        ],
        "answer": "B, D, C, A",
    }
    assert public_view(view) == {k: view[k] for k in ("form", "kind", "items")}
    for response in ("Final answer: B, D, C, A", "Final answer: (B) -> (D) -> (C) -> (A)"):
        assert ORDERING.check(response, layout).status == "passed", response
    assert ORDERING.check("Final answer: A, C, D, B", layout) == v(
        "ordering", "failed", "the response ordered A, C, D, B; the key is B, D, C, A", "A, C, D, B"
    )
    assert ORDERING.check("Final answer: strike first", layout) == v(
        "ordering",
        "failed",
        "could not read a sequence of labels; the key is B, D, C, A",
        "strike first",
    )


MATCHING = MatchingKey(
    pairs=[
        Pair(left="council", right="the counts"),
        Pair(left="critics", right="the strike"),
        Pair(left="lorries", right="the coast road"),
    ]
)


def test_matching_layout_is_never_the_identity() -> None:
    rng = random.Random(1)
    orders = {tuple(MATCHING.layout(rng, ["number_dot"]).order) for _ in range(300)}
    assert (0, 1, 2) not in orders and len(orders) == 5
    # the second column is always lettered: the first is numbered
    assert MATCHING.layout(rng, ["number_dot"]).labels == "upper_paren"


def test_matching_view_and_check() -> None:
    layout = Layout(order=[2, 0, 1])
    view = MATCHING.view(layout)
    assert view["left"] == [
        {"label": "1.", "text": "council"},
        {"label": "2.", "text": "critics"},
        {"label": "3.", "text": "lorries"},
    ]
    assert view["right"] == [
        {"label": "(A)", "text": "the coast road"},
        {"label": "(B)", "text": "the counts"},
        {"label": "(C)", "text": "the strike"},
    ]
    assert view["answer"] == "1-B, 2-C, 3-A" and "answer" not in public_view(view)
    for response in ("Final answer: 1-B, 2-C, 3-A", "Final answer: 1 - (B); 2 - (C); 3 - (A)"):
        assert MATCHING.check(response, layout).status == "passed", response
    assert MATCHING.check("Final answer: 1-C, 2-A", layout) == v(
        "matching", "failed", "the response matched 1-C, 2-A; the key is 1-B, 2-C, 3-A", "1-C, 2-A"
    )
    assert MATCHING.check("Final answer: none", layout).detail == (
        "the response matched no pairs; the key is 1-B, 2-C, 3-A"
    )


def test_matching_validation() -> None:
    with pytest.raises(ValidationError, match="two items of the left column are the same"):
        MatchingKey(
            pairs=[Pair(left="a", right="x"), Pair(left="A.", right="y"), Pair(left="b", right="z")]
        )
    with pytest.raises(ValidationError, match="two items of the right column are the same"):
        MatchingKey(
            pairs=[Pair(left="a", right="x"), Pair(left="b", right="X"), Pair(left="c", right="z")]
        )


# -- labels -------------------------------------------------------------------------------
LABELS = LabelsKey(
    label_set=["True", "False"],
    items=[
        Judgement(statement="The council relies on counts.", label="True"),
        Judgement(statement="The counts covered the coast.", label="False", note="they did not"),
        Judgement(statement="Critics cite a strike.", label="True"),
    ],
)
LABELS_KEY = "1 True; 2 False; 3 True"


@pytest.mark.parametrize(
    "response",
    [
        "Final answer: 1 True; 2 False; 3 True",
        "Final answer: 1. T, 2. F, 3. T",
        "Final answer:\n1 True\n2 False\n3 True",
        "Final answer: 1: true; 2: false; 3: true",
    ],
)
def test_labels_pass(response: str) -> None:
    got = LABELS.check(response, Layout())
    assert (got.status, got.detail) == ("passed", LABELS_KEY)


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        (
            "Final answer: 1 True; 2 True; 3 True",
            f"statement 2 labelled otherwise or not at all; the key is {LABELS_KEY}",
        ),
        (
            "Final answer: 1 True; 2 False",
            f"statement 3 labelled otherwise or not at all; the key is {LABELS_KEY}",
        ),
        (
            "Final answer: 1 False; 2 True; 3 False",
            f"statements 1, 2, 3 labelled otherwise or not at all; the key is {LABELS_KEY}",
        ),
    ],
)
def test_labels_fail(response: str, detail: str) -> None:
    got = LABELS.check(response, Layout())
    assert (got.status, got.detail) == ("failed", detail)


def test_labels_view_and_validation() -> None:
    view = LABELS.view(Layout())
    assert view["items"][1] == {"label": "2.", "text": "The counts covered the coast."}
    assert view["label_set"] == ["True", "False"] and "answer" not in public_view(view)
    with pytest.raises(
        ValidationError,
        match=r"statement 1: label 'Maybe' is not in the label set \['True', 'False'\]",
    ):
        LabelsKey(
            label_set=["True", "False"],
            items=[
                Judgement(statement="abcde", label="Maybe"),
                Judgement(statement="fghij", label="True"),
            ],
        )
    with pytest.raises(ValidationError, match="use at least two different labels"):
        LabelsKey(
            label_set=["True", "False"],
            items=[
                Judgement(statement="abcde", label="True"),
                Judgement(statement="fghij", label="true"),
            ],
        )


# -- keys code cannot settle, unanswerable, tool outcome ----------------------------------
def test_unchecked_kinds() -> None:
    assert FreeTextKey(rubric=["Mentions the strike."]).check("x", Layout()) == v(
        "free_text", "unchecked", "free text: no check by code (no judge)", None
    )
    assert ProgramTestsKey(tests="assert f() == 1").check("x", Layout()) == v(
        "program_tests", "unchecked", "program tests run in a sandbox (verify)", None
    )
    assert EnvironmentKey(check_name="db_state").check("x", Layout()) == v(
        "environment", "unchecked", "decided by the environment's reward", None
    )
    assert Verification(kind="x", status="unchecked").passed is None
    assert Verification(kind="x", status="failed").passed is False


def test_unanswerable_key_checks_that_the_response_says_so() -> None:
    key = UnanswerableKey(missing="the size of the time saving", shown=CHOICE.model_dump())
    assert key.check("Final answer: cannot be determined from the passage", Layout()) == v(
        "unanswerable", "passed", "unsettled", "cannot be determined from the passage"
    )
    # without a final line, the end of the response counts
    assert key.check("The passage does not say how much time was saved.", Layout()).status == (
        "passed"
    )
    assert key.check("Final answer: (A)", Layout()) == v(
        "unanswerable",
        "failed",
        "the response answers as if the material settled it; the key: not settled by the "
        "material (missing: the size of the time saving)",
        "(A)",
    )


def test_unanswerable_key_keeps_the_question_it_was_made_from() -> None:
    kinds = KeyKinds()
    key = UnanswerableKey(missing="the size of the saving", shown=CHOICE.model_dump())
    assert key.presented(kinds) == CHOICE
    assert UnanswerableKey(missing="the size of the saving").presented(kinds) is None
    # "shown" is set by code: models never see it in the shape
    assert "shown" not in UnanswerableKey.model_json_schema()["properties"]
    assert key.same_answer(UnanswerableKey(missing="something else entirely"))
    assert not key.same_answer(CHOICE)


def test_tool_outcome_is_checked_against_the_conversation() -> None:
    key = ToolOutcomeKey(outcome="final_answer", required_apis=["find_port", "book_berth"])
    assert key.summary(Layout()) == "FINAL_ANSWER after find_port, book_berth"
    assert key.check("anything", Layout()).status == "unchecked"
    shown = ["find_port", "book_berth", "ping"]
    assert key.check_conversation("final_answer", ["find_port", "book_berth"], shown) == v(
        "tool_outcome", "passed", "FINAL_ANSWER after find_port, book_berth", "final_answer"
    )
    assert key.check_conversation("final_answer", ["find_port"], shown) == v(
        "tool_outcome",
        "failed",
        "FINAL_ANSWER without calling book_berth, which the solution needs",
        "final_answer",
    )
    # a required API the assistant was not shown cannot be asked of it
    assert key.check_conversation("final_answer", ["find_port"], ["find_port"]).status == "passed"
    assert key.check_conversation("failed", ["find_port"], shown) == v(
        "tool_outcome",
        "failed",
        "the conversation ended with FAILED, the task expects FINAL_ANSWER",
        "failed",
    )
    failed = ToolOutcomeKey(outcome="failed", required_apis=["forecast"])
    assert failed.summary(Layout()) == "FAILED"
    assert failed.check_conversation("failed", [], shown).status == "passed"
    assert failed.check_conversation("final_answer", [], shown).detail == (
        "the conversation ended with FINAL_ANSWER, the task expects FAILED"
    )


# -- same_answer --------------------------------------------------------------------------
def test_same_answer_compares_answer_fields_only() -> None:
    assert ExactKey(value="The Tunnel").same_answer(ExactKey(value="tunnel!"))
    assert not ExactKey(value="tunnel").same_answer(ExactKey(value="bridge"))
    assert not ExactKey(value="1").same_answer(NumericKey(value=1))
    # notes and explanations are not part of the answer
    assert FreeTextKey(rubric=["a"], reference="r1").same_answer(
        FreeTextKey(rubric=["a"], reference="r2")
    )
    relabelled = LABELS.model_copy(
        update={"items": [it.model_copy(update={"note": "new"}) for it in LABELS.items]}
    )
    assert LABELS.same_answer(relabelled)
    # a choice key keeps its answer when only the distractors change
    other_distractors = ChoiceKey(
        correct=["rents rose and wages fell"], distractors=["x y", "z w"], explanation="e"
    )
    assert CHOICE.same_answer(other_distractors)
    flipped = ChoiceKey(correct=["Rents fell."], distractors=["Rents rose, and wages fell.", "x"])
    assert not CHOICE.same_answer(flipped)


# -- key kinds ----------------------------------------------------------------------------
class YesNoKey(AnswerKey):
    """A key kind of the test's own."""

    kind: Literal["yes_no"] = "yes_no"
    value: bool
    form: ClassVar[str] = "short"

    def check(self, response: str, layout: Layout) -> Verification:
        answer = final_answer(response) or ""
        ok = normalize(answer) == ("yes" if self.value else "no")
        return Verification(kind=self.kind, status="passed" if ok else "failed", answer=answer)


def test_key_kinds_know_the_builtin_and_custom_kinds() -> None:
    builtin = [kind_of(k) for k in BUILTIN_KEYS]
    assert builtin == [
        "choice", "exact", "numeric", "estimate", "list", "ordering", "matching", "labels", "free_text",
        "constraints", "fields", "unanswerable", "program_tests", "environment", "tool_outcome",
        "cited", "web_goal", "test_suite", "db_reference", "os_check",
    ]  # fmt: skip
    kinds = KeyKinds([YesNoKey])
    assert kinds.names() == [*builtin, "yes_no"]
    assert "yes_no" in kinds and "maybe" not in kinds
    assert kinds.get("yes_no") is YesNoKey
    key = kinds.parse({"kind": "yes_no", "value": True})
    assert key == YesNoKey(value=True)
    assert key.check("Final answer: Yes.", Layout()).status == "passed"
    assert key.same_answer(YesNoKey(value=True)) and not key.same_answer(YesNoKey(value=False))
    assert "yes_no" not in KeyKinds(), "kinds are passed explicitly, never registered globally"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "maybe"}, "key kind 'maybe' is not one of choice, exact, numeric"),
        ({"value": 1}, "key kind None is not one of choice"),
        ({"kind": "yes_no"}, "yes_no key: value: Field required"),
        (
            {"kind": "exact", "value": ""},
            "exact key: value: String should have at least 1 character",
        ),
        (
            {"kind": "choice", "correct": ["(A) x y"], "distractors": ["b c", "d e"]},
            "choice key: key: Value error, option '(A) x y' starts with a label",
        ),
    ],
)
def test_key_kinds_parse_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as exc:
        KeyKinds([YesNoKey]).parse(data)
    assert str(exc.value).startswith(message)


def test_kind_of_errors() -> None:
    class NoDefault(AnswerKey):
        kind: Literal["nd"]  # type: ignore[assignment]

    with pytest.raises(
        TypeError, match=r"NoDefault.kind needs a Literal default, e.g. kind: Literal\['x'\] = 'x'"
    ):
        kind_of(NoDefault)
    with pytest.raises(TypeError, match=r"NoDefault\.kind needs a Literal default"):
        KeyKinds([NoDefault])
    with pytest.raises(KeyError, match=r"unknown key kind 'maybe' \(kinds: choice, exact"):
        KeyKinds().get("maybe")


def test_public_view_drops_every_secret_at_any_depth() -> None:
    layout = Layout(order=[1, 0, 2, 3])
    for key in (CHOICE, ORDERING, MATCHING, LABELS, EXACT, NUMERIC, LIST):
        shown = public_view(
            key.view(layout if key in (CHOICE, ORDERING) else Layout(order=[1, 2, 0]))
        )
        text = repr(shown)
        assert "'answer'" not in text and "'correct'" not in text and "'explanation'" not in text


def test_constrained_decoding_cannot_write_a_labelled_option() -> None:
    """The option pattern lives in the JSON schema only: decoding cannot start an option
    with a label (which the key would refuse), validation keeps its own message."""
    pytest.importorskip("llguidance")
    from constrained import decoder
    from genteach.models.local import decoding_schema

    accepts = decoder(schema=decoding_schema(ChoiceKey.model_json_schema()))

    def key(*options: str) -> str:
        return json.dumps(
            {
                "kind": "choice",
                "correct": [options[0]],
                "distractors": list(options[1:]),
                "explanation": "",
            }
        )

    assert accepts(key("Rome", "Paris", "1.5 litres"))
    for labelled in ("A) Rome", "(b) Rome", "3. Rome"):
        assert not accepts(key(labelled, "Paris", "Milan")), labelled
    with pytest.raises(ValueError, match="starts with a label"):
        ChoiceKey(correct=["A) Rome"], distractors=["Paris", "Milan"])


@pytest.mark.parametrize(
    ("answer", "passes"),
    [
        ("Urgent", True),
        ("It is urgent", True),
        ("Not urgent", False),
        ("urgent or routine", False),
        ("It isn't urgent", False),
        ("no, urgent", False),
    ],
)
def test_an_exact_answer_that_negates_or_hedges_its_key_fails(answer: str, passes: bool) -> None:
    key = ExactKey(value="Urgent")
    assert (key.compare(answer, Layout()).status == "passed") is passes
    # a key that itself says "not" still matches an answer that says it
    assert ExactKey(value="not guilty").compare("He is not guilty", Layout()).status == "passed"


@pytest.mark.parametrize(
    ("text", "unsettled"),
    [
        ("The exact date is unknown.", True),
        ("It remains unknown.", True),
        ("The builder is not known.", True),
        ("No one knows who carved it.", True),
        ("The Tomb of the Unknown Soldier", False),
        ("It is well known that tides are daily.", False),
    ],
)
def test_an_unknown_answer_says_the_question_is_not_settled(text: str, unsettled: bool) -> None:
    assert says_unsettled(text) is unsettled


def test_several_correct_options_need_an_instruction_that_asks_for_several() -> None:
    two = ChoiceKey(correct=["7 years", "5 years"], distractors=["8 years", "2 years"])
    assert two.fit_task("How long was an apprenticeship in English towns?", None) == (
        "the key has 2 correct options, but the instruction asks for one: keep one correct "
        "option, or ask to select all that apply"
    )
    for asks in (
        "Select all that apply: which terms were usual?",
        "Which two of the following terms were usual?",
        "Which statements are both true of the guilds?",
    ):
        assert two.fit_task(asks, None) is None, asks
    one = ChoiceKey(correct=["7 years"], distractors=["8 years", "2 years"])
    assert one.fit_task("How long was it?", None) is None
