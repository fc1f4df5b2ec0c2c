"""AutoGen interop and the public surface."""

from __future__ import annotations

import json

from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import TextMessage
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core import CancellationToken
from autogen_ext.models.replay import ReplayChatCompletionClient

import genteach
from genteach import as_autogen_agent
from genteach.agents import ContentTransformer, Suggester
from genteach.agents.refine import SuggestInput, TaskView
from genteach.agents.views import CategoryView, GoalView, SkillView
from genteach.prompts import PromptLibrary

SUGGESTIONS = json.dumps(
    {"suggestions": ["Add an option about lorries on the coast road that looks relevant."]}
)


def suggest_input() -> str:
    return SuggestInput(
        skill=SkillView(id="rc", name="Reading Comprehension"),
        category=CategoryView(id="weaken", name="Weaken", description="weaken an argument"),
        task=TaskView(material_text="A passage.", instruction="What is claimed?"),
        goals=[GoalView(id="complexify", name="Complexify", description="harder options")],
    ).model_dump_json()


async def test_agent_wrapped_for_autogen_runs_on_an_autogen_client() -> None:
    replay = ReplayChatCompletionClient([SUGGESTIONS])
    agent = as_autogen_agent(Suggester("suggester", prompts=PromptLibrary()), replay)
    response = await agent.on_messages(
        [TextMessage(content=suggest_input(), source="user")], CancellationToken()
    )
    out = json.loads(response.chat_message.to_model_text())
    assert out["suggestions"] == [
        "Add an option about lorries on the coast road that looks relevant."
    ]
    assert response.chat_message.models_usage is not None


async def test_wrapped_agent_reports_bad_input_as_a_message() -> None:
    agent = as_autogen_agent(
        Suggester("suggester", prompts=PromptLibrary()), ReplayChatCompletionClient([])
    )
    response = await agent.on_messages(
        [TextMessage(content="{}", source="user")], CancellationToken()
    )
    assert response.chat_message.to_model_text().startswith(
        "error: the input is not a valid SuggestInput"
    )


async def test_wrapped_agent_joins_a_team() -> None:
    replay = ReplayChatCompletionClient([SUGGESTIONS])
    agent = as_autogen_agent(Suggester("suggester", prompts=PromptLibrary()), replay)
    team = RoundRobinGroupChat([agent], termination_condition=MaxMessageTermination(2))
    result = await team.run(task=suggest_input())
    assert json.loads(result.messages[-1].to_model_text())["suggestions"]


def test_public_names_are_what_we_export() -> None:
    assert sorted(genteach.__all__) == sorted(set(genteach.__all__))
    for name in genteach.__all__:
        assert hasattr(genteach, name), name
    expected = {
        "Pipeline",
        "RunSettings",
        "ScriptedModel",
        "build_client",
        "ModelConfig",
        "load_taxonomy",
        "load_seeds",
        "Record",
        "Seed",
        "PromptLibrary",
        "Agent",
        "as_autogen_agent",
        "ModelClient",
    }
    assert expected <= set(genteach.__all__)
    public = {n for n in dir(genteach) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(genteach.__all__), public - set(genteach.__all__)


def test_core_import_does_not_pull_torch() -> None:
    import subprocess
    import sys

    code = "import sys, genteach, genteach.cli, genteach.pipeline; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_transformer_class_is_subclassable() -> None:
    class Shouty(ContentTransformer):
        default_system_template = "common/transform_system.j2"

        def parse(self, text, inputs=None):  # type: ignore[no-untyped-def]
            out = super().parse(text, inputs)
            out.text = out.text.upper()
            return out

    agent = Shouty("transform/shouty", prompts=PromptLibrary())
    parsed = agent.parse('{"title": "t", "text": "' + "abc " * 30 + '"}')
    assert parsed.text.startswith("ABC")
