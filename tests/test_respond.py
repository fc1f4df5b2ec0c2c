"""The responder and the response flow: the answer format per question form (a
``Final answer:`` line for closed forms, which the parser requires), the question the
responder is told about (never the answer), and the verification of each answer against its
key before it becomes a record (one re-answer, then a reject quoting key and answer)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import pytest

from constrained import decoder
from genteach.agents import Answer, CategoryView, ParseError, Responder, RespondInput, SkillView
from genteach.agents.respond import FINAL_LINE_GRAMMAR
from genteach.flows import ResponseFlow
from genteach.flows.base import RunContext, StudentView, Task, WorkItem, presented_key
from genteach.flows.respond import ANSWER_FORMS
from genteach.keys import (
    AnswerKey,
    ChoiceKey,
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
    UnanswerableKey,
    Verification,
    public_view,
)
from genteach.material import Passage
from genteach.models import ScriptedModel
from genteach.models.base import Message, message
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.taxonomy import Skill, load_taxonomy

SKILL = SkillView(id="rc", name="Reading Comprehension")
CATEGORY = CategoryView(
    id="inference", name="Inference", description="Draw a conclusion the passage supports."
)
CHOICE = ChoiceKey(
    correct=["Rents rose."],
    distractors=["Rents fell.", "Wages rose.", "Nothing changed."],
    explanation="The passage says rents rose.",
)
#: (A) Wages rose. (B) Rents rose. (C) Nothing changed. (D) Rents fell.
LAYOUT = Layout(order=[2, 0, 3, 1])

PREAMBLE = (
    "You are an expert teacher answering a request so that a smaller model can learn the skill "
    '"Reading Comprehension" from your answer. Your answer will be shown as the ideal reply to '
    "the user's last message, and it will be checked against an answer key the user does not "
    "see: be right, not merely fluent.\n\n"
    'The request is a task of the type "Inference": Draw a conclusion the passage supports.\n\n'
    "How to answer:\n"
    "- Do exactly what the last message asks, in the form it asks for. Work from the material "
    "given in the conversation; when the answer depends on reasoning, show the reasoning "
    "briefly and in order before the conclusion; when it is a rewrite or a piece of writing, "
    "give the result directly, without commentary on what you did unless asked.\n"
    "- If the material does not contain what is needed to answer, say so plainly and say what "
    "is missing; do not guess or invent facts.{closed} If the question rests on a false "
    "premise, point it out.\n"
    "- Be accurate, complete and no longer than the task needs. Do not mention these "
    "instructions, an answer key, the teacher role or the student.\n\n"
    "Answer format:\n"
)
CLOSED = ' In that case end with "Final answer: cannot be determined from the passage".'


def respond_input(
    key: AnswerKey, layout: Layout = LAYOUT, system: str | None = None
) -> RespondInput:
    turns: list[Message] = [message("system", system)] if system is not None else []
    return RespondInput(
        skill=SKILL,
        category=CATEGORY,
        conversation=[*turns, message("user", "Which of the following does the passage report?")],
        form=key.form,
        question=public_view(key.view(layout)),
    )


@pytest.fixture
def responder() -> Responder:
    return Responder("responder", prompts=PromptLibrary())


def test_the_choice_system_prompt(responder: Responder) -> None:
    messages = responder.render(respond_input(CHOICE))
    assert messages == [
        message(
            "system",
            PREAMBLE.format(closed=CLOSED)
            + "For this multiple-choice question, check every option against the material in "
            "your own words: why each wrong one fails, why the right one holds. Then end with one "
            'line naming the option by its label exactly as shown, for example "Final answer: '
            '(B)".',
        ),
        message("user", "Which of the following does the passage report?"),
    ]


def test_the_open_system_prompt(responder: Responder) -> None:
    (system, _) = responder.render(respond_input(FreeTextKey(rubric=["Says rents rose."])))
    assert system["content"] == (
        PREAMBLE.format(closed="")
        + "The request asks for an open answer (an explanation, an essay, a rewritten or new "
        "text). Give the answer itself, in the form and length the request asks for, with no "
        '"Final answer:" line.'
    )


@pytest.mark.parametrize(
    ("key", "layout", "fmt"),
    [
        (
            ExactKey(value="1998"),
            Layout(),
            "The question has one short answer. Show the reasoning briefly and in order (the "
            "calculation, the facts combined), then end with one line giving the answer alone, "
            "as short as the question allows (a name, a number with its unit, a word or phrase): "
            '"Final answer: " followed by it.',
        ),
        (
            OrderingKey(items=["strike", "opening", "counts"]),
            Layout(order=[2, 0, 1], labels="upper_dot"),
            "The question asks for an order. Work out the order from the material, saying for "
            "each non-obvious placement which clue fixes it. Then end with one line giving the "
            'labels in the correct order, separated by commas, for example "Final answer: B, A, '
            '...".',
        ),
        (
            MatchingKey(pairs=[Pair(left=x, right=x.upper()) for x in ("ab", "cd", "ef")]),
            Layout(order=[2, 0, 1]),
            "The question asks to match two columns. Pair each numbered item with its lettered "
            "item, saying briefly what in the material links them. Then end with one line "
            'pairing each number with its letter, for example "Final answer: 1-B, 2-A, ...".',
        ),
        (
            LabelsKey(
                label_set=["Fact", "Opinion"],
                items=[
                    Judgement(statement="Rents rose.", label="Fact"),
                    Judgement(statement="Rents are too high.", label="Opinion"),
                ],
            ),
            Layout(),
            "The question asks to judge numbered statements with the labels Fact, Opinion. "
            "Judge each one against the material, briefly, doing what the question asks for "
            "each (for example correcting a false statement). Then end with one line giving each "
            'statement\'s number and label, for example "Final answer: 1 Fact; 2 Opinion; ...".',
        ),
        (
            ChoiceKey(correct=["alpha", "gamma"], distractors=["beta", "delta"]),
            Layout(order=[0, 2, 1, 3], labels="lower_paren"),
            "For this multiple-choice question, check every option against the material in "
            "your own words: why each wrong one fails, why the right one holds. More than one "
            "option may be correct: name every correct one. Then end with one line naming the "
            'options by their labels exactly as shown, for example "Final answer: (b)" or '
            '"Final answer: (a), (c)".',
        ),
    ],
)
def test_the_answer_format_of_each_form(
    responder: Responder, key: AnswerKey, layout: Layout, fmt: str
) -> None:
    (system, _) = responder.render(respond_input(key, layout))
    assert system["content"] == PREAMBLE.format(closed=CLOSED) + fmt


def test_every_form_has_an_answer_format() -> None:
    lib = PromptLibrary()
    assert all(lib.exists(f"answers/{form}.j2") for form in ANSWER_FORMS)
    kinds = [ChoiceKey, OrderingKey, MatchingKey, LabelsKey, ExactKey, FreeTextKey]
    assert sorted(k.form for k in kinds) == sorted(ANSWER_FORMS)


def test_a_student_system_message_is_appended_to_the_teachers(responder: Responder) -> None:
    key = FreeTextKey(rubric=["x"])
    (system, user) = responder.render(respond_input(key, system="You are a careful tutor."))
    assert system["content"].endswith('with no "Final answer:" line.\n\nYou are a careful tutor.')
    assert user == message("user", "Which of the following does the passage report?")
    # the empty system prompt of orca-agentinstruct-1M adds nothing
    (empty, _) = responder.render(respond_input(key, system=""))
    (none, _) = responder.render(respond_input(key))
    assert empty == none


@pytest.mark.parametrize("form", ["choice", "items", "matching", "labels", "short"])
def test_closed_forms_need_a_final_answer_line(responder: Responder, form: str) -> None:
    inputs = respond_input(CHOICE).model_copy(update={"form": form})
    with pytest.raises(ParseError) as exc:
        responder.parse("Rents rose, so it is the second option.", inputs)
    assert exc.value.reason == (
        'the answer does not end with the line "Final answer: ..." that the answer format asks for'
    )
    assert responder.parse("Rents rose.\n\nFinal answer: (B)", inputs) == Answer(
        text="Rents rose.\n\nFinal answer: (B)"
    )


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("The passage says the toll fell.\nFinal answer: (B)", True),
        ("Final answer: 42", True),
        ("Options A and C contradict it.\n\nB fits.\nFinal answer: B) Traffic fell", True),
        ("Final answer: (B)\nBecause the toll fell.", False),  # not the last line
        ("Final answer: (A)\nFinal answer: (B)", False),  # two final lines
        ("The answer is B.", False),
        ("Reasoning.\nFinal answer: ", False),  # empty
        ("Reasoning. Final answer: B", False),  # not on its own line
    ],
)
def test_closed_forms_are_decoded_to_end_with_one_final_line(
    responder: Responder, text: str, ok: bool
) -> None:
    """The grammar the embedded model is held to accepts what the parser accepts."""
    pytest.importorskip("llguidance")
    closed = respond_input(CHOICE)
    grammar = responder.output_grammar(closed)
    assert grammar == FINAL_LINE_GRAMMAR
    assert responder.output_grammar(respond_input(FreeTextKey(rubric=["Says rents rose."]))) is None
    assert decoder(lark=grammar)(text) == ok
    if ok:  # and the parser reads it
        assert responder.parse(text, closed).text


def test_open_answers_and_malformed_ones(responder: Responder) -> None:
    open_input = respond_input(FreeTextKey(rubric=["x"]))
    assert responder.parse("  A short essay.  ", open_input).text == "A short essay."
    for text, reason in [
        ("   ", "empty answer"),
        ('{"skip": true, "reason": "no"}', "the answer is a JSON skip object, not an answer"),
    ]:
        with pytest.raises(ParseError) as exc:
            responder.parse(text, open_input)
        assert exc.value.reason == reason
    assert not responder.wants_json


async def test_an_answer_without_its_final_line_is_repaired(responder: Responder) -> None:
    model = ScriptedModel(["Rents rose, so (B).", "Rents rose.\nFinal answer: (B)"])
    result = await responder.run(model, respond_input(CHOICE))
    assert result.attempts == 2 and result.output.text.endswith("Final answer: (B)")
    assert model.calls[1][-1]["content"].startswith(
        'Your previous answer could not be used: the answer does not end with the line "Final '
        'answer: ..." that the answer format asks for.'
    )
    assert model.schemas == [None, None]


# -- the response flow --------------------------------------------------------------------
class SpyResponder(Responder):
    """Records what the responder is told about each question."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[RespondInput] = []

    async def run(self, client: Any, inputs: RespondInput, *, seed: int | None = None) -> Any:
        self.seen.append(inputs)
        return await super().run(client, inputs, seed=seed)


PASSAGE = Passage(title="Rents", text="Rents rose by a tenth last year while wages stayed flat.")
KEYS: list[tuple[AnswerKey, Layout]] = [
    (CHOICE, LAYOUT),
    (ExactKey(value="a tenth"), Layout()),
    (NumericKey(value=10, unit="%"), Layout()),
    (ListKey(items=["rents", "wages"]), Layout()),
    (OrderingKey(items=["one", "two", "three"]), Layout(order=[2, 0, 1])),
    (
        MatchingKey(pairs=[Pair(left=x, right=x.upper()) for x in ("ab", "cd", "ef")]),
        Layout(order=[1, 2, 0]),
    ),
    (
        LabelsKey(
            label_set=["True", "False"],
            items=[
                Judgement(statement="Rents rose.", label="True"),
                Judgement(statement="Wages rose.", label="False"),
            ],
        ),
        Layout(),
    ),
    (FreeTextKey(rubric=["Says rents rose."], reference="Rents rose."), Layout()),
    (UnanswerableKey(missing="the rent in 2020", shown=CHOICE.model_dump()), LAYOUT),
]


def task_of(
    key: AnswerKey, layout: Layout, instruction: str = "What does the passage report?"
) -> Task:
    view = StudentView(
        system=None, framing="common/framings/instruction_first.j2", delimiter=None, layout=layout
    )
    return Task(
        sub_category="inference", material=PASSAGE, instruction=instruction, key=key, view=view
    )


@pytest.fixture(scope="module")
def rc() -> Skill:
    return load_taxonomy().skills["rc"]


def run_flow(
    rc: Skill, tasks: Sequence[Task], answers: Any, *, retries: int = 1, judge: Any = None
) -> tuple[WorkItem, SpyResponder, ScriptedModel]:
    prompts = PromptLibrary()
    spy = SpyResponder("responder", prompts=prompts)
    flow = ResponseFlow(rc, spy, ResponseFlow.Settings(verify_retries=retries))
    model = ScriptedModel(answers)
    item = WorkItem(seed=Seed.from_text("rents"), skill=rc, rng=random.Random(0))
    item.tasks.extend(tasks)
    ctx = RunContext(client=model, prompts=prompts, teacher="scripted", judge=judge)
    asyncio.run(flow(item, ctx))
    return item, spy, model


def test_the_responder_is_never_told_the_answer(rc: Skill) -> None:
    def answer(messages: Sequence[Message]) -> str:
        return "Reasoning.\nFinal answer: cannot be determined from the passage"

    _, spy, model = run_flow(rc, [task_of(k, lay) for k, lay in KEYS], answer, retries=0)
    assert len(spy.seen) == len(KEYS)
    for inputs, (key, layout) in zip(spy.seen, KEYS, strict=True):
        shown = presented_key(key, KeyKinds())
        assert inputs.form == shown.form
        assert inputs.question == public_view(shown.view(layout))
        text = repr(inputs.model_dump())
        for secret in (
            "'answer'", "'correct'", "'explanation'", "'rubric'", "'reference'", "'missing'",
            "the rent in 2020",
        ):  # fmt: skip
            assert secret not in text, (key.kind, secret)
    # nor does any message the model sees carry the key
    for call in model.calls:
        joined = "\n".join(m["content"] for m in call)
        assert "the rent in 2020" not in joined and "Says rents rose." not in joined
        assert "The passage says rents rose." not in joined


def test_a_wrong_answer_is_asked_again_then_rejected_quoting_key_and_answer(rc: Skill) -> None:
    wrong = "Wages rose, it seems.\nFinal answer: (A)"
    item, _, model = run_flow(rc, [task_of(CHOICE, LAYOUT)], [wrong, wrong])
    assert item.records == [] and len(model.calls) == 2
    (reject,) = item.rejects
    assert (reject.stage, reject.agent, reject.raw) == ("response", "responder", wrong)
    assert reject.reason == (
        'the answer disagrees with its key: the response chose (A); the key is (B) "Rents rose."'
    )
    assert item.verified == {"failed": 2}
    # a different seed for the second answer
    assert model.requests[0].seed != model.requests[1].seed


def test_a_right_second_answer_becomes_a_record(rc: Skill) -> None:
    right = "Rents rose by a tenth.\nFinal answer: (B)"
    item, _, _ = run_flow(rc, [task_of(CHOICE, LAYOUT)], ["Final answer: (C)", right])
    (record,) = item.records
    assert record.messages[-1] == message("assistant", right)
    assert record.meta.verification == Verification(
        kind="choice", status="passed", detail="(B)", answer="(B)"
    )
    assert record.meta.usage["calls"] == 2
    assert item.verified == {"failed": 1, "passed": 1} and not item.rejects


def test_no_retry_when_verify_retries_is_zero(rc: Skill) -> None:
    item, _, model = run_flow(rc, [task_of(CHOICE, LAYOUT)], ["Final answer: (C)"], retries=0)
    assert len(model.calls) == 1 and len(item.rejects) == 1 and not item.records


def test_free_text_is_unchecked_unless_a_judge_decides(rc: Skill) -> None:
    key = FreeTextKey(rubric=["Says rents rose."])
    item, _, _ = run_flow(rc, [task_of(key, Layout())], ["Rents rose by a tenth."])
    (record,) = item.records
    assert record.meta.verification == Verification(
        kind="free_text", status="unchecked", detail="free text: no check by code (no judge)"
    )

    async def judge(task: Task, response: str, ctx: RunContext) -> Verification:
        ok = "rose" in response
        return Verification(kind="free_text", status="passed" if ok else "failed", detail="judge")

    item, _, model = run_flow(
        rc, [task_of(key, Layout())], ["Rents fell.", "Rents fell again."], judge=judge
    )
    assert not item.records and len(model.calls) == 2
    assert item.rejects[0].reason == "the answer disagrees with its key: judge"


def test_the_student_sees_the_options_the_key_is_written_from(rc: Skill) -> None:
    """The record's user message shows the key's options as laid out; an unanswerable task
    keeps the options of the question it was made from."""
    right = (
        "The passage gives no rent for 2020.\nFinal answer: cannot be determined from the passage"
    )
    unanswerable = UnanswerableKey(missing="the rent in 2020", shown=CHOICE.model_dump())
    item, _, _ = run_flow(rc, [task_of(unanswerable, LAYOUT)], [right])
    (record,) = item.records
    assert record.messages[0] == message(
        "user",
        "What does the passage report?\n(A) Wages rose.\n(B) Rents rose.\n(C) Nothing changed.\n"
        "(D) Rents fell.\n\nRents rose by a tenth last year while wages stayed flat.",
    )
    assert record.meta.verification is not None and record.meta.verification.status == "passed"


async def test_an_echoed_answer_format_is_cut_off_when_an_answer_follows(
    responder: Responder,
) -> None:
    system, _ = responder.render(respond_input(CHOICE))
    fmt = system["content"].split("Answer format:\n", 1)[1].split("\n")[0]
    model = ScriptedModel([f"{fmt}\n\nRents rose, wages fell.\nFinal answer: (B)"])
    result = await responder.run(model, respond_input(CHOICE))
    assert result.output.text == "Rents rose, wages fell.\nFinal answer: (B)"
    assert result.attempts == 1
    # an answer that is nothing but the echo is still sent back
    model = ScriptedModel([f"{fmt} Final answer: (B)", "Rents rose.\nFinal answer: (B)"])
    result = await responder.run(model, respond_input(CHOICE))
    assert result.output.text == "Rents rose.\nFinal answer: (B)" and result.attempts == 2
