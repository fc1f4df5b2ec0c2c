"""The episode runner against a toy environment: ReAct OS, ReAct DB and function-calling
episodes, AgentTuning's three-repeat rule, BLEU mapping, bounded repair, budgets,
trained flags, and the requests the model receives."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from genteach import ScriptedModel
from genteach.cache import CachedModel, ResponseCache
from genteach.models.base import (
    Completion,
    FatalModelError,
    ModelRequest,
    ToolCall,
    ToolSpec,
    Usage,
    message,
)
from genteach.prompts import PromptLibrary
from genteach.runtime import (
    Action,
    EnvironmentFailure,
    EpisodeSettings,
    FunctionCallingFormat,
    Observation,
    ReactDbFormat,
    ReactOsFormat,
    Rejection,
    StepResult,
    TurnContext,
    answer_list,
    demonstration,
    derive_seed,
    run_episode,
)

PROMPTS = PromptLibrary()
OS = ReactOsFormat()
DB = ReactDbFormat()
FC = FunctionCallingFormat()


# -- the toy environment ------------------------------------------------------------------
@dataclass(frozen=True)
class KvTask:
    """A question about a small key-value store, or a change to make to it."""

    question: str
    store: dict[str, str]
    expected: str | None = None
    expected_store: dict[str, str] | None = None
    finite: bool = False


KV_TOOLS = (
    ToolSpec(
        name="get",
        description="The value of a key.",
        parameters={
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
        },
    ),
    ToolSpec(
        name="keys", description="Every key.", parameters={"type": "object", "properties": {}}
    ),
)
_SELECT = re.compile(r"SELECT value FROM kv WHERE key = '(\w+)';?", re.IGNORECASE)
_UPDATE = re.compile(r"UPDATE kv SET value = '(\w+)' WHERE key = '(\w+)';?", re.IGNORECASE)


@dataclass
class KvStore:
    """Commands ``get KEY``, ``set KEY VALUE`` and ``keys`` (bash-like), two SQL forms, or
    the functions of :data:`KV_TOOLS`. An answer is right when it is the expected value
    (a DB answer list: its first element); ``finish`` when the store ends as expected."""

    fail_on: str | None = None
    resets: list[int | None] = field(default_factory=list)
    store: dict[str, str] = field(default_factory=dict)
    task: KvTask | None = None

    async def reset(self, task: KvTask, *, seed: int | None = None) -> Observation:
        self.task, self.store = task, dict(task.store)
        self.resets.append(seed)
        return Observation(text=task.question, tools=KV_TOOLS)

    async def step(self, action: Action) -> StepResult:
        assert self.task is not None
        if action.kind == "call":
            command = action.text or " ".join([action.name, *map(str, action.arguments.values())])
            if command == self.fail_on:
                raise EnvironmentFailure("the store crashed", raw=command, usage=Usage(3, 4, 1))
            return self.run(command)
        if action.kind == "answer":
            got = action.text
            if got.startswith("["):
                values = answer_list(got)
                got = str(values[0]) if values else ""
            return StepResult(reward=1.0 if got == self.task.expected else 0.0, done=True)
        return StepResult(reward=1.0 if self.store == self.task.expected_store else 0.0, done=True)

    def run(self, command: str) -> StepResult:
        if m := _SELECT.fullmatch(command):
            value = self.store.get(m.group(1))
            return StepResult(observation=f"[('{value}',)]" if value is not None else "[]")
        if m := _UPDATE.fullmatch(command):
            self.store[m.group(2)] = m.group(1)
            return StepResult(observation="[]")
        verb, *args = command.split()
        if verb == "keys":
            return StepResult(observation=" ".join(sorted(self.store)))
        if verb == "get" and len(args) == 1:
            if args[0] not in self.store:
                return StepResult(observation=f"no key {args[0]}", error=True)
            return StepResult(observation=self.store[args[0]])
        if verb == "set" and len(args) == 2:
            self.store[args[0]] = args[1]
            return StepResult()
        return StepResult(observation=f"unknown command: {command}", error=True)

    def admissible_actions(self) -> list[Action] | None:
        if self.task is None or not self.task.finite:
            return None
        gets = [Action(kind="call", name="bash", text=f"get {k}") for k in sorted(self.store)]
        return [*gets, Action(kind="call", name="bash", text="keys")]

    async def close(self) -> None:
        return None


APPLE = KvTask("What is the value of apple?", {"apple": "3", "pear": "5"}, expected="3")


class Script:
    """A scripted client that returns given completions (tool calls included) in order;
    ``on_call`` runs before each answer (e.g. to move a fake clock)."""

    def __init__(
        self, completions: Sequence[Completion], on_call: Callable[[], None] | None = None
    ) -> None:
        self.completions = list(completions)
        self.on_call = on_call
        self.requests: list[ModelRequest] = []

    @property
    def model_name(self) -> str:
        return "script"

    async def complete(self, request: ModelRequest) -> Completion:
        self.requests.append(request)
        if self.on_call is not None:
            self.on_call()
        return self.completions.pop(0)

    async def close(self) -> None:
        return None


def os_turn(thought: str, command: str) -> str:
    return f"Think: {thought}\n\nAct: bash\n\n```bash\n{command}\n```"


def roles(messages: Sequence[object]) -> list[tuple[str, bool]]:
    return [(m["role"], m["trained"]) for m in messages]  # type: ignore[index]


# -- episodes that reach done -------------------------------------------------------------
async def test_os_episode_after_a_demonstration_reaches_done_with_reward() -> None:
    demos = demonstration(
        OS,
        PROMPTS,
        "How many keys are there?",
        [
            (
                Action(kind="call", name="bash", text="keys", thought="List them."),
                StepResult("apple pear"),
            ),
            (Action(kind="answer", text="2", thought="Two keys."), None),
        ],
    )
    model = ScriptedModel([os_turn("Read it.", "get apple"), "Think: It is 3.\n\nAct: answer(3)"])
    env = KvStore()
    episode = await run_episode(model, env, APPLE, OS, prompts=PROMPTS, seed=7, demos=demos)

    assert (episode.end, episode.done, episode.reward) == ("finished", True, 1.0)
    assert roles(episode.messages) == [
        ("user", False),  # the instructions, then the demonstration's task
        ("assistant", False),  # the demonstration's turns
        ("user", False),
        ("assistant", False),
        ("user", False),  # the task
        ("assistant", True),
        ("user", False),  # the observation
        ("assistant", True),
    ]
    assert episode.trained == [False, False, False, False, False, True, False, True]
    first = episode.messages[0]["content"]
    assert first.startswith("You are an assistant working in a Linux (Ubuntu) shell.")
    assert first.endswith("- Take exactly one action per turn.\n\nHow many keys are there?")
    assert episode.messages[1]["content"] == os_turn("List them.", "keys")
    assert episode.messages[2]["content"] == "The output of the OS:\n\napple pear"
    assert episode.messages[3]["content"] == "Think: Two keys.\n\nAct: answer(2)"
    assert episode.messages[4]["content"] == (
        "That was an example. Now a new task starts, in a new operating system where nothing "
        "of the example exists. The task is:\n\nWhat is the value of apple?"
    )
    assert episode.messages[6]["content"] == "The output of the OS:\n\n3"
    assert [t.action for t in episode.turns] == [
        Action(kind="call", name="bash", text="get apple", thought="Read it."),
        Action(kind="answer", text="3", thought="It is 3."),
    ]
    assert episode.turns[1].steps[0].result.reward == 1.0
    # every call carries the stop sequence and the grammar; seeds derive from the base seed
    assert [r.stop for r in model.requests] == [("\nThe output of the OS:",)] * 2
    assert model.requests[0].grammar == OS.grammar(TurnContext())
    assert [r.seed for r in model.requests] == [derive_seed(7, 0, 0), derive_seed(7, 1, 0)]
    assert env.resets == [derive_seed(7, "reset")]
    assert episode.usage.calls == 2 and episode.format == "react_os"


async def test_db_episode_opens_with_a_scripted_acknowledgement() -> None:
    model = ScriptedModel(
        [
            "Select the value of apple.\nAction: Operation\n```sql\nSELECT value FROM kv WHERE key = 'apple';\n```",
            "The value is '3'.\nAction: Answer\nFinal Answer: [\"3\"]",
        ]
    )
    episode = await run_episode(model, KvStore(), APPLE, DB, prompts=PROMPTS)
    assert (episode.end, episode.reward) == ("finished", 1.0)
    assert roles(episode.messages) == [
        ("user", False),  # the instructions
        ("assistant", False),  # "Ok.", scripted
        ("user", False),  # the task
        ("assistant", True),
        ("user", False),
        ("assistant", True),
    ]
    assert episode.messages[1] == message("assistant", "Ok.", trained=False)
    assert episode.messages[2] == message("user", "What is the value of apple?", trained=False)
    assert episode.messages[4] == message("user", "[('3',)]", trained=False)
    assert episode.turns[0].action.text == "SELECT value FROM kv WHERE key = 'apple';"
    assert model.requests[0].stop == () and model.requests[0].tools == ()
    assert model.requests[0].seed is None  # no base seed, no call seeds


async def test_db_episode_that_changes_data_is_scored_by_the_store() -> None:
    task = KvTask("Set pear to 9.", {"pear": "5"}, expected_store={"pear": "9"})
    model = ScriptedModel(
        [
            "Update it.\nAction: Operation\n```sql\nUPDATE kv SET value = '9' WHERE key = 'pear'\n```",
            "Done; the answer is not checked.\nAction: Answer\nFinal Answer: []",
        ]
    )
    episode = await run_episode(model, KvStore(), task, DB, prompts=PROMPTS)
    # the toy store scores a DB answer by value: an empty list is not "9"
    assert (episode.end, episode.reward) == ("finished", 0.0)
    assert episode.messages[4]["content"] == "[]"


async def test_function_calling_episode_with_two_calls_in_one_turn() -> None:
    model = Script(
        [
            Completion(
                text="Both values.",
                tool_calls=(
                    ToolCall(id="a", name="get", arguments='{"key": "apple"}'),
                    ToolCall(id="b", name="get", arguments='{"key": "plum"}'),
                ),
                usage=Usage(20, 8, 1),
                finish_reason="tool_calls",
            ),
            Completion(text="3", usage=Usage(40, 1, 1)),
        ]
    )
    episode = await run_episode(model, KvStore(), APPLE, FC, prompts=PROMPTS)
    assert (episode.end, episode.reward) == ("finished", 1.0)
    assert roles(episode.messages) == [
        ("system", False),
        ("user", False),
        ("assistant", True),
        ("tool", False),
        ("tool", False),
        ("assistant", True),
    ]
    assert episode.messages[2] == {
        "role": "assistant",
        "content": "Both values.",
        "tool_calls": [
            {"id": "a", "name": "get", "arguments": '{"key": "apple"}'},
            {"id": "b", "name": "get", "arguments": '{"key": "plum"}'},
        ],
        "trained": True,
    }
    assert episode.messages[3] == {
        "role": "tool",
        "content": "3",
        "tool_call_id": "a",
        "name": "get",
        "trained": False,
    }
    assert episode.messages[4]["content"] == "Error: no key plum"
    assert [r.tools for r in model.requests] == [KV_TOOLS, KV_TOOLS]
    assert [r.grammar for r in model.requests] == [None, None]
    assert episode.tools == KV_TOOLS
    assert episode.usage == Usage(60, 9, 2) and episode.turns[0].usage == Usage(20, 8, 1)
    assert len(episode.turns[0].steps) == 2


# -- AgentTuning's rules ------------------------------------------------------------------
async def test_three_identical_outputs_in_a_row_fail_the_episode() -> None:
    same = os_turn("Read it.", "get apple")
    model = ScriptedModel([same, same, same, "Think: 3.\n\nAct: answer(3)"])
    episode = await run_episode(model, KvStore(), APPLE, OS, prompts=PROMPTS)
    assert (episode.end, episode.done, episode.reward) == ("repeated_output", False, 0.0)
    assert episode.detail == "the same output 3 times in a row"
    assert episode.raw == same
    assert len(episode.turns) == 2 and model.remaining() == 1
    # the third output is not in the trajectory
    assert [m["content"] for m in episode.messages if m["role"] == "assistant"] == [same, same]
    assert episode.usage.calls == 3


async def test_repeats_that_are_not_consecutive_are_allowed() -> None:
    a, b = os_turn("Read it.", "get apple"), os_turn("Other.", "get pear")
    model = ScriptedModel([a, a, b, a, a, "Think: 3.\n\nAct: answer(3)"])
    episode = await run_episode(model, KvStore(), APPLE, OS, prompts=PROMPTS)
    assert (episode.end, episode.reward, len(episode.turns)) == ("finished", 1.0, 6)
    off = EpisodeSettings(repeat_limit=None)
    model = ScriptedModel([a, a, a, "Think: 3.\n\nAct: answer(3)"])
    assert (
        await run_episode(model, KvStore(), APPLE, OS, prompts=PROMPTS, settings=off)
    ).reward == 1.0


async def test_a_malformed_action_is_mapped_to_the_closest_admissible_one_by_bleu() -> None:
    task = KvTask(
        "What is the value of pear?", {"apple": "3", "pear": "5"}, expected="5", finite=True
    )
    cut = "Think: Read pear.\n\nAct: bash\n\n```bash\nget pear"  # the block is not closed
    model = ScriptedModel([cut, "Think: 5.\n\nAct: answer(5)"])
    episode = await run_episode(model, KvStore(), task, OS, prompts=PROMPTS)
    assert (episode.end, episode.reward) == ("finished", 1.0)
    mapped = episode.turns[0]
    assert mapped.action == Action(kind="call", name="bash", text="get pear")
    assert mapped.mapped is not None
    assert mapped.mapped.reason == "the bash code block is not closed with ``` (cut off?)"
    assert mapped.mapped.score > 0 and mapped.rejected == ()
    assert model.requests[1].messages[-1]["content"] == "The output of the OS:\n\n5"
    assert episode.messages[-3] == message("assistant", cut, trained=True)  # its own text
    assert episode.usage.calls == 2  # mapped, not repaired

    rewrite = EpisodeSettings(rewrite_mapped=True)
    model = ScriptedModel([cut, "Think: 5.\n\nAct: answer(5)"])
    episode = await run_episode(model, KvStore(), task, OS, prompts=PROMPTS, settings=rewrite)
    assert episode.messages[-3] == message(
        "assistant", "Act: bash\n\n```bash\nget pear\n```", trained=True
    )


async def test_output_sharing_nothing_with_any_action_is_repaired_not_mapped() -> None:
    task = KvTask("What is the value of pear?", {"pear": "5"}, expected="5", finite=True)
    model = ScriptedModel(["Hmm.", "Think: Unsure.\n\nAct: answer(5)"])
    episode = await run_episode(model, KvStore(), task, OS, prompts=PROMPTS)
    turn = episode.turns[0]
    assert turn.mapped is None
    assert turn.rejected == (
        Rejection(
            "Hmm.", "no 'Act:' line: end the turn with one action (bash, answer(...) or finish)"
        ),
    )
    off = EpisodeSettings(map_to_admissible=False)
    cut = "Think: Read pear.\n\nAct: bash\n\n```bash\nget pear"
    model = ScriptedModel([cut, "Think: 5.\n\nAct: answer(5)"])
    episode = await run_episode(model, KvStore(), task, OS, prompts=PROMPTS, settings=off)
    assert episode.turns[0].mapped is None and len(episode.turns[0].rejected) == 1


# -- repair -------------------------------------------------------------------------------
NO_ACT = "I should read apple."
NO_ACT_REASON = "no 'Act:' line: end the turn with one action (bash, answer(...) or finish)"
OPEN = "Think: Read it.\n\nAct: bash\n\n```bash\nget apple"
OPEN_REASON = "the bash code block is not closed with ``` (cut off?)"
REPAIR = (
    "Your previous answer could not be used: {reason}.\nWrite the whole answer again, following "
    'every rule of the first message. Reply with one line "Think: ..." followed by exactly one '
    'action: "Act: bash" and one ```bash code block, "Act: answer(...)", or "Act: finish".'
)


async def test_a_malformed_action_is_repaired_and_never_enters_the_trajectory() -> None:
    good = os_turn("Read it.", "get apple")
    model = ScriptedModel([NO_ACT, OPEN, good, "Think: 3.\n\nAct: answer(3)"])
    episode = await run_episode(model, KvStore(), APPLE, OS, prompts=PROMPTS, seed=1)
    assert (episode.end, episode.reward) == ("finished", 1.0)
    assert episode.turns[0].rejected == (
        Rejection(NO_ACT, NO_ACT_REASON),
        Rejection(OPEN, OPEN_REASON),
    )
    assert episode.turns[0].usage.calls == 3
    contents = [m["content"] for m in episode.messages]
    assert NO_ACT not in contents and OPEN not in contents
    opening = list(model.requests[0].messages)
    assert list(model.requests[1].messages) == [
        *opening,
        message("assistant", NO_ACT),
        message("user", REPAIR.format(reason=NO_ACT_REASON)),
    ]
    assert list(model.requests[2].messages) == [
        *opening,
        message("assistant", NO_ACT),
        message("user", REPAIR.format(reason=NO_ACT_REASON)),
        message("assistant", OPEN),
        message("user", REPAIR.format(reason=OPEN_REASON)),
    ]
    assert [r.seed for r in model.requests[:3]] == [derive_seed(1, 0, a) for a in range(3)]
    assert len({r.seed for r in model.requests[:3]}) == 3
    # the next turn's request holds the accepted turn only
    assert list(model.requests[3].messages)[len(opening) :] == [
        message("assistant", good, trained=True),
        message("user", "The output of the OS:\n\n3", trained=False),
    ]


async def test_fresh_repairs_note_the_reason_without_showing_the_answer() -> None:
    settings = EpisodeSettings(repair_style="fresh", repair_temperature=1.0, temperature=0.2)
    model = ScriptedModel([NO_ACT, os_turn("Read.", "get apple"), "Think: 3.\n\nAct: answer(3)"])
    episode = await run_episode(model, KvStore(), APPLE, OS, prompts=PROMPTS, settings=settings)
    assert episode.reward == 1.0
    repair = list(model.requests[1].messages)
    assert len(repair) == len(model.requests[0].messages)
    assert repair[-1]["content"].endswith(
        f"\n\nNote: an earlier answer to this request could not be used: {NO_ACT_REASON}.\n"
        'Avoid that mistake and follow every rule above. Reply with one line "Think: ..." '
        'followed by exactly one action: "Act: bash" and one ```bash code block, '
        '"Act: answer(...)", or "Act: finish".'
    )
    assert [r.temperature for r in model.requests] == [0.2, 1.0, 0.2]


async def test_a_fresh_repair_that_copies_the_note_is_sent_back() -> None:
    copied = f"Think: {NO_ACT_REASON}.\n\nAct: finish"
    settings = EpisodeSettings(repair_style="fresh")
    model = ScriptedModel([NO_ACT, copied, "Think: 3.\n\nAct: answer(3)"])
    episode = await run_episode(model, KvStore(), APPLE, OS, prompts=PROMPTS, settings=settings)
    assert [r.reason for r in episode.turns[0].rejected] == [
        NO_ACT_REASON,
        "the answer repeats the note about an earlier answer instead of answering the request",
    ]


async def test_guidance_goes_to_the_model_only() -> None:
    model = ScriptedModel(["Think: 3.\n\nAct: answer(3)"])
    episode = await run_episode(
        model, KvStore(), APPLE, OS, prompts=PROMPTS, guidance="Show a careful expert."
    )
    assert list(model.requests[0].messages) == [
        message("system", "Show a careful expert."),
        *episode.messages[:1],
    ]
    assert roles(episode.messages) == [("user", False), ("assistant", True)]


async def test_repairs_are_bounded_and_the_episode_fails_with_the_reason() -> None:
    model = ScriptedModel([NO_ACT, NO_ACT, OPEN, "never asked"])
    settings = EpisodeSettings(max_repairs=2)
    episode = await run_episode(model, KvStore(), APPLE, OS, prompts=PROMPTS, settings=settings)
    assert (episode.end, episode.reward, episode.done) == ("malformed_action", 0.0, False)
    assert episode.detail == f"malformed action after 3 attempts: {OPEN_REASON}"
    assert episode.raw == OPEN and episode.turns == ()
    assert roles(episode.messages) == [("user", False)]  # the opening alone
    assert episode.usage.calls == 3 and model.remaining() == 1


async def test_a_cut_off_output_and_a_copied_placeholder_are_malformed(tmp_path: Path) -> None:
    # the shipped formats show concrete examples; a user's instructions may hold placeholders
    (tmp_path / "own_os.j2").write_text(
        '{{ example("call", "<what you run next>", "<your bash commands>") }}\n'
    )
    own = ReactOsFormat(instructions_template="own_os.j2")
    model = Script(
        [
            Completion(text="Think: Let me", finish_reason="length"),
            Completion(text=os_turn("Read.", "<your bash commands>")),
            Completion(text=os_turn("Read.", "get apple")),
            Completion(text="Think: 3.\n\nAct: answer(3)"),
        ]
    )
    prompts = PromptLibrary([tmp_path])
    episode = await run_episode(model, KvStore(), APPLE, own, prompts=prompts)
    assert [r.reason for r in episode.turns[0].rejected] == [
        "the answer was cut off at the token limit",
        "the answer contains '<your bash commands>', a placeholder of the format example: "
        "write the real content in its place",
    ]
    assert episode.reward == 1.0


async def test_reasoning_copied_from_the_formats_example_is_malformed() -> None:
    copied = "To know how many lines notes.txt has, I print only its line count."
    model = Script(
        [
            Completion(text=os_turn(copied, "get apple")),
            Completion(text=os_turn("I read the apple's count first.", "get apple")),
            Completion(text="Think: 3.\n\nAct: answer(3)"),
        ]
    )
    episode = await run_episode(model, KvStore(), APPLE, OS, prompts=PROMPTS)
    assert [r.reason for r in episode.turns[0].rejected] == [
        "the reasoning 'To know how many lines notes.txt has, I print only its line' is copied "
        "from the format's example: reason about your own task in its place"
    ]
    assert episode.reward == 1.0 and len(model.requests) == 3


# -- budgets ------------------------------------------------------------------------------
async def test_turn_budget() -> None:
    model = ScriptedModel([os_turn("a", "get apple"), os_turn("b", "get pear"), "unused"])
    settings = EpisodeSettings(max_turns=2)
    episode = await run_episode(model, KvStore(), APPLE, OS, prompts=PROMPTS, settings=settings)
    assert (episode.end, episode.detail, episode.reward) == (
        "turn_budget",
        "no end within 2 turns",
        0.0,
    )
    assert len(episode.turns) == 2 and model.remaining() == 1


async def test_token_budget_is_checked_before_each_call() -> None:
    model = Script(
        [
            Completion(text=os_turn("a", "get apple"), usage=Usage(90, 20, 1)),
            Completion(text="Think: 3.\n\nAct: answer(3)", usage=Usage(120, 5, 1)),
        ]
    )
    settings = EpisodeSettings(max_tokens=100)
    episode = await run_episode(model, KvStore(), APPLE, OS, prompts=PROMPTS, settings=settings)
    assert (episode.end, episode.detail) == ("token_budget", "110 tokens used, the budget is 100")
    assert len(model.requests) == 1 and len(episode.turns) == 1


async def test_time_budget_uses_the_given_clock() -> None:
    now = [0.0]

    def tick() -> None:
        now[0] += 6.0

    model = Script([Completion(text=os_turn(str(i), f"get k{i}")) for i in range(5)], on_call=tick)
    settings = EpisodeSettings(max_seconds=10)
    episode = await run_episode(
        model, KvStore(), APPLE, OS, prompts=PROMPTS, settings=settings, clock=lambda: now[0]
    )
    assert (episode.end, episode.detail) == ("time_budget", "12.0 s elapsed, the budget is 10 s")
    assert len(model.requests) == 2


def test_settings_and_rewards_are_checked() -> None:
    with pytest.raises(ValueError, match="max_turns must be positive or None, got 0"):
        EpisodeSettings(max_turns=0)
    with pytest.raises(ValueError, match="repeat_limit must be 2 or more, got 1"):
        EpisodeSettings(repeat_limit=1)
    with pytest.raises(ValueError, match="repair_style must be one of show, fresh, got 'loud'"):
        EpisodeSettings(repair_style="loud")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"reward must be in \[0, 1\], got 1.5"):
        StepResult(reward=1.5)


# -- failures and seeds -------------------------------------------------------------------
async def test_environment_and_model_failures_end_the_episode() -> None:
    model = Script([Completion(text=os_turn("a", "get apple"), usage=Usage(10, 2, 1))])
    env = KvStore(fail_on="get apple")
    episode = await run_episode(model, env, APPLE, OS, prompts=PROMPTS)
    assert (episode.end, episode.detail, episode.raw) == (
        "environment_error",
        "the store crashed",
        "get apple",
    )
    assert episode.usage == Usage(13, 6, 2)  # the environment's calls are counted
    assert len(episode.turns) == 1 and episode.turns[0].steps == ()

    exhausted = ScriptedModel([os_turn("a", "get apple")])
    episode = await run_episode(exhausted, KvStore(), APPLE, OS, prompts=PROMPTS)
    assert episode.end == "model_error"
    assert episode.detail == "model error: no scripted answer left for call 2"
    assert len(episode.turns) == 1


async def test_a_fatal_model_error_is_not_swallowed() -> None:
    def refuse(messages: object) -> str:
        raise FatalModelError("wrong API key")

    with pytest.raises(FatalModelError, match="wrong API key"):
        await run_episode(ScriptedModel(refuse), KvStore(), APPLE, OS, prompts=PROMPTS)


async def test_a_rerun_with_the_same_seed_is_answered_by_the_cache(tmp_path: Path) -> None:
    answers = [os_turn("Read it.", "get apple"), "Think: 3.\n\nAct: answer(3)"]
    cache = ResponseCache(tmp_path / "cache.sqlite")
    first = await run_episode(
        CachedModel(ScriptedModel(answers), cache), KvStore(), APPLE, OS, prompts=PROMPTS, seed=11
    )
    replay = CachedModel(ScriptedModel([]), cache)
    again = await run_episode(replay, KvStore(), APPLE, OS, prompts=PROMPTS, seed=11)
    assert (replay.hits, replay.misses) == (2, 0)
    assert again.messages == first.messages and again.reward == 1.0
    cache.close()
