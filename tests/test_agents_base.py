"""The Agent contract: pure render, model call, pure parse, bounded repair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genteach.agents import (
    AgentError,
    CategoryView,
    ContentTransformer,
    IdentityTransformer,
    PassageView,
    SeedInstructionAgent,
    SeedView,
    SkillView,
    TransformInput,
)
from genteach.agents.base import AgentSkipped
from genteach.agents.instruct import InstructInput
from genteach.agents.parsing import format_placeholders
from genteach.models import ScriptedModel
from genteach.models.base import Completion, ModelRequest, Usage
from genteach.prompts import PromptLibrary

SKILL = SkillView(id="rc", name="Reading Comprehension", description="read")
SEED = SeedView(id="s1", text="Uric acid is a product of purine metabolism.", source="a.txt")


def cat(guidance: str = "t/guide.j2") -> CategoryView:
    return CategoryView(id="debate", name="Debate Passage Generator", guidance=guidance)


def test_render_is_pure_and_exact(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "sys.j2").write_text("You are {{ category.name }} for {{ skill.name }}.")
    (tmp_path / "t" / "user.j2").write_text(
        "<<<SEED\n{{ seed.text }}\nSEED>>>\nwords: {{ max_words }}"
    )
    agent = ContentTransformer(
        "transform/debate",
        prompts=PromptLibrary([tmp_path]),
        system_template="t/sys.j2",
        user_template="t/user.j2",
        params={"max_words": 600},
    )
    messages = agent.render(TransformInput(skill=SKILL, category=cat(), seed=SEED))
    assert messages == [
        {
            "role": "system",
            "content": "You are Debate Passage Generator for Reading Comprehension.",
        },
        {
            "role": "user",
            "content": "<<<SEED\nUric acid is a product of purine metabolism.\nSEED>>>\nwords: 600",
        },
    ]


def test_builtin_transform_templates_include_guidance_and_seed(prompts: PromptLibrary) -> None:
    agent = ContentTransformer(
        "transform/debate", prompts=prompts, params={"min_words": 250, "max_words": 600}
    )
    system, user = agent.render(TransformInput(skill=SKILL, category=cat(), seed=SEED))
    assert "GUIDANCE for Debate Passage Generator." in system["content"]
    assert "between 250 and 600 words" in system["content"]
    assert '{"skip": true' in system["content"]
    assert user["content"].startswith("Seed document (text, from a.txt):\n<<<SEED\nUric acid")
    assert SEED.text not in system["content"], "seed text must come after the fixed instructions"


async def test_run_parses_and_counts_usage(prompts: PromptLibrary) -> None:
    model = ScriptedModel(['{"title": "Uric acid", "text": "' + "word " * 30 + '"}'])
    agent = ContentTransformer(
        "transform/debate", prompts=prompts, params={"min_words": 1, "max_words": 9}
    )
    result = await agent.run(model, TransformInput(skill=SKILL, category=cat(), seed=SEED))
    assert result.output.title == "Uric acid"
    assert result.attempts == 1
    assert result.usage.calls == 1 and result.usage.completion_tokens > 0
    assert model.schemas == [agent.output_model]


async def test_malformed_answer_is_repaired_with_the_reason(prompts: PromptLibrary) -> None:
    good = '{"title": "t", "text": "' + "x " * 60 + '"}'
    model = ScriptedModel(["Sure! Here is the passage:", good])
    agent = ContentTransformer(
        "transform/debate", prompts=prompts, params={"min_words": 1, "max_words": 9}
    )
    result = await agent.run(model, TransformInput(skill=SKILL, category=cat(), seed=SEED))
    assert result.attempts == 2
    second_call = model.calls[1]
    assert second_call[-2] == {"role": "assistant", "content": "Sure! Here is the passage:"}
    assert second_call[-1]["role"] == "user"
    assert second_call[-1]["content"].startswith(
        "Your previous answer could not be used: no JSON object in the answer."
    )


async def test_repair_calls_use_the_repair_temperature(prompts: PromptLibrary) -> None:
    good = '{"title": "t", "text": "' + "x " * 60 + '"}'
    inputs = TransformInput(skill=SKILL, category=cat(), seed=SEED)
    params = {"min_words": 1, "max_words": 9}
    hot = ScriptedModel(["nope", "still nope", good])
    agent = ContentTransformer(
        "transform/debate",
        prompts=prompts,
        params=params,
        temperature=0.2,
        repair_temperature=1.0,
    )
    assert (await agent.run(hot, inputs, seed=7)).attempts == 3
    assert hot.temperatures == [0.2, 1.0, 1.0]
    # unset: every attempt keeps the agent's temperature (None = the backend's default)
    plain = ScriptedModel(["nope", good])
    await ContentTransformer("transform/debate", prompts=prompts, params=params).run(plain, inputs)
    assert plain.temperatures == [None, None]


async def test_fresh_repair_asks_again_with_a_note_and_no_rejected_answer(
    prompts: PromptLibrary,
) -> None:
    good = '{"title": "t", "text": "' + "x " * 60 + '"}'
    model = ScriptedModel(["Sure!", '{"title": "t"}', good])
    agent = ContentTransformer(
        "transform/debate",
        prompts=prompts,
        params={"min_words": 1, "max_words": 9},
        repair_style="fresh",
    )
    inputs = TransformInput(skill=SKILL, category=cat(), seed=SEED)
    result = await agent.run(model, inputs)
    assert result.attempts == 3
    first, second, third = model.calls
    # same system message and prompt prefix; no assistant turn; the reasons so far noted
    assert len(second) == len(first) == len(third) == 2
    assert second[0] == first[0] and third[0] == first[0]
    assert second[1]["content"].startswith(first[1]["content"])
    assert second[1]["content"].endswith(
        "Note: an earlier answer to this request could not be used: no JSON object in the "
        "answer.\nAvoid that mistake and follow every rule above. Reply with "
        + agent.format_hint
        + "."
    )
    note = third[1]["content"][len(first[1]["content"]) :]
    assert "- no JSON object in the answer" in note and "- field text: Field required" in note
    assert "Sure!" not in note


def test_unknown_repair_style_is_refused(prompts: PromptLibrary) -> None:
    with pytest.raises(ValueError, match="repair_style must be one of show, fresh, got 'loud'"):
        ContentTransformer("t", prompts=prompts, repair_style="loud")  # type: ignore[arg-type]


async def test_an_answer_with_a_placeholder_of_the_format_is_sent_back(
    prompts: PromptLibrary,
) -> None:
    agent = ContentTransformer(
        "transform/debate", prompts=prompts, params={"min_words": 1, "max_words": 9}
    )
    inputs = TransformInput(skill=SKILL, category=cat(), seed=SEED)
    system = [m["content"] for m in agent.render(inputs) if m["role"] == "system"]
    placeholders = format_placeholders(system)
    assert placeholders, "the transform system prompt shows its format with placeholders"
    copied = sorted(placeholders)[0]
    good = '{"title": "t", "text": "' + "x " * 60 + '"}'
    lazy = '{"title": "' + copied + '", "text": "' + "x " * 60 + '"}'
    model = ScriptedModel([lazy, good])
    result = await agent.run(model, inputs)
    assert result.attempts == 2
    assert "a placeholder of the format example" in model.calls[1][-1]["content"]


async def test_a_fresh_repair_that_echoes_the_note_is_sent_back(prompts: PromptLibrary) -> None:
    agent = ContentTransformer(
        "transform/debate",
        prompts=prompts,
        params={"min_words": 1, "max_words": 9},
        repair_style="fresh",
        max_parse_retries=1,
    )
    inputs = TransformInput(skill=SKILL, category=cat(), seed=SEED)
    system = [m["content"] for m in agent.render(inputs) if m["role"] == "system"]
    placeholder = sorted(format_placeholders(system))[0]
    lazy = '{"title": "' + placeholder + '", "text": "' + "x " * 60 + '"}'
    echo = (
        '{"title": "t", "text": "My answer contains a placeholder of the format example: '
        'write the real content in its place, which is what this long text does not do."}'
    )
    model = ScriptedModel([lazy, echo])
    with pytest.raises(AgentError, match="repeats the note about an earlier answer"):
        await agent.run(model, inputs)


async def test_gives_up_after_bounded_retries(prompts: PromptLibrary) -> None:
    model = ScriptedModel(["nope", "still nope", "never"])
    agent = ContentTransformer(
        "transform/debate",
        prompts=prompts,
        params={"min_words": 1, "max_words": 9},
        max_parse_retries=2,
    )
    with pytest.raises(
        AgentError, match=r"malformed answer after 3 attempts: no JSON object"
    ) as exc:
        await agent.run(model, TransformInput(skill=SKILL, category=cat(), seed=SEED))
    assert exc.value.raw == "never"
    assert exc.value.usage.calls == 3
    assert model.remaining() == 0


async def test_skip_becomes_agent_skipped_without_retry(prompts: PromptLibrary) -> None:
    model = ScriptedModel(['{"skip": true, "reason": "navigation menu only"}', "unused"])
    agent = ContentTransformer(
        "transform/debate", prompts=prompts, params={"min_words": 1, "max_words": 9}
    )
    with pytest.raises(AgentSkipped, match="skipped: navigation menu only"):
        await agent.run(model, TransformInput(skill=SKILL, category=cat(), seed=SEED))
    assert model.remaining() == 1


async def test_truncated_answer_is_retried() -> None:
    class Cut:
        model_name = "cut"

        def __init__(self) -> None:
            self.n = 0

        async def complete(self, request: ModelRequest) -> Completion:
            self.n += 1
            if self.n == 1:
                return Completion(
                    '{"tasks": [{"instruction": "What', Usage(1, 1, 1), finish_reason="length"
                )
            return Completion(
                '{"tasks": [{"instruction": "What does the passage claim?", "answer": "A"}]}',
                Usage(1, 1, 1),
            )

        async def close(self) -> None: ...

    agent = SeedInstructionAgent("instruct/literal", prompts=PromptLibrary())
    inp = InstructInput(
        skill=SKILL,
        category=CategoryView(id="literal", name="Literal", guidance="common/repair.j2"),
        passage=PassageView(text="p"),
        count=1,
    )
    client = Cut()
    # guidance template needs `reason`/`format_hint`: supply them as params
    agent.params.update(reason="r", format_hint="f")
    result = await agent.run(client, inp)
    assert result.attempts == 2
    assert result.output.tasks[0].answer == "A"


async def test_identity_transformer_makes_no_call() -> None:
    model = ScriptedModel([])
    result = await IdentityTransformer().run(
        model, TransformInput(skill=SKILL, category=cat(), seed=SEED)
    )
    assert result.output.text == SEED.text
    assert model.calls == []


LONG_SEED = SeedView(
    id="s2",
    text=" ".join(
        f"Fact number {i} says the harbour tunnel carried {i * 7} vehicles." for i in range(30)
    ),
)


async def test_transformer_that_copies_the_seed_is_sent_back(prompts: PromptLibrary) -> None:
    copy = json.dumps({"title": "t", "text": LONG_SEED.text})
    extended = json.dumps({"title": "t", "text": LONG_SEED.text + " New material. " * 200})
    model = ScriptedModel([copy, extended])
    agent = ContentTransformer(
        "transform/long_text", prompts=prompts, params={"min_words": 1, "max_words": 9}
    )
    result = await agent.run(model, TransformInput(skill=SKILL, category=cat(), seed=LONG_SEED))
    assert result.attempts == 2, "an extension that keeps the seed and adds to it is fine"
    assert "repeats 100% of the seed word for word" in model.calls[1][-1]["content"]


async def test_echoed_input_markers_are_sent_back(prompts: PromptLibrary) -> None:
    echoed = json.dumps({"title": "t", "text": "<<<SEED\n" + "a new passage " * 20 + "\nSEED>>>"})
    good = json.dumps({"title": "t", "text": "a new passage " * 20})
    model = ScriptedModel([echoed, good])
    agent = ContentTransformer(
        "transform/debate", prompts=prompts, params={"min_words": 1, "max_words": 9}
    )
    result = await agent.run(model, TransformInput(skill=SKILL, category=cat(), seed=SEED))
    assert result.attempts == 2
    assert "field text contains the input marker '<<<SEED'" in model.calls[1][-1]["content"]
