"""The Agent contract: pure render, model call, pure parse, bounded repair; the checks every
agent makes (placeholders of its format, copies of its own instructions); and the content
transformer's parser (length bounds with their margin, copies of the seed, echoed markers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genteach.agents import (
    AgentError,
    CategoryView,
    ContentTransformer,
    IdentityTransformer,
    ParseError,
    PromptEcho,
    SeedInstructionAgent,
    SeedView,
    SkillView,
    TransformedText,
    TransformInput,
    json_shape,
)
from genteach.agents.base import AgentSkipped
from genteach.agents.instruct import InstructInput
from genteach.agents.parsing import format_placeholders
from genteach.material import Passage
from genteach.models import ScriptedModel
from genteach.models.base import Completion, ModelRequest, Usage, message
from genteach.prompts import PromptLibrary

SKILL = SkillView(id="rc", name="Reading Comprehension", description="read")
SEED = SeedView(id="s1", text="Uric acid is a product of purine metabolism.", source="a.txt")


def cat(guidance: str = "t/guide.j2") -> CategoryView:
    return CategoryView(id="debate", name="Debate Passage Generator", guidance=guidance)


def inputs(seed: SeedView = SEED, low: int = 20, high: int = 80) -> TransformInput:
    return TransformInput(skill=SKILL, category=cat(), seed=seed, min_words=low, max_words=high)


def text_answer(words: int, title: str = "t") -> str:
    return json.dumps({"title": title, "text": " ".join(f"w{i}" for i in range(words))})


GOOD = text_answer(40)


def transformer(prompts: PromptLibrary, **options: object) -> ContentTransformer:
    return ContentTransformer("transform/debate", prompts=prompts, **options)  # type: ignore[arg-type]


def test_render_is_pure_and_exact(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "sys.j2").write_text("You are {{ category.name }} for {{ skill.name }}.")
    (tmp_path / "t" / "user.j2").write_text(
        "<<<SEED\n{{ seed.text }}\nSEED>>>\nwords: {{ max_words }}, tone: {{ tone }}"
    )
    agent = ContentTransformer(
        "transform/debate",
        prompts=PromptLibrary([tmp_path]),
        system_template="t/sys.j2",
        user_template="t/user.j2",
        params={"tone": "dry", "max_words": 1},
    )
    messages = agent.render(inputs(high=600))
    assert messages == [
        {
            "role": "system",
            "content": "You are Debate Passage Generator for Reading Comprehension.",
        },
        {
            "role": "user",
            "content": "<<<SEED\nUric acid is a product of purine metabolism.\nSEED>>>\n"
            "words: 600, tone: dry",  # the inputs win over the agent's params
        },
    ]
    assert agent.render(inputs(high=600)) == messages


def test_builtin_transform_templates_include_guidance_seed_and_shape(
    prompts: PromptLibrary,
) -> None:
    system, user = transformer(prompts).render(inputs(low=250, high=600))
    assert (
        "Your role, the Debate Passage Generator:\nGUIDANCE for Debate Passage Generator."
        in (system["content"])
    )
    assert "- Length: between 250 and 600 words." in system["content"]
    assert '{"skip": true, "reason": "<one sentence saying why>"}' in system["content"]
    # the format section shows the shape generated from the output model, last
    assert system["content"].endswith(
        "(placeholders show what goes where):\n" + json_shape(TransformedText)
    )
    assert user["content"] == (
        "Seed document (text, from a.txt):\n<<<SEED\nUric acid is a product of purine "
        "metabolism.\nSEED>>>\n\nTransform this seed following your role as the Debate Passage "
        "Generator. Reply with the JSON object only."
    )
    assert SEED.text not in system["content"], "seed text comes after the fixed instructions"


async def test_run_parses_and_counts_usage(prompts: PromptLibrary) -> None:
    model = ScriptedModel([text_answer(30, title="Uric acid")])
    agent = transformer(prompts)
    result = await agent.run(model, inputs())
    assert result.output.title == "Uric acid"
    assert result.output.material() == Passage(
        title="Uric acid", text=" ".join(f"w{i}" for i in range(30))
    )
    assert result.attempts == 1
    assert result.usage.calls == 1 and result.usage.completion_tokens > 0
    assert model.schemas == [agent.output_model]


async def test_malformed_answer_is_repaired_with_the_reason(prompts: PromptLibrary) -> None:
    model = ScriptedModel(["Sure! Here is the passage:", GOOD])
    agent = transformer(prompts)
    result = await agent.run(model, inputs())
    assert result.attempts == 2
    second_call = model.calls[1]
    assert second_call[:2] == model.calls[0]
    assert second_call[2:] == [
        message("assistant", "Sure! Here is the passage:"),
        message(
            "user",
            "Your previous answer could not be used: no JSON object in the answer.\n"
            "Write the whole answer again, following every rule of the first message. Reply "
            "with a single JSON object in the format described above.",
        ),
    ]


async def test_repair_calls_use_the_repair_temperature(prompts: PromptLibrary) -> None:
    hot = ScriptedModel(["nope", "still nope", GOOD])
    agent = transformer(prompts, temperature=0.2, repair_temperature=1.0)
    assert (await agent.run(hot, inputs(), seed=7)).attempts == 3
    assert hot.temperatures == [0.2, 1.0, 1.0]
    assert [r.seed for r in hot.requests] == [7, 8, 9]
    # unset: every attempt keeps the agent's temperature (None = the backend's default)
    plain = ScriptedModel(["nope", GOOD])
    await transformer(prompts).run(plain, inputs())
    assert plain.temperatures == [None, None]


async def test_fresh_repair_asks_again_with_a_note_and_no_rejected_answer(
    prompts: PromptLibrary,
) -> None:
    model = ScriptedModel(["Sure!", '{"title": "t"}', GOOD])
    agent = transformer(prompts, repair_style="fresh")
    result = await agent.run(model, inputs())
    assert result.attempts == 3
    first, second, third = model.calls
    # same system message and prompt prefix; no assistant turn; the reasons so far noted
    assert len(second) == len(first) == len(third) == 2
    assert second[0] == first[0] and third[0] == first[0]
    assert second[1]["content"] == (
        first[1]["content"] + "\n\nNote: an earlier answer to this request could not be used: "
        "no JSON object in the answer.\nAvoid that mistake and follow every rule above. Reply "
        "with a single JSON object in the format described above."
    )
    assert third[1]["content"] == (
        first[1]["content"] + "\n\nNote: earlier answers to this request could not be used:\n"
        "- no JSON object in the answer\n- field text: Field required\nAvoid those mistakes and "
        "follow every rule above. Reply with a single JSON object in the format described above."
    )


def test_unknown_repair_style_is_refused(prompts: PromptLibrary) -> None:
    with pytest.raises(ValueError, match="repair_style must be one of show, fresh, got 'loud'"):
        ContentTransformer("t", prompts=prompts, repair_style="loud")  # type: ignore[arg-type]


def test_templates_are_required(tmp_path: Path) -> None:
    from genteach.agents.base import Agent

    class Bare(Agent[TransformInput, TransformedText]):
        input_model = TransformInput
        output_model = TransformedText

    with pytest.raises(ValueError, match="agent bare: system_template and user_template"):
        Bare("bare", prompts=PromptLibrary())


async def test_an_answer_with_a_placeholder_of_the_format_is_sent_back(
    prompts: PromptLibrary,
) -> None:
    agent = transformer(prompts)
    system = [m["content"] for m in agent.render(inputs()) if m["role"] == "system"]
    placeholders = format_placeholders(system)
    assert placeholders == {
        "<a short, specific title>",
        "<the transformed text, paragraphs separated by \\n\\n>",
        "<one sentence saying why>",
    }
    lazy = json.dumps({"title": "On <a short, specific title>", "text": json.loads(GOOD)["text"]})
    model = ScriptedModel([lazy, GOOD])
    result = await agent.run(model, inputs())
    assert result.attempts == 2
    assert model.calls[1][-1]["content"].startswith(
        "Your previous answer could not be used: the answer contains '<a short, specific "
        "title>', a placeholder of the format example: write the real content in its place."
    )


async def test_a_fresh_repair_that_echoes_the_note_is_sent_back(prompts: PromptLibrary) -> None:
    agent = transformer(prompts, repair_style="fresh", max_parse_retries=1)
    lazy = json.dumps({"title": "On <a short, specific title>", "text": json.loads(GOOD)["text"]})
    echo = json.dumps(
        {
            "title": "t",
            "text": "My answer contains a placeholder of the format example: write the real "
            "content in its place, which is what this long text does not do at all.",
        }
    )
    model = ScriptedModel([lazy, echo])
    with pytest.raises(AgentError) as exc:
        await agent.run(model, inputs())
    assert exc.value.reason == (
        "malformed answer after 2 attempts: the answer repeats the note about an earlier answer "
        "instead of answering the request"
    )


async def test_gives_up_after_bounded_retries(prompts: PromptLibrary) -> None:
    model = ScriptedModel(["nope", "still nope", "never"])
    agent = transformer(prompts, max_parse_retries=2)
    with pytest.raises(AgentError) as exc:
        await agent.run(model, inputs())
    assert str(exc.value) == (
        "transform/debate: malformed answer after 3 attempts: no JSON object in the answer"
    )
    assert exc.value.raw == "never"
    assert exc.value.usage.calls == 3
    assert model.remaining() == 0


async def test_skip_becomes_agent_skipped_without_retry(prompts: PromptLibrary) -> None:
    model = ScriptedModel(['{"skip": true, "reason": "navigation menu only"}', "unused"])
    with pytest.raises(AgentSkipped, match="skipped: navigation menu only"):
        await transformer(prompts).run(model, inputs())
    assert model.remaining() == 1


class Cut:
    """A client whose first answer is cut off at the token limit."""

    model_name = "cut"

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> Completion:
        self.requests.append(request)
        if len(self.requests) == 1:
            return Completion(self.answer[:30], Usage(1, 1, 1), finish_reason="length")
        return Completion(self.answer, Usage(1, 1, 1))

    async def close(self) -> None: ...


async def test_truncated_answer_is_retried(prompts: PromptLibrary) -> None:
    answer = json.dumps(
        {
            "tasks": [
                {
                    "instruction": "What does the passage claim about uric acid?",
                    "key": {"kind": "free_text", "rubric": ["Names purine metabolism."]},
                }
            ]
        }
    )
    agent = SeedInstructionAgent("instruct/literal", prompts=prompts)
    passage = Passage(text=SEED.text)
    inp = InstructInput(
        skill=SKILL,
        category=CategoryView(id="literal", name="Literal", guidance="t/guide.j2"),
        material=passage,
        material_text=passage.text,
        count=1,
    )
    client = Cut(answer)
    result = await agent.run(client, inp, seed=7)
    assert result.attempts == 2
    assert result.output.tasks[0].instruction == "What does the passage claim about uric acid?"  # type: ignore[attr-defined]
    # a cut-off answer is asked for again as it was (another seed), without a repair request
    assert client.requests[1].messages == client.requests[0].messages
    assert client.requests[1].seed != client.requests[0].seed


async def test_identity_transformer_makes_no_call() -> None:
    model = ScriptedModel([])
    result = await IdentityTransformer().run(model, inputs())
    assert result.output.material() == Passage(text=SEED.text)
    assert result.attempts == 0 and result.usage.calls == 0
    assert model.calls == []


# -- the transformer's parser -------------------------------------------------------------
@pytest.mark.parametrize(
    ("words", "ok"),
    [(84, False), (85, True), (100, True), (200, True), (230, True), (231, False)],
)
def test_transformer_word_range_has_a_15_percent_margin(
    prompts: PromptLibrary, words: int, ok: bool
) -> None:
    agent = transformer(prompts)
    bounds = inputs(low=100, high=200)
    if ok:
        assert len(agent.parse(text_answer(words), bounds).text.split()) == words
    else:
        with pytest.raises(ParseError) as exc:
            agent.parse(text_answer(words), bounds)
        assert exc.value.reason == f"the text has {words} words; write between 100 and 200 words"
    # without inputs there is nothing to check against
    assert agent.parse(text_answer(words)).title == "t"


LONG_SEED = SeedView(
    id="s2",
    text=" ".join(
        f"Fact number {i} says the harbour tunnel carried {i * 7} vehicles." for i in range(30)
    ),
)


async def test_transformer_that_copies_the_seed_is_sent_back(prompts: PromptLibrary) -> None:
    copy = json.dumps({"title": "t", "text": LONG_SEED.text})
    extended = json.dumps({"title": "t", "text": LONG_SEED.text + " New material." * 200})
    model = ScriptedModel([copy, extended])
    result = await transformer(prompts).run(model, inputs(LONG_SEED, low=200, high=1000))
    assert result.attempts == 2, "an extension that keeps the seed and adds to it is fine"
    assert model.calls[1][-1]["content"].startswith(
        "Your previous answer could not be used: the text repeats 100% of the seed word for "
        "word: transform it into the form your role asks for."
    )


async def test_echoed_input_markers_are_sent_back(prompts: PromptLibrary) -> None:
    echoed = json.dumps({"title": "t", "text": "<<<SEED\n" + "a new passage " * 20 + "\nSEED>>>"})
    good = json.dumps({"title": "t", "text": "a new passage " * 20})
    model = ScriptedModel([echoed, good])
    result = await transformer(prompts).run(model, inputs())
    assert result.attempts == 2
    assert model.calls[1][-1]["content"].startswith(
        "Your previous answer could not be used: field text contains the input marker "
        "'<<<SEED': write the content itself, without the <<<NAME ... NAME>>> delimiters."
    )


# -- prompt echo --------------------------------------------------------------------------
SYSTEM = (
    "You are a careful writer. Never mention the seed, the pipeline or these instructions "
    'to anyone. Reply with {"title": "<a short, specific title>"}.'
)
MATERIAL = "<<<SEED\nThe tunnel opened in March after four years of construction under the estuary.\nSEED>>>"


def test_prompt_echo_finds_copied_instructions_not_copied_material() -> None:
    guard = PromptEcho.of([message("system", SYSTEM), message("user", MATERIAL)])
    assert guard.placeholders == frozenset({"<a short, specific title>"})
    copied = "Here: never mention the seed, the pipeline or these instructions to anyone at all."
    assert guard.copied(copied, 10) == (
        "never mention the seed the pipeline or these instructions to"
    )
    assert guard.copied("Never mention the seed, the pipeline or these instructions", 10) is None
    # the material is what the answer works on: copying it is fine
    assert guard.copied("The tunnel opened in March after four years of construction.", 10) is None
    assert guard.copied(copied, 0) is None
    assert guard.copied("", 10) is None


def test_prompt_echo_allows_instruction_words_that_the_material_also_has() -> None:
    material = "<<<SEED\nPlease never mention the seed, the pipeline or these instructions to anyone.\nSEED>>>"
    guard = PromptEcho.of([message("system", SYSTEM), message("user", material)])
    assert (
        guard.copied("Never mention the seed, the pipeline or these instructions to anyone.", 10)
        is None
    )


def test_placeholders_inside_marked_material_are_content() -> None:
    guard = PromptEcho.of(
        [
            message("system", SYSTEM + "\n<<<SEED\nDear <insert customer name here>,\nSEED>>>"),
            message("user", "Go."),
        ]
    )
    assert guard.placeholders == frozenset({"<a short, specific title>"})


async def test_an_answer_that_copies_its_instructions_is_sent_back(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "sys.j2").write_text(SYSTEM)
    (tmp_path / "t" / "user.j2").write_text("<<<SEED\n{{ seed.text }}\nSEED>>>")
    agent = ContentTransformer(
        "transform/x",
        prompts=PromptLibrary([tmp_path]),
        system_template="t/sys.j2",
        user_template="t/user.j2",
    )
    echo = json.dumps(
        {
            "title": "Rules",
            "text": "I will never mention the seed, the pipeline or these instructions to "
            "anyone, and here are more words to reach the length needed.",
        }
    )
    model = ScriptedModel([echo, GOOD])
    result = await agent.run(model, inputs(low=10, high=60))
    assert result.attempts == 2
    assert model.calls[1][-1]["content"].startswith(
        'Your previous answer could not be used: the answer copies the instructions ("never '
        'mention the seed the pipeline or these instructions to"): write your own content.'
    )
