"""The follow_up skill's conversation: the user simulator's parser (good, truncated and
malformed answers, skips, limits its message must state), the reply format, and the
conversation flow end to end with the scripted teacher (turns, trained flags, per-turn
checks, a failed later turn cut off, a failed first answer rejected)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel, read_records
from genteach.agents import AgentSkipped, FollowUpInput, Move, ParseError, UserSimulator
from genteach.agents.views import CategoryView, SkillView
from genteach.flows import ConversationFlow
from genteach.flows.conversation import first_turns, kept_turns
from genteach.keys import Verification
from genteach.models.base import Completion, message
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.runtime import ReplyFormat, TurnContext, check_reply
from genteach.taxonomy import load_taxonomy
from scripted_teacher import PASSAGE, Teacher

PROMPTS = PromptLibrary()
SUMMARY = Move(id="summarise", name="Ask for a summary", description="Sum it up.", constraint=True)
EXAMPLE = Move(id="ask_example", name="Ask for an example", description="Ask for one.")
REPLY = "The critics say a bus strike inflated the earlier traffic counts taken by the council."


def inputs(move: Move = EXAMPLE, earlier: tuple[str, ...] = ()) -> FollowUpInput:
    turns = [message("user", f"Read this and list the critics' points.\n\n{PASSAGE}")]
    for e in earlier:
        turns += [message("assistant", REPLY), message("user", e)]
    turns.append(message("assistant", REPLY))
    return FollowUpInput(
        skill=SkillView(id="follow_up", name="Conversation"),
        category=CategoryView(id="key_facts", name="Key Facts Extraction"),
        conversation=turns,
        move=move,
        turn=2 + len(earlier),
        turns=4,
    )


def simulator() -> UserSimulator:
    return UserSimulator("user_simulator", prompts=PROMPTS)


def answer(text: str, constraints: dict[str, object] | None = None) -> str:
    return json.dumps({"message": text, "constraints": constraints})


# -- the parser ---------------------------------------------------------------------------
def test_a_good_follow_up_parses_with_its_limits_as_a_key() -> None:
    text = 'Sum that up in at most 40 words for my boss, and use the word "strike".'
    out = simulator().parse(answer(text, {"max_words": 40, "include": ["strike"]}), inputs(SUMMARY))
    assert out.message == text
    key = out.key()
    assert key is not None and key.max_words == 40 and key.include == ["strike"]
    assert simulator().parse(answer("Can you give me an example of that?"), inputs()).key() is None


@pytest.mark.parametrize(
    ("raw", "move", "reason"),
    [
        ('{"message": "Can you give me an exa', EXAMPLE, "truncated JSON object"),
        ("Sure, here is the next message.", EXAMPLE, "no JSON object"),
        ('{"text": "Why is that?"}', EXAMPLE, "field message: Field required"),
        (answer("Why?"), EXAMPLE, "the message has 1 words"),
        (answer("Please summarise all of that for me."), SUMMARY, "sets a limit code can check"),
        (
            answer("Please summarise that briefly for me.", {"max_words": 40}),
            SUMMARY,
            "constraints: the constraints key checks nothing the instruction states",
        ),
        (answer(f"You said: {REPLY} Why?"), EXAMPLE, "copies a long run of words"),
    ],
)
def test_malformed_follow_ups_are_refused_with_a_reason(raw: str, move: Move, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        simulator().parse(raw, inputs(move))
    assert reason in exc.value.reason


def test_a_limit_the_message_does_not_state_is_dropped_from_its_check() -> None:
    raw = answer("Summarise it in 40 words or fewer.", {"max_words": 40, "include": ["toll"]})
    key = simulator().parse(raw, inputs(SUMMARY)).key()
    assert key is not None and key.max_words == 40
    assert key.include == []  # "toll" was never asked for


def test_a_follow_up_that_repeats_an_earlier_one_is_refused() -> None:
    earlier = "Could you give me one concrete example of the bus strike effect?"
    with pytest.raises(ParseError, match="repeats an earlier user message"):
        simulator().parse(answer(earlier), inputs(earlier=(earlier,)))


async def test_a_skip_declines_the_move() -> None:
    model = ScriptedModel(['{"skip": true, "reason": "nothing left to summarise"}'])
    with pytest.raises(AgentSkipped, match="nothing left to summarise"):
        await simulator().run(model, inputs(SUMMARY), seed=1)


def test_the_simulator_prompt_names_the_move_and_delimits_the_conversation() -> None:
    system, user = simulator().render(inputs(SUMMARY))
    assert "You play the user in a conversation" in system["content"]
    assert '"constraints": {"max_words"' in system["content"]
    assert user["content"].startswith("<<<CONVERSATION\n[User]\nRead this")
    assert "The move to make: Ask for a summary. Sum it up." in user["content"]
    assert "This move sets a limit code can check" in user["content"]


# -- the reply format and per-turn checks ------------------------------------------------
def test_the_reply_format_holds_only_the_first_closed_reply_to_a_final_line() -> None:
    fmt = ReplyFormat("short")
    first, later = TurnContext(turn=0), TurnContext(turn=1)
    assert fmt.parse(Completion(text="It is 3.\nFinal answer: 3"), first).text.endswith("3")
    assert fmt.grammar(first) is not None and fmt.grammar(later) is None
    with pytest.raises(ParseError, match="Final answer"):
        fmt.parse(Completion(text="It is three."), first)
    with pytest.raises(ParseError, match="a follow-up reply has no"):
        fmt.parse(Completion(text="Sure.\nFinal answer: 3"), later)
    with pytest.raises(ParseError, match="empty answer"):
        fmt.parse(Completion(text="  "), later)
    assert ReplyFormat("open").parse(Completion(text="Prose."), first).kind == "answer"
    assert fmt.instructions(PROMPTS, None) == ""  # type: ignore[arg-type]


def test_later_replies_are_checked_only_against_stated_limits() -> None:
    sim = simulator()
    limited = sim.parse(answer("Now say it in 10 words at most.", {"max_words": 10}), inputs())
    assert check_reply(limited, "Short enough, I think.").status == "passed"
    assert check_reply(limited, " ".join(["word"] * 11)).status == "failed"
    assert check_reply(None, "Anything.").status == "unchecked"


def test_a_failed_turn_keeps_the_turns_before_it() -> None:
    ok = Verification(kind="constraints", status="passed")
    bad = Verification(kind="constraints", status="failed")
    assert kept_turns([ok, ok, ok, bad]) == 3 and kept_turns([bad, ok]) == 0
    turns = [message("user", "q1"), message("assistant", "a1")]
    turns += [message("user", "q2"), message("assistant", "a2")]
    assert first_turns(turns, 1) == turns[:2]


# -- the flow -----------------------------------------------------------------------------
def run(tmp_path: Path, teacher: Teacher, seed: int = 3) -> tuple[list, str]:  # type: ignore[type-arg]
    seeds = [Seed.from_text(PASSAGE * 3, source="tunnel.txt")]
    pipe = Pipeline(
        ScriptedModel(teacher, name="scripted-teacher"),
        skills=["follow_up"],
        settings=RunSettings(seed=seed),
    )
    pipe.run(seeds, tmp_path)
    rejects = tmp_path / "rejects.jsonl"
    return list(read_records(tmp_path / "records.jsonl")), (
        rejects.read_text() if rejects.exists() else ""
    )


def test_conversations_have_3_to_6_user_turns_and_every_reply_trained(tmp_path: Path) -> None:
    records, rejects = run(tmp_path, Teacher(rotate_kinds=True))
    assert records and not rejects
    for r in records:
        turns = [m for m in r.messages if m["role"] != "system"]
        users = [m for m in turns if m["role"] == "user"]
        assert 3 <= len(users) <= 6
        assert [m["role"] for m in turns] == ["user", "assistant"] * len(users)
        assert all(m.get("trained") is (m["role"] == "assistant") for m in r.messages)
        assert r.meta.verification is not None and r.meta.verification.status == "passed"
        assert r.meta.verification.detail.count("turn ") == len(users)
        assert r.meta.slot["turns"] == str(len(users))
        assert len(r.meta.slot["moves"].split()) == len(users) - 1
        assert r.meta.agents.count("user_simulator") == len(users) - 1


def test_a_reply_that_breaks_a_stated_limit_ends_the_conversation_there(tmp_path: Path) -> None:
    class Wordy(Teacher):
        def follow_up_reply(self, n: int) -> str:
            return super().follow_up_reply(n) + " More." * 40

    class Limited(Wordy):
        def user_simulator(self, messages):  # type: ignore[no-untyped-def]
            user = messages[1]["content"]
            n = int(user.split("Write user message ")[1].split(" ")[0])
            if n < 4:  # the first follow-ups set no limit; the fourth does
                return answer(f"Tell me more, please (follow-up {n}).")
            return answer(
                f'Now 30 words at most, with "traffic counts" (follow-up {n}).',
                {"max_words": 30, "include": ["traffic counts"]},
            )

    records, rejects = run(tmp_path, Limited())
    assert records
    for r in records:
        users = [m for m in r.messages if m["role"] == "user"]
        assert len(users) == 3  # the fourth turn's reply broke its limit: cut before it
    assert "disagrees with" not in rejects


def test_a_wrong_first_answer_is_rejected_with_its_key(tmp_path: Path) -> None:
    records, rejects = run(tmp_path, Teacher(wrong=["*"]))
    assert not records
    assert "the reply to user turn 1 disagrees with its key" in rejects


def test_the_flow_needs_moves() -> None:
    skill = load_taxonomy().skills["follow_up"]
    with pytest.raises(Exception, match="needs moves"):
        ConversationFlow(skill, simulator(), ConversationFlow.Settings(), options={})
    with pytest.raises(ValueError, match="min_turns 5 is above max_turns 4"):
        ConversationFlow.Settings(min_turns=5, max_turns=4)
