"""The OS-agent skill (taxonomies/agenttuning.yaml): tasks proposed with a set-up, an
evaluation and a reference (the os_check key), the reference checked against itself in the
sandbox before the teacher acts, AgentBench's one-shot demonstration untrained, and the
teacher's episode kept only when the evaluation passes on its answer."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel, load_taxonomy, read_records
from genteach.flows import OsEpisodeFlow
from genteach.flows.base import FlowBuild
from genteach.keys import OsCheckKey
from genteach.models.base import Message, is_trained
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.runtime import Sandbox, SandboxUnavailable
from os_tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent
TAXONOMY = ROOT / "taxonomies" / "agenttuning.yaml"

try:
    Sandbox.probe()
    NO_SANDBOX = ""
except SandboxUnavailable as exc:  # the OS environment never runs code outside one
    NO_SANDBOX = str(exc)
needs_sandbox = pytest.mark.skipif(bool(NO_SANDBOX), reason=f"no sandbox: {NO_SANDBOX}")


def test_an_os_check_key_must_make_a_valid_task() -> None:
    ok = OsCheckKey(init="printf 'a\\nb\\n' > f.txt", evaluation="match", reference="wc -l < f.txt")
    assert ok.fit_task("How many lines does f.txt have?", None) is None
    bad = OsCheckKey(evaluation="checks", checks=[], reference="echo 1")
    assert bad.fit_task("How many?", None)
    script = OsCheckKey.model_validate(
        {"evaluation": "checks", "checks": [{"kind": "script"}], "reference": "echo 1"}
    )
    assert "script" in (script.fit_task("Rename it.", None) or "")


def test_the_demonstration_is_agentbenchs_and_untrained() -> None:
    skill = load_taxonomy(TAXONOMY).skills["os"]
    flow = OsEpisodeFlow.from_config(
        skill, OsEpisodeFlow.Settings(), FlowBuild(prompts=PromptLibrary())
    )
    demo = flow.demo(PromptLibrary())
    assert [m["role"] for m in demo] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert not any(is_trained(m) for m in demo)
    assert demo[0]["content"].startswith('tell me how many files are in the directory "/etc"?')
    assert "[output cut here" in demo[2]["content"] and len(demo[2]["content"]) < 1000
    assert demo[-1]["content"].rstrip().endswith("Act: answer(220)")


class OsTeacher:
    """A perfect OS teacher by agent role (``wrong``: the acting teacher guesses)."""

    def __init__(self, *, wrong: bool = False) -> None:
        self.calls: Counter[str] = Counter()
        self.wrong = wrong

    def __call__(self, messages: Sequence[Message]) -> str:
        system = messages[0]["content"]
        if "task-writing agent" in system:
            user = messages[1]["content"]
            name = re.search(r'of the type "([^"]+)"', user).group(1)  # type: ignore[union-attr]
            n = int(re.search(r"Write (\d+) task", user).group(1))  # type: ignore[union-attr]
            request, key, _, _ = TASKS[name]
            return json.dumps({"tasks": [{"instruction": request, "key": key}] * n})
        if "expert Linux shell agent" in system:
            self.calls["act"] += 1
            start = max(
                i
                for i, m in enumerate(messages)
                if m["role"] == "user" and "The task is:" in m["content"]
            )
            text = messages[start]["content"]
            done = sum(1 for m in messages[start:] if m["role"] == "assistant")
            for request, key, commands, final in TASKS.values():
                if request not in text:
                    continue
                counted = bool(key["checks"]) and key["checks"][0]["kind"] == "integer"
                if self.wrong:
                    return "Think: I guess.\n\nAct: answer(3)"
                if done < len(commands):
                    return f"Think: I run the next command.\n\nAct: bash\n\n```bash\n{commands[done]}\n```"
                if final is None and counted:
                    last = messages[-1]["content"].strip().splitlines()[-1]
                    return f"Think: The output is the count.\n\nAct: answer({last})"
                if final is None:
                    return "Think: The change is made.\n\nAct: finish"
                return f"Think: The output gives the answer.\n\nAct: answer({final})"
            raise AssertionError("unknown task " + text[:300])
        raise AssertionError("unknown agent " + system[:200])


def seeds() -> list[Seed]:
    folder = ROOT / "examples" / "seeds"
    return [
        Seed.from_text(p.read_text(), source=p.name)
        for p in sorted(folder.iterdir())
        if p.suffix in (".txt", ".md")
    ]


def run(out: Path, *, wrong: bool, run_seed: int) -> Any:
    pipe = Pipeline(
        ScriptedModel(OsTeacher(wrong=wrong), name="scripted-os"),
        taxonomy=TAXONOMY,
        skills=["os"],
        settings=RunSettings(seed=run_seed),
    )
    return pipe.run(seeds(), out)


@needs_sandbox
@pytest.mark.slow
def test_the_os_skill_keeps_episodes_whose_answer_passes_the_tasks_checks(tmp_path: Path) -> None:
    skill = load_taxonomy(TAXONOMY).skills["os"]
    types: Counter[str] = Counter()
    for run_seed in range(4):
        out = tmp_path / str(run_seed)
        summary = run(out, wrong=False, run_seed=run_seed)
        assert summary.rejects == 0, (out / "rejects.jsonl").read_text()
        for r in read_records(out / "records.jsonl"):
            types[r.meta.sub_category] += 1
            assert r.meta.verification is not None and r.meta.verification.status == "passed"
            flags = [is_trained(m) for m in r.messages]
            # the instructions with the demonstration's task, its turns, the new task and the
            # observations are untrained; the teacher's own turns are trained
            assert "tell me how many files are in the directory" in r.messages[0]["content"]
            assert not any(flags[:7]) and flags[-1]
            assert r.messages[6]["content"].startswith("That was an example.")
            assert all(
                t == (m["role"] == "assistant")
                for m, t in zip(r.messages[7:], flags[7:], strict=True)
            )
    assert set(types) == {t.id for t in skill.task_types}


@needs_sandbox
def test_a_guessed_answer_is_filtered_with_the_checks_reason(tmp_path: Path) -> None:
    summary = run(tmp_path, wrong=True, run_seed=0)
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    episodes = [r for r in rejects if r["stage"] == "os_episode"]
    assert summary.records == 0 and episodes
    assert all(r["reason"].startswith("reward 0") for r in episodes)
    report = json.loads((tmp_path / "trajectories.json").read_text())["os"]
    assert report["kept"] == 0 and report["failures"] == {"wrong answer": len(episodes)}
