"""Teacher tools: the responder runs a tool loop (here a word-count tool defined in this
file, named in the taxonomy as ``test_teacher_tools:CountWords``) before it answers; the
skill's ``tool_trace`` keeps the calls in the record (trained assistant turns, untrained
tool results) or hides them. The teacher's own guidance never enters the record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel, read_records
from genteach.models.base import Completion, ModelRequest, ToolSpec, Usage
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from scripted_teacher import Teacher

TAXONOMY = """
name: tools
skills:
  counting:
    name: Counting
    status: ready
    seed_kinds: [text]
    student: {{system_prompts: null}}
    transformers:
      - {{id: identity, name: Identity, agent: identity}}
    task_types:
      - {{id: count, name: Count, guidance: t/guide.j2, key: [numeric]}}
    pipeline:
      - {{flow: content_transformation}}
      - {{flow: seed_instruction, task_types_per_seed: 1, tasks_per_type: 1}}
      - {{flow: response, tools: ["test_teacher_tools:CountWords"], tool_trace: {trace}}}
"""


class CountWords:
    """A test tool: the number of words of a text."""

    spec = ToolSpec(
        name="count_words",
        description="Count the words of a text.",
        parameters={
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    )
    calls: ClassVar[list[str]] = []

    async def __call__(self, arguments: Mapping[str, Any]) -> str:
        CountWords.calls.append(str(arguments["text"]))
        return str(len(str(arguments["text"]).split()))


class ToolTeacher:
    """The scripted teacher, and a responder that calls count_words before answering."""

    model_name = "tool-teacher"

    def __init__(self) -> None:
        self.inner = ScriptedModel(Teacher())
        self.tool_requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> Completion:
        if not request.tools:
            return await self.inner.complete(request)
        self.tool_requests.append(request)
        if not any(m["role"] == "tool" for m in request.messages):
            call = {"id": "call_1", "name": "count_words", "arguments": '{"text": "one two three"}'}
            return Completion("", Usage(10, 5, 1), finish_reason="tool_calls", tool_calls=(call,))
        return Completion("The tool counted 3.\n\nFinal answer: 3", Usage(20, 8, 1))

    async def close(self) -> None: ...


@pytest.mark.parametrize("trace", ["keep", "hide"])
def test_the_responder_uses_a_tool_and_the_trace_is_kept_or_hidden(
    trace: str, tmp_path: Path, guidance_dir: Path
) -> None:
    (tmp_path / "tax.yaml").write_text(TAXONOMY.format(trace=trace))
    client = ToolTeacher()
    CountWords.calls.clear()
    pipe = Pipeline(
        client,
        taxonomy=tmp_path / "tax.yaml",
        prompts=PromptLibrary([guidance_dir]),
        settings=RunSettings(seed=0),
    )
    seed = Seed.from_text("The harbour tunnel opened in March after four years of works. " * 3)
    summary = pipe.run([seed], tmp_path / "out")
    assert (summary.records, summary.rejects) == (1, 0)
    (record,) = read_records(tmp_path / "out" / "records.jsonl")
    assert CountWords.calls == ["one two three"]
    assert record.meta.verification is not None and record.meta.verification.status == "passed"
    roles = [(m["role"], m.get("trained")) for m in record.messages]
    if trace == "keep":
        assert roles == [
            ("system", False),
            ("user", False),
            ("assistant", True),
            ("tool", False),
            ("assistant", True),
        ]
        assert record.messages[2]["tool_calls"][0]["name"] == "count_words"
        assert record.messages[3]["content"] == "3"
    else:
        assert roles == [("user", False), ("assistant", True)]
    assert record.messages[-1]["content"].endswith("Final answer: 3")
    # The teacher's guidance went with each call and never into the record.
    assert all("expert teacher" in r.messages[0]["content"] for r in client.tool_requests)
    assert not any("expert teacher" in m["content"] for m in record.messages)
    assert json.loads((tmp_path / "out" / "progress.jsonl").read_text())["verified"] == {
        "passed": 1
    }
