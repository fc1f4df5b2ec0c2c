"""The OS environment: task validation, each evaluation kind (pass and fail), the state
kept between commands (files, modes, times, current directory, variables), commands that
fail or are stopped, init failures, the self-check that drops tasks whose reference
disagrees with their evaluation, and whole episodes in AgentBench's ReAct OS format with a
scripted model. Every command runs in the sandbox; the tests skip when no isolation works
here (as tests/test_sandbox.py does)."""

from __future__ import annotations

from typing import Any

import pytest

from genteach import ScriptedModel
from genteach.prompts import PromptLibrary
from genteach.runtime import Action, EnvironmentFailure, EpisodeSettings, run_episode
from genteach.runtime.formats.react import ReactOsFormat
from genteach.runtime.os_env import OsCheck, OsEnvironment, OsTask, self_check, size_bytes
from genteach.runtime.sandbox import Sandbox, SandboxLimits, SandboxUnavailable

PROMPTS = PromptLibrary()
FMT = ReactOsFormat()
LIMITS = SandboxLimits(cpu_seconds=5, memory_mb=512, wall_seconds=10, output_bytes=2_000_000)


def _no_sandbox() -> str | None:
    try:
        Sandbox.probe()
    except SandboxUnavailable as exc:
        return str(exc)
    return None


needs_sandbox = pytest.mark.skipif(_no_sandbox() is not None, reason=str(_no_sandbox()))


def bash(script: str, thought: str = "") -> Action:
    return Action(kind="call", name="bash", text=script, thought=thought)


def answer(text: str) -> Action:
    return Action(kind="answer", text=text)


def task(**fields: Any) -> OsTask:
    return OsTask(**{"description": "Do it.", "evaluation": "match", "expected": "x", **fields})


@pytest.fixture
def env() -> OsEnvironment:
    return OsEnvironment(PROMPTS, sandbox=Sandbox(LIMITS))


# -- tasks and sizes (no sandbox) ------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"description": " "}, "OsTask.description is empty"),
        ({"evaluation": "exact"}, "OsTask.evaluation must be one of match, regex, checks"),
        ({"expected": None}, "takes its expected value from the reference, but the task has no"),
        ({"evaluation": "regex", "expected": None}, "a regex evaluation needs a pattern"),
        ({"evaluation": "regex", "expected": None, "pattern": "("}, "not a regular expression"),
        ({"pattern": "x+"}, "a match evaluation takes no pattern"),
        ({"evaluation": "checks", "expected": None}, "a checks evaluation needs at least one"),
        ({"checks": (OsCheck("string", "x"),)}, "a match evaluation takes no checks"),
        (
            {"evaluation": "checks", "checks": (OsCheck("string", "x"),)},
            "a checks evaluation takes no expected answer",
        ),
        (
            {"evaluation": "checks", "expected": None, "checks": (OsCheck("integer"),)},
            "no reference solution",
        ),
    ],
)
def test_invalid_tasks_are_refused(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        task(**fields)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"kind": "count"}, "OsCheck.kind must be one of integer, string, size, contains, script"),
        ({"kind": "script"}, "a script check needs its bash script"),
        ({"kind": "string", "script": "true"}, "a string check takes no script"),
        ({"kind": "integer", "expected": "3.5"}, "an integer check expects an integer, got '3.5'"),
        ({"kind": "size", "expected": "big"}, "a size check expects a size"),
    ],
)
def test_invalid_checks_are_refused(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        OsCheck(**fields)


def test_what_needs_the_reference() -> None:
    assert task(expected=None, reference="echo x").needs_reference
    assert not task().needs_reference
    script_only = task(
        evaluation="checks", expected=None, checks=[OsCheck("script", script="test -f a")]
    )
    assert not script_only.needs_reference and script_only.checks == (
        OsCheck("script", script="test -f a"),
    )


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        (" 4K ", 4096),
        ("4.0K", 4096),
        ("1.5 MB", 1.5 * 1024**2),
        ("12KiB", 12 * 1024),
        ("2G", 2 * 1024**3),
        ("7 bytes", 7),
        ("10B", 10),
        ("big", None),
        ("4 parsecs", None),
        ("", None),
        ("-4K", None),
    ],
)
def test_sizes_as_people_and_tools_write_them(text: str, size: float | None) -> None:
    assert size_bytes(text) == size


# -- evaluations --------------------------------------------------------------------------
NOTES = "printf 'alpha\\nbeta\\ngamma\\n' > notes.txt; head -c 2048 /dev/zero > blob.bin"


@needs_sandbox
@pytest.mark.parametrize(
    ("fields", "given", "passed", "detail"),
    [
        ({"expected": "  Paris "}, " Paris\n", True, "the answer is 'Paris'"),
        ({"expected": "Paris"}, "paris", False, "the answer 'paris' is not 'Paris'"),
        ({"expected": None, "reference": "wc -l < notes.txt"}, "3", True, "the answer is '3'"),
        ({"expected": None, "reference": "wc -l < notes.txt"}, "4", False, "is not '3'"),
        (
            {"evaluation": "regex", "expected": None, "pattern": r"gamma|beta"},
            "beta",
            True,
            "matches",
        ),
        (
            {"evaluation": "regex", "expected": None, "pattern": r"\d+"},
            "12 and 13",
            False,
            r"the answer '12 and 13' does not match '\\d+'",
        ),
    ],
)
async def test_match_and_regex(
    env: OsEnvironment, fields: dict[str, Any], given: str, passed: bool, detail: str
) -> None:
    await env.reset(task(init=NOTES, **fields))
    result = await env.step(answer(given))
    assert result.done and result.reward == (1.0 if passed else 0.0)
    assert result.info["passed"] is passed and detail in result.info["detail"]


CHECK_CASES = [
    (OsCheck("integer", "3"), " 3\n", True, "3 = 3"),
    (OsCheck("integer"), "3", True, "3 = 3"),  # expected: the reference's output
    (OsCheck("integer", "3"), "three", False, "the answer 'three' is not an integer"),
    (OsCheck("integer", "3"), "4", False, "4 != 3"),
    (OsCheck("string", "beta"), "beta ", True, "the answer 'beta' is 'beta'"),
    (OsCheck("string", "beta"), "Beta", False, "the answer 'Beta' is not 'beta'"),
    (OsCheck("size", "2048"), "2.0K", True, "'2.0K' is '2048' in bytes"),
    (OsCheck("size", "2K"), "2049", False, "'2049' is not '2K' in bytes"),
    (OsCheck("size", "2K"), "large", False, "the answer 'large' is not a size"),
    (OsCheck("contains", "beta"), "alpha beta gamma", True, "the answer contains 'beta'"),
    (OsCheck("contains", "delta"), "alpha beta", False, "the answer lacks 'delta'"),
    (
        OsCheck("script", script='[ "$1" = "$(sed -n 2p notes.txt)" ]'),
        "beta",
        True,
        "the check script passed",
    ),
    (
        OsCheck("script", script='echo "want $(sed -n 2p notes.txt), got $1"; exit 1'),
        "gamma",
        False,
        "the check script exited with status 1: want beta, got gamma",
    ),
    (  # a script check receives the reference's output as $2
        OsCheck("script", script='[ "$1" -eq "$2" ]'),
        "3",
        True,
        "the check script passed",
    ),
]


@needs_sandbox
@pytest.mark.parametrize(("check", "given", "passed", "detail"), CHECK_CASES)
async def test_each_stock_check(
    env: OsEnvironment, check: OsCheck, given: str, passed: bool, detail: str
) -> None:
    t = OsTask(
        description="How many lines does notes.txt have?",
        evaluation="checks",
        init=NOTES,
        checks=(check,),
        reference="wc -l < notes.txt",
    )
    await env.reset(t)
    assert await env.evaluate(given) == (
        passed,
        detail if passed else f"check 1 ({check.kind}) failed: {detail}",
    )


@needs_sandbox
async def test_checks_all_must_pass_and_the_first_failure_is_named(env: OsEnvironment) -> None:
    t = OsTask(
        description="Which line of notes.txt starts with b?",
        evaluation="checks",
        init=NOTES,
        checks=(OsCheck("contains", "bet"), OsCheck("string", "beta")),
    )
    await env.reset(t)
    assert await env.evaluate("beta") == (
        True,
        "the answer contains 'bet'; the answer 'beta' is 'beta'",
    )
    assert await env.evaluate("betamax") == (
        False,
        "check 2 (string) failed: the answer 'betamax' is not 'beta'",
    )


@needs_sandbox
async def test_the_reference_sees_the_files_as_init_left_them(env: OsEnvironment) -> None:
    t = task(init=NOTES, expected=None, reference="wc -l < notes.txt")
    await env.reset(t)
    await env.step(bash("echo delta >> notes.txt"))  # the agent's change does not move the key
    result = await env.step(answer("3"))
    assert result.reward == 1.0
    assert (await env.reference_run()).output == "3\n"


@needs_sandbox
async def test_a_failing_reference_is_an_environment_failure(env: OsEnvironment) -> None:
    await env.reset(task(expected=None, reference="cat missing.txt"))
    with pytest.raises(EnvironmentFailure, match="the reference solution exited with status 1"):
        await env.step(answer("3"))


async def test_finish_answers_empty_and_fail_gives_up() -> None:
    env = OsEnvironment(PROMPTS, sandbox=Sandbox(LIMITS, isolation="none"))  # runs nothing
    await env.reset(task(expected=""))
    done = await env.step(Action(kind="finish"))
    assert (done.reward, done.info["answer"], done.info["detail"]) == (1.0, "", "the answer is ''")
    gave_up = await env.step(Action(kind="fail", text="no such file"))
    assert (gave_up.reward, gave_up.info["detail"]) == (0.0, "the agent gave up: no such file")
    unknown = await env.step(Action(kind="call", name="sql", text="SELECT 1"))
    assert unknown.error and not unknown.done
    assert unknown.observation == "'sql' is not a command; run bash code, answer, or finish"
    with pytest.raises(ValueError, match="cannot step a tool_calls action"):
        await env.step(Action(kind="tool_calls"))
    with pytest.raises(RuntimeError, match="before reset"):
        await OsEnvironment(PROMPTS, sandbox=env.sandbox).step(answer("x"))
    assert env.admissible_actions() is None


# -- commands and their state ---------------------------------------------------------------
@needs_sandbox
async def test_state_persists_between_commands(env: OsEnvironment) -> None:
    init = (
        "mkdir -p logs/old && printf 'a\\nb\\n' > logs/app.log && touch -d 2020-01-02 logs/old/x"
        " && chmod 000 logs/app.log && chmod 311 logs/old && export STAGE=init && cd logs"
    )
    first = await env.reset(task(init=init))
    assert first.text == "Do it."
    assert first.system.startswith("About this machine: the shell starts in /sandbox (also $HOME)")
    assert "longer than 10 seconds is stopped" in first.system
    r = await env.step(bash('pwd; echo "$STAGE"; stat -c "%a %n" app.log old'))
    assert r.observation == "/sandbox/logs\ninit\n0 app.log\n311 old"
    assert r.info == {"exit_code": 0, "stopped": ""}
    await env.step(bash("mkdir -p ../work/deep && cd ../work/deep && n=41 && words=$'two\\nlines'"))
    r = await env.step(
        bash('pwd; echo $((n + 1)); echo "$words"; stat -c %y ../../logs/old/x | cut -c1-10')
    )
    assert r.observation == "/sandbox/work/deep\n42\ntwo\nlines\n2020-01-02"
    r = await env.step(bash("cd ~ && ls -A && ls -A logs"))  # only the task's files
    assert r.observation == "logs\nwork\napp.log\nold"


@needs_sandbox
async def test_exit_status_stderr_and_exec(env: OsEnvironment) -> None:
    await env.reset(task())
    r = await env.step(bash("echo out; echo err >&2; echo more; exit 3"))
    assert r.observation == "[The command exited with status 3.]\nout\nerr\nmore"
    assert r.info == {"exit_code": 3, "stopped": ""} and not r.error
    r = await env.step(bash("touch kept; false"))
    assert r.observation == "[The command exited with status 1.]"
    r = await env.step(bash("touch lost; exec true"))
    assert r.observation.startswith("[The command was stopped: the shell ended without saving")
    assert r.info["exit_code"] is None
    assert (await env.step(bash("ls"))).observation == "kept"
    assert [c.exit_code for c in env.commands] == [3, 1, None, 0]
    assert (await env.step(bash("true"))).observation == ""


@needs_sandbox
async def test_errors_read_as_a_plain_shells(env: OsEnvironment) -> None:
    # the wrapper's name and line numbers once leaked ("main.sh: eval: line 68: ..."), and a
    # small model then edited main.sh, a script it never wrote
    await env.reset(task())
    r = await env.step(bash("echo ok\ncd nowhere"))
    assert r.observation == (
        "[The command exited with status 1.]\nok\nbash: line 2: cd: nowhere: No such file or "
        "directory"
    )
    r = await env.step(bash("if true; then; fi"))
    assert r.observation == (
        "[The command exited with status 2.]\nbash: eval: line 1: syntax error near unexpected "
        "token `;'\nbash: eval: line 1: `if true; then; fi'"
    )  # the command alone, nothing of the wrapper's code
    r = await env.step(bash("ls -A; echo $0; ls /proc/self/fd"))
    assert r.observation == "bash\n0\n1\n2\n3"  # no wrapper file or descriptor is left


@needs_sandbox
async def test_a_stopped_command_keeps_nothing() -> None:
    quick = OsEnvironment(
        PROMPTS, sandbox=Sandbox(SandboxLimits(wall_seconds=1, output_bytes=200_000))
    )
    await quick.reset(task(init="echo one > a.txt"))
    r = await quick.step(bash("echo two > a.txt; echo started; sleep 5"))
    assert r.observation == (
        "[The command was stopped: it ran past the 1-second limit. Its changes to the files "
        "were not kept.]\nstarted"
    )
    r = await quick.step(bash("head -c 300000 /dev/zero | tr '\\0' x; rm a.txt"))
    assert r.info["stopped"] == "its output and files passed 200000 bytes"
    assert (await quick.step(bash("cat a.txt"))).observation == "one"


@needs_sandbox
async def test_a_failing_init_is_an_environment_failure(env: OsEnvironment) -> None:
    with pytest.raises(EnvironmentFailure, match="os task: init exited with status 2") as exc:
        await env.reset(task(init="echo setting up; ls nowhere"))
    assert exc.value.raw.startswith("setting up\nls: cannot access 'nowhere'")
    episode = await run_episode(ScriptedModel([]), env, task(init="exit 2"), FMT, prompts=PROMPTS)
    assert (episode.end, episode.detail, episode.messages) == (
        "environment_error",
        "os task: init exited with status 2",
        (),
    )


@needs_sandbox
async def test_close_forgets_the_task(env: OsEnvironment) -> None:
    await env.reset(task(init="touch a"))
    await env.close()
    assert env.task is None
    await env.reset(task())
    assert (await env.step(bash("ls"))).observation == ""  # a fresh directory


def test_templates_render() -> None:
    env = OsEnvironment(PROMPTS, sandbox=Sandbox(LIMITS, isolation="none"))
    assert env.templates() == ["runtime/os/system.j2", "runtime/os/output.j2"]
    for name in env.templates():
        PROMPTS.check(name)
    assert PROMPTS.render("runtime/os/output.j2", output="x", exit_code=0, stopped="") == "x"
    assert OsEnvironment(PROMPTS, sandbox=env.sandbox, system_template=None).templates() == [
        "runtime/os/output.j2"
    ]


# -- the self-check -----------------------------------------------------------------------
COUNT = OsTask(
    description="How many files are in the folder logs?",
    evaluation="checks",
    init="mkdir logs && for i in 1 2 3 4 5; do echo $i > logs/f$i.log; done",
    checks=(OsCheck("integer"),),
    reference="ls -1 logs | wc -l",
)


@needs_sandbox
@pytest.mark.parametrize(
    ("t", "reason"),
    [
        (COUNT, None),
        (
            OsTask(
                description="Make run.sh executable.",
                evaluation="checks",
                init="echo 'echo hi' > run.sh",
                checks=(OsCheck("script", script="[ -x run.sh ]"),),
                reference="chmod +x run.sh",
            ),
            None,
        ),
        (
            OsTask(**{**COUNT.__dict__, "reference": "", "checks": (OsCheck("integer", "5"),)}),
            "the task has no reference solution",
        ),
        (
            OsTask(**{**COUNT.__dict__, "init": "exit 1"}),
            "init exited with status 1",
        ),
        (
            OsTask(**{**COUNT.__dict__, "reference": "ls -1 nowhere | wc -l; exit 2"}),
            "the reference solution exited with status 2",
        ),
        (
            OsTask(**{**COUNT.__dict__, "reference": "ls -1 logs"}),
            "the reference's own answer fails the evaluation: check 1 (integer) failed: the "
            "answer 'f1.log\\nf2.log",
        ),
        (
            OsTask(**{**COUNT.__dict__, "checks": (OsCheck("integer", "6"),)}),
            "the reference's own answer fails the evaluation: check 1 (integer) failed: 5 != 6",
        ),
        (
            OsTask(
                description="Create the folder out.",
                evaluation="checks",
                init="mkdir out",
                checks=(OsCheck("script", script="[ -d out ]"),),
                reference="mkdir -p out",
            ),
            "the evaluation passes with no action and an empty answer (the check script passed)",
        ),
        (
            OsTask(
                description="Print a random number.",
                evaluation="match",
                reference="echo $RANDOM$RANDOM$RANDOM",
            ),
            "the reference's own answer fails the evaluation: the answer",
        ),
    ],
)
async def test_self_check_drops_tasks_whose_reference_disagrees(
    t: OsTask, reason: str | None
) -> None:
    got = await self_check(t, sandbox=Sandbox(LIMITS))
    if reason is None:
        assert got is None
    else:
        assert got is not None and got.startswith(reason)


# -- whole episodes ------------------------------------------------------------------------
COUNT_TURNS = [
    "Think: I list the folder first.\n\nAct: bash\n\n```bash\nls -l logs\n```",
    "Think: Counting is clearer.\n\nAct: bash\n\n```bash\nls -1 logs | wc -l\n```",
]


@needs_sandbox
@pytest.mark.parametrize(("given", "reward"), [("5", 1.0), ("6", 0.0)])
async def test_an_episode_with_the_react_os_format(
    env: OsEnvironment, given: str, reward: float
) -> None:
    model = ScriptedModel(
        [*COUNT_TURNS, f"Think: The output is the count.\n\nAct: answer({given})"]
    )
    episode = await run_episode(model, env, COUNT, FMT, prompts=PROMPTS)
    assert (episode.end, episode.reward, episode.done) == ("finished", reward, True)
    roles = [m["role"] for m in episode.messages]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert episode.trained == [False, True, False, True, False, True]
    opening = episode.messages[0]["content"]
    assert opening.startswith("About this machine: the shell starts in /sandbox")
    assert opening.endswith("The task is:\n\nHow many files are in the folder logs?")
    assert episode.messages[2]["content"].startswith("The output of the OS:\n\ntotal 20\n")
    assert episode.messages[4]["content"] == "The output of the OS:\n\n5"
    final = episode.turns[-1].steps[-1].result
    detail = "5 = 5" if reward else "check 1 (integer) failed: 6 != 5"
    assert final.info == {"passed": bool(reward), "detail": detail, "answer": given}


@needs_sandbox
async def test_finish_on_a_task_checked_by_a_script(env: OsEnvironment) -> None:
    t = OsTask(
        description="Move every .log file of the folder in into the folder archive.",
        evaluation="checks",
        init="mkdir in && touch in/a.log in/b.log in/keep.txt",
        checks=(
            OsCheck(
                "script",
                script='[ -f archive/a.log ] && [ -f archive/b.log ] && [ -z "$(ls in/*.log)" ]'
                " && [ -f in/keep.txt ]",
            ),
        ),
        reference="mkdir -p archive && mv in/*.log archive/",
    )
    assert await self_check(t, sandbox=env.sandbox) is None
    model = ScriptedModel(
        [
            "Think: I make the folder.\n\nAct: bash\n\n```bash\nmkdir archive\n```",
            "Think: Now I move the logs.\n\nAct: bash\n\n```bash\ncd in\nmv *.log ../archive\n```",
            "Think: Both files are moved.\n\nAct: finish",
        ]
    )
    episode = await run_episode(model, env, t, FMT, prompts=PROMPTS)
    assert (episode.end, episode.reward) == ("finished", 1.0)
    assert episode.messages[2]["content"] == "The output of the OS is empty."
    assert episode.turns[-1].steps[-1].result.info["detail"] == "the check script passed"
    premature = ScriptedModel(["Think: Done already.\n\nAct: finish"])
    failed = await run_episode(premature, env, t, FMT, prompts=PROMPTS)
    assert (failed.end, failed.reward) == ("finished", 0.0)
    assert (
        failed.turns[-1]
        .steps[-1]
        .result.info["detail"]
        .startswith("check 1 (script) failed: the check script exited with status")
    )


@needs_sandbox
async def test_long_output_is_cut_at_800_characters(env: OsEnvironment) -> None:
    model = ScriptedModel(
        [
            "Think: Print it all.\n\nAct: bash\n\n```bash\nhead -c 1000 /dev/zero | tr '\\0' a\n```",
            "Think: Short now.\n\nAct: bash\n\n```bash\nhead -c 800 /dev/zero | tr '\\0' b\n```",
            "Think: Enough.\n\nAct: answer(x)",
        ]
    )
    episode = await run_episode(
        model, env, task(), FMT, prompts=PROMPTS, settings=EpisodeSettings(max_turns=3)
    )
    assert episode.turns[0].steps[0].result.observation == "a" * 1000  # the environment's text
    assert episode.messages[2]["content"] == (
        "The output of the OS:\n\n"
        + "a" * 780
        + "\n\n[output cut here: it was longer than 800 characters]"
    )
    assert episode.messages[4]["content"] == "The output of the OS:\n\n" + "b" * 800
    assert episode.reward == 1.0
