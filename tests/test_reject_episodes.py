"""A filtered episode's reject holds its whole transcript: the DB and OS skills (a wrong
answer, a repeated output, a malformed action), the tool-use and follow-up conversations,
each turn flagged as a kept record would flag it; reject lines written before the field
existed still load; ``genteach inspect --rejects`` prints the turns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel
from genteach.cli import main
from genteach.models.base import Message, is_trained
from genteach.prompts import PromptLibrary
from genteach.records import Reject, read_jsonl
from genteach.taxonomy import load_taxonomy
from scripted_teacher import Teacher
from test_conversation import run as run_follow_up
from test_db_skill import TAXONOMY, DbTeacher, text_seeds
from test_db_skill import run as run_db
from test_os_skill import OsTeacher, needs_sandbox, seeds
from tool_conversation import ASSISTANT, ASSISTANT_MARKER, SIMULATOR, SIMULATOR_MARKER, play

OPERATION = "I count the rows.\nAction: Operation\n```sql\nSELECT COUNT(*) FROM customers\n```"


def rejects_of(folder: Path, stage: str) -> list[Reject]:
    """The rejects of ``stage`` in the run folder ``folder``, loaded as :class:`Reject`."""
    rows = [Reject.model_validate(r) for r in read_jsonl(folder / "rejects.jsonl")]
    return [r for r in rows if r.stage == stage]


def flags(messages: Sequence[Message] | None) -> list[tuple[str, bool]]:
    return [(m["role"], is_trained(m)) for m in messages or []]


class StuckDbTeacher(DbTeacher):
    """The database teacher whose acting turns are all ``output``."""

    def __init__(self, output: str) -> None:
        super().__init__()
        self.output = output

    def __call__(self, messages: Sequence[Message]) -> str:
        if "expert database agent" in messages[0]["content"]:
            return self.output
        return super().__call__(messages)


def run_stuck_db(out: Path, output: str) -> list[Reject]:
    pipe = Pipeline(
        ScriptedModel(StuckDbTeacher(output), name="scripted-db"),
        taxonomy=TAXONOMY,
        skills=["db"],
        settings=RunSettings(seed=0),
    )
    pipe.run(text_seeds()[:1], out)
    return rejects_of(out, "db_episode")


# -- the database and OS skills -------------------------------------------------------------
def test_a_wrong_db_episode_rejects_with_every_turn_flagged(tmp_path: Path) -> None:
    run_db(tmp_path, wrong=True, run_seed=0)
    episodes = rejects_of(tmp_path, "db_episode")
    assert episodes and all(r.reason.startswith("reward 0") for r in episodes)
    for r in episodes:
        assert r.messages is not None
        # the format's instructions and "Ok." untrained, the task, then the teacher's
        # operation (trained), the database's rows (untrained) and its answer (trained)
        assert flags(r.messages) == [
            ("user", False),
            ("assistant", False),
            ("user", False),
            ("assistant", True),
            ("user", False),
            ("assistant", True),
        ]
        assert r.messages[0]["content"].startswith("I will ask you a question about an SQLite")
        assert r.messages[1]["content"] == "Ok."
        assert "The name of this table is" in r.messages[2]["content"]
        assert r.messages[3]["content"].endswith("```sql\nSELECT 1\n```")
        assert r.messages[4]["content"] == "[(1,)]"
        assert "Final Answer:" in r.messages[5]["content"]


def test_an_unfinished_db_episode_keeps_the_turns_it_took(tmp_path: Path) -> None:
    opening = [("user", False), ("assistant", False), ("user", False)]
    repeated = run_stuck_db(tmp_path / "repeat", OPERATION)
    assert repeated
    for r in repeated:
        assert r.reason.startswith("repeated_output") and r.raw == OPERATION
        # the third identical output ends the episode before it enters the transcript
        assert flags(r.messages) == [*opening, *[("assistant", True), ("user", False)] * 2]
    malformed = run_stuck_db(tmp_path / "malformed", "I am not sure what to do.")
    assert malformed
    for r in malformed:
        assert r.reason.startswith("malformed_action")
        assert flags(r.messages) == opening and r.raw == "I am not sure what to do."


@needs_sandbox
def test_a_wrong_os_episode_rejects_with_the_untrained_demonstration(tmp_path: Path) -> None:
    pipe = Pipeline(
        ScriptedModel(OsTeacher(wrong=True), name="scripted-os"),
        taxonomy=TAXONOMY,
        skills=["os"],
        settings=RunSettings(seed=0),
    )
    pipe.run(seeds()[:1], tmp_path)
    episodes = rejects_of(tmp_path, "os_episode")
    assert episodes and all(r.reason.startswith("reward 0") for r in episodes)
    for r in episodes:
        assert r.messages is not None
        # the instructions with the demonstration's task, its turns and the new task are
        # untrained, as on a kept record; the teacher's guess is trained
        assert flags(r.messages) == [
            ("user", False),
            *[("assistant", False), ("user", False)] * 3,
            ("assistant", True),
        ]
        assert "tell me how many files are in the directory" in r.messages[0]["content"]
        assert r.messages[6]["content"].startswith("That was an example.")
        assert r.messages[7]["content"] == "Think: I guess.\n\nAct: answer(3)"


# -- conversations ----------------------------------------------------------------------------
def test_a_failed_tool_conversation_rejects_with_its_calls_and_results() -> None:
    skill = load_taxonomy().skill("tool_use")
    prompts = PromptLibrary()
    gives_up = 'No API books it.\nACTION_TYPE : STOP\nACTION: FAILED("The date is missing.")'
    model = ScriptedModel(
        {ASSISTANT_MARKER: [ASSISTANT[0], gives_up], SIMULATOR_MARKER: [json.dumps(SIMULATOR[0])]}
    )
    item = play(skill, prompts, model)
    (reject,) = item.rejects
    assert not item.records and "ended with FAILED" in reject.reason
    assert flags(reject.messages) == [
        ("system", False),
        ("user", False),
        ("assistant", True),
        ("user", False),
        ("assistant", True),
    ]
    assert reject.messages is not None and reject.messages[-1]["content"] == gives_up


def test_a_rejected_follow_up_conversation_holds_its_turns(tmp_path: Path) -> None:
    records, _ = run_follow_up(tmp_path, Teacher(wrong=["*"]))
    episodes = rejects_of(tmp_path, "conversation")
    assert not records and episodes
    for r in episodes:
        assert "disagrees with its key" in r.reason
        turns = flags(r.messages)
        assert turns[-2:] == [("user", False), ("assistant", True)]
        assert turns[:-2] in ([], [("system", False)])  # a system prompt when the view has one


# -- old files and inspect -----------------------------------------------------------------------
OLD_LINE = {
    "unit": "db/abc",
    "seed_id": "abc",
    "skill": "db",
    "stage": "db_tables",
    "agent": "db_tables",
    "reason": "field tables: missing",
    "raw": "{}",
    "created_at": "2025-01-01T00:00:00+00:00",
}


def test_a_reject_line_without_messages_still_loads(tmp_path: Path) -> None:
    reject = Reject.model_validate(OLD_LINE)
    assert reject.messages is None
    assert reject.model_dump(mode="json") == {**OLD_LINE, "messages": None}


def test_inspect_prints_the_turns_of_filtered_episodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    episodes = len(run_stuck_db(tmp_path, "I am not sure what to do."))
    with (tmp_path / "rejects.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(OLD_LINE) + "\n")
        long = {**OLD_LINE, "stage": "db_episode", "reason": "reward 0: long", "raw": ""}
        long["messages"] = [{"role": "user", "content": "x" * 5000, "trained": False}]
        fh.write(json.dumps(long) + "\n")
    assert main(["inspect", str(tmp_path), "--rejects", "-n", "5"]) == 0
    shown = capsys.readouterr().out
    assert f"{episodes + 2} rejects in" in shown
    assert f"{episodes + 1} of them filtered episodes; showing {min(5, episodes + 1)}" in shown
    assert "reason: malformed_action: malformed action after 3 attempts" in shown
    assert "--- user (untrained)\nI will ask you a question about an SQLite" in shown
    assert "--- assistant (untrained)\nOk.\n" in shown
    # the refused output is not in the transcript: it is shown after it
    assert "not in the transcript as written\nI am not sure what to do.\n" in shown
    assert "x" * 1500 + " ... [truncated: 3500 more characters]" in shown
    assert "field tables: missing" in shown and "unit db/abc  stage db_tables" not in shown
    assert main(["inspect", str(tmp_path), "--rejects", "--skill", "os"]) == 0
    assert capsys.readouterr().out.startswith("0 rejects in")
