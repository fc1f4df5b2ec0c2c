"""The operating-system environment of AgentTuning's OS tasks (AgentBench's
``os_interaction``): a shell in the sandbox, a fresh working directory per task set up by
the task's ``init`` script, and an evaluation of the answer by exact match, regex, or
stock checks whose expected value may come from a reference solution.

Each command runs in a fresh sandbox (:class:`~genteach.runtime.sandbox.Sandbox`, with its
limits), which keeps nothing between runs. The environment carries the task's state from
one command to the next itself: at the end of each command a small wrapper script packs
the working directory (a gzipped tar, file modes and times kept), the current directory
and the shell variables the command set, and writes them after the command's output; the
next command starts by unpacking them. Nothing runs outside the sandbox.

Example::

    env = OsEnvironment(PromptLibrary())
    task = OsTask(
        description="How many lines does notes.txt have?",
        init="printf 'a\\nb\\nc\\n' > notes.txt",
        evaluation="checks",
        checks=(OsCheck("integer"),),
        reference="wc -l < notes.txt",
    )
    first = await env.reset(task)
    await env.step(Action(kind="call", name="bash", text="wc -l notes.txt"))
    result = await env.step(Action(kind="answer", text="3"))
    assert result.reward == 1.0
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from genteach.prompts import PromptLibrary
from genteach.runtime.base import Action, EnvironmentFailure, Observation, StepResult
from genteach.runtime.sandbox import (
    WORKDIR,
    ExecutionResult,
    Sandbox,
    SandboxLimits,
    SandboxUnavailable,
)

#: How an answer is judged: ``match`` (equal to the expected answer after stripping),
#: ``regex`` (the stripped answer matches the pattern as a whole) or ``checks`` (every
#: check of :attr:`OsTask.checks` passes).
EvaluationKind = Literal["match", "regex", "checks"]
#: AgentBench's stock checks: ``integer`` (the answer is that integer), ``string`` (equal
#: after stripping), ``size`` (the same number of bytes; units such as ``4K`` or ``1.5M``
#: allowed on both sides), ``contains`` (the answer contains the expected text) and
#: ``script`` (a bash script run on the final working directory; exit status 0 passes).
CheckKind = Literal["integer", "string", "size", "contains", "script"]

EVALUATIONS: tuple[str, ...] = ("match", "regex", "checks")
CHECKS: tuple[str, ...] = ("integer", "string", "size", "contains", "script")
SYSTEM_TEMPLATE = "runtime/os/system.j2"
OUTPUT_TEMPLATE = "runtime/os/output.j2"
#: The environment's default limits: the sandbox's, with room in the output for the
#: working directory's archive, which travels back after each command's own output.
OS_LIMITS = SandboxLimits(output_bytes=4_000_000)

_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*)")
_UNITS = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    **{f"{p}{s}": 1024 ** (i + 1) for i, p in enumerate("kmgtp") for s in ("", "b", "ib")},
}


@dataclass(frozen=True)
class OsCheck:
    """One stock check of an answer.

    Attributes:
        kind: see :data:`CheckKind`.
        expected: the expected value; ``None`` takes the reference solution's output
            (stripped). A ``script`` check receives it as ``$2``.
        script: the bash check of a ``script`` check, run in the sandbox in the working
            directory as the episode left it, with the answer as ``$1``.
    """

    kind: CheckKind
    expected: str | None = None
    script: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CHECKS:
            raise ValueError(f"OsCheck.kind must be one of {', '.join(CHECKS)}, got {self.kind!r}")
        if self.kind == "script" and not self.script.strip():
            raise ValueError("a script check needs its bash script")
        if self.kind != "script" and self.script:
            raise ValueError(f"a {self.kind} check takes no script")
        if self.expected is not None and self.kind == "integer" and _integer(self.expected) is None:
            raise ValueError(f"an integer check expects an integer, got {self.expected!r}")
        if self.expected is not None and self.kind == "size" and size_bytes(self.expected) is None:
            raise ValueError(
                f"a size check expects a size such as 4096 or 4K, got {self.expected!r}"
            )


@dataclass(frozen=True)
class OsTask:
    """One OS task: what the agent reads, how its files are set up, how it is judged.

    Attributes:
        description: the task as the agent reads it.
        evaluation: see :data:`EvaluationKind`.
        init: a bash script that sets up the fresh working directory (and may leave a
            current directory or variables for the agent, as in one shell); ``""``: none.
        expected: the answer of a ``match`` evaluation; ``None`` takes the reference
            solution's output.
        pattern: the regular expression of a ``regex`` evaluation (Python syntax).
        checks: the checks of a ``checks`` evaluation; all must pass.
        reference: a bash solution. It runs on the working directory as ``init`` left
            it; its stdout (stripped) is the expected value wherever one is ``None``, and
            :func:`self_check` requires that its own answer passes.
    """

    description: str
    evaluation: EvaluationKind
    init: str = ""
    expected: str | None = None
    pattern: str = ""
    checks: tuple[OsCheck, ...] = ()
    reference: str = ""

    def __post_init__(self) -> None:
        if not self.description.strip():
            raise ValueError("OsTask.description is empty")
        if self.evaluation not in EVALUATIONS:
            raise ValueError(
                f"OsTask.evaluation must be one of {', '.join(EVALUATIONS)}, "
                f"got {self.evaluation!r}"
            )
        object.__setattr__(self, "checks", tuple(self.checks))
        if self.evaluation == "regex":
            if not self.pattern:
                raise ValueError("a regex evaluation needs a pattern")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"OsTask.pattern is not a regular expression: {exc}") from exc
        elif self.pattern:
            raise ValueError(f"a {self.evaluation} evaluation takes no pattern")
        if self.evaluation == "checks" and not self.checks:
            raise ValueError("a checks evaluation needs at least one check")
        if self.evaluation != "checks" and self.checks:
            raise ValueError(f"a {self.evaluation} evaluation takes no checks")
        if self.evaluation != "match" and self.expected is not None:
            raise ValueError(
                f"a {self.evaluation} evaluation takes no expected answer (checks carry theirs)"
            )
        if self.needs_reference and not self.reference.strip():
            raise ValueError(
                "the evaluation takes its expected value from the reference, but the task has "
                "no reference solution"
            )

    @property
    def needs_reference(self) -> bool:
        """Some expected value is the reference solution's output."""
        if self.evaluation == "match":
            return self.expected is None
        return any(c.expected is None and c.kind != "script" for c in self.checks)


def size_bytes(text: str) -> float | None:
    """A size as ``ls``, ``du`` or a person writes it (``4096``, ``4K``, ``1.5 MB``,
    ``12KiB``; powers of 1024) in bytes; ``None`` when it is not one."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        return None
    unit = _UNITS.get(m.group("unit").lower())
    return None if unit is None else float(m.group("number")) * unit


def _integer(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class CommandRun:
    """One command run in the task's working directory.

    Attributes:
        output: what it wrote (stdout and stderr together, in order).
        exit_code: its exit status; ``None`` when it was stopped.
        stopped: why it was stopped (a limit of the sandbox, or its state could not be
            read back: e.g. it replaced the shell with ``exec``); ``""`` when it ended by
            itself. A stopped command's changes to the files are not kept.
    """

    output: str
    exit_code: int | None
    stopped: str = ""

    @property
    def ok(self) -> bool:
        """It ended by itself with status 0."""
        return self.exit_code == 0 and not self.stopped


@dataclass(frozen=True)
class _State:
    """The task's state between commands: the working directory as a base64 gzipped tar,
    the ``chmod`` lines that restore modes the archive could not hold, and the shell's
    current directory and variables as bash lines."""

    archive: str = ""
    modes: str = ""
    shell: str = ""


# The wrapper around each command, sourced by _MAIN (a script named bash) in the sandbox's
# working directory. In: .gt-state (the archive), .gt-modes, .gt-shell, .gt-cmd (left open
# as fd 3 for _MAIN, which closes it for the command). It removes its own files before the
# command runs, so the command sees only the task's files. Out, after the
# command's output: a marker line with the exit status, then the modes, the shell lines
# and the archive (each base64 on one line), then the end marker.
_WRAPPER = r"""_gt_root=$PWD
_gt_mark=@MARK@
/usr/bin/rm -f -- "${BASH_SOURCE[1]}" .gt-wrap
_gt_before=$(declare -p)
if [ -s .gt-state ]; then
  /usr/bin/base64 -d .gt-state | /usr/bin/tar -xzpf - -C "$_gt_root" || exit 97
fi
. ./.gt-modes 2>/dev/null
exec 3<.gt-cmd
_gt_shell=$(/usr/bin/cat .gt-shell)
/usr/bin/rm -f -- .gt-state .gt-modes .gt-shell .gt-cmd
@SHELL@
_gt_save() {
  _gt_status=$?
  set +eu +o pipefail 2>/dev/null
  exec 2>/dev/null
  _gt_cwd=$PWD
  _gt_after=$(declare -p)
  builtin cd -- "$_gt_root" || return
  _gt_fix=$(for _gt_i in 1 2 3 4 5 6 7 8 9 10; do
    /usr/bin/find . \( -type d ! -perm -u=rx -o ! -type d ! -type l ! -perm -u=r \) -print0 |
      { _gt_none=1
        while IFS= read -r -d '' _gt_p; do
          _gt_none=0
          printf 'chmod %s -- %q\n' "$(/usr/bin/stat -c %a -- "$_gt_p")" "$_gt_p"
          /usr/bin/chmod u+rx -- "$_gt_p"
        done
        exit $_gt_none; } || break
  done | /usr/bin/tac)
  _gt_shell=""
  case $_gt_cwd in
    "$_gt_root") ;;
    "$_gt_root"/*)
      _gt_rel=$(printf %q "${_gt_cwd#"$_gt_root"/}")
      _gt_shell+="builtin cd -- \"\$_gt_root\"/$_gt_rel"$'\n' ;;
    *) _gt_shell+="builtin cd -- $(printf %q "$_gt_cwd")"$'\n' ;;
  esac
  declare -A _gt_seen=()
  _gt_rest=$_gt_before
  while [ -n "$_gt_rest" ]; do
    _gt_seen[${_gt_rest%%$'\n'*}]=1
    case $_gt_rest in *$'\n'*) _gt_rest=${_gt_rest#*$'\n'} ;; *) _gt_rest= ;; esac
  done
  _gt_rest=$_gt_after
  while [ -n "$_gt_rest" ]; do
    _gt_l=${_gt_rest%%$'\n'*}
    case $_gt_rest in *$'\n'*) _gt_rest=${_gt_rest#*$'\n'} ;; *) _gt_rest= ;; esac
    [ -n "${_gt_seen[$_gt_l]-}" ] && continue
    _gt_n=${_gt_l#declare -* }
    _gt_n=${_gt_n%%=*}
    case $_gt_n in
      _gt_*|BASH*|FUNCNAME|PIPESTATUS|GROUPS|DIRSTACK|RANDOM|SRANDOM|SECONDS|LINENO) continue ;;
      EPOCH*|PPID|UID|EUID|SHELLOPTS|SHLVL|PWD|OLDPWD|_|HISTCMD|COMP_*|OPTIND|OPTERR) continue ;;
    esac
    _gt_shell+="$_gt_l"$'\n'
  done
  printf '\n%s:%s\n' "$_gt_mark" "$_gt_status"
  printf '%s' "$_gt_fix" | /usr/bin/base64 -w0; echo
  printf '%s' "$_gt_shell" | /usr/bin/base64 -w0; echo
  /usr/bin/tar -cf - . | /usr/bin/gzip -1 | /usr/bin/base64 -w0; echo
  printf '%s:end\n' "$_gt_mark"
}
trap _gt_save EXIT
exec 2>&1 </dev/null
"""
# The command runs on the first line of a script named bash, read from the file descriptor
# the wrapper opened, so its errors read as a plain shell's ("bash: line 1: cd: logs: No such
# file or directory", a syntax error quoting the command alone), not as a wrapper's, whose
# name, line numbers and code misled a model into editing a script it never wrote.
_MAIN = '. ./.gt-wrap; eval "$(/usr/bin/cat <&3)" 3<&-\n'
_RESTORE_SHELL = 'eval "$_gt_shell" 2>/dev/null'


class OsEnvironment:
    """A shell over a fresh working directory per task, in the sandbox.

    ``reset`` runs the task's ``init`` in a fresh directory (a failing ``init`` raises
    :class:`EnvironmentFailure`) and shows the description. A ``bash`` call
    (``Action(kind="call", name="bash", text=<script>)``) runs the script where the last
    one left off (files, current directory, shell variables) and returns its output,
    stdout and stderr together, with a first line when it exited non-zero or was stopped;
    the action format shows it ("The output of the OS:", cut at 800 characters in
    :class:`~genteach.runtime.ReactOsFormat`). ``answer``, ``finish`` (answer ``""``) and
    ``fail`` end the episode with reward 1.0 when the evaluation passes, else 0.0, and the
    reason in ``info["detail"]``.

    Args:
        prompts: renders the context and the command results.
        sandbox: where every command runs (default: a :class:`Sandbox` with
            :data:`OS_LIMITS`). Its ``output_bytes`` bounds a command's output plus the
            packed working directory.
        system_template: the context before the format's instructions; ``None``: none.
        output_template: a command's result (its output and status).

    Raises:
        SandboxUnavailable: no sandbox is given and none works here.
    """

    def __init__(
        self,
        prompts: PromptLibrary,
        *,
        sandbox: Sandbox | None = None,
        system_template: str | None = SYSTEM_TEMPLATE,
        output_template: str = OUTPUT_TEMPLATE,
    ) -> None:
        self.prompts = prompts
        self.sandbox = sandbox or Sandbox(OS_LIMITS)
        self.system_template = system_template
        self.output_template = output_template
        self.task: OsTask | None = None
        self.commands: list[CommandRun] = []
        self._start = _State()
        self._state = _State()
        self._reference: CommandRun | None = None

    def templates(self) -> list[str]:
        """Every template this environment renders."""
        own = [self.output_template]
        return own if self.system_template is None else [self.system_template, *own]

    @property
    def workdir(self) -> str:
        """The working directory as commands see it (``$HOME``, the only writable place)."""
        return WORKDIR if self.sandbox.isolation != "none" else "a temporary directory"

    async def reset(self, task: OsTask, *, seed: int | None = None) -> Observation:
        """Set up ``task`` in a fresh working directory and show its description.

        Raises:
            EnvironmentFailure: ``init`` failed or was stopped (the reason names how).
        """
        self.task, self.commands, self._reference = task, [], None
        self._state = _State()
        if task.init.strip():
            run, state = await self._run(task.init, _State())
            if not run.ok:
                raise EnvironmentFailure(f"os task: init {_how(run)}", raw=run.output[-2000:])
            self._state = state
        self._start = self._state
        system = ""
        if self.system_template is not None:
            system = self.prompts.render(
                self.system_template,
                workdir=self.workdir,
                seconds=_seconds(self.sandbox.limits.wall_seconds),
            )
        return Observation(text=task.description, system=system)

    async def step(self, action: Action) -> StepResult:
        """Run a bash command, or judge the answer.

        Raises:
            EnvironmentFailure: the sandbox failed, or the reference solution that gives
                the expected value failed.
        """
        task = self.task
        if task is None:
            raise RuntimeError("OsEnvironment.step before reset")
        if action.kind in ("answer", "finish", "fail"):
            answer = action.text if action.kind == "answer" else ""
            if action.kind == "fail":
                passed, detail = False, f"the agent gave up: {action.text.strip() or 'no reason'}"
            else:
                passed, detail = await self.evaluate(answer)
            return StepResult(
                reward=1.0 if passed else 0.0,
                done=True,
                info={"passed": passed, "detail": detail, "answer": answer},
            )
        if action.kind != "call":
            raise ValueError(f"OsEnvironment cannot step a {action.kind} action")
        if action.name != "bash":
            line = f"{action.name!r} is not a command; run bash code, answer, or finish"
            return StepResult(observation=line, error=True, info={"error": line})
        run = await self.run(action.text)
        return StepResult(
            observation=self.prompts.render(
                self.output_template,
                output=run.output,
                exit_code=run.exit_code,
                stopped=run.stopped,
            ),
            info={"exit_code": run.exit_code, "stopped": run.stopped},
        )

    def admissible_actions(self) -> None:
        return None

    async def close(self) -> None:
        """Forget the task's state (no directory outlives a command: each run's
        directory is removed by the sandbox when the run ends)."""
        self.task, self._reference = None, None
        self._state = self._start = _State()

    async def run(self, command: str) -> CommandRun:
        """Run ``command`` as the agent's next command: where the last one left off; its
        changes are kept unless it was stopped."""
        run, state = await self._run(command, self._state)
        if not run.stopped:
            self._state = state
        self.commands.append(run)
        return run

    async def evaluate(self, answer: str) -> tuple[bool, str]:
        """Judge ``answer`` (``""`` for ``finish``) against the task's evaluation, on the
        working directory as it is now.

        Returns:
            ``(passed, detail)``: the detail says what passed, or what failed.

        Raises:
            EnvironmentFailure: the reference solution, needed for an expected value,
                failed.
        """
        task = self.task
        if task is None:
            raise RuntimeError("OsEnvironment.evaluate before reset")
        got = answer.strip()
        if task.evaluation == "match":
            exact = task.expected if task.expected is not None else await self._expected()
            if got == exact.strip():
                return True, f"the answer is {exact.strip()!r}"
            return False, f"the answer {got!r} is not {exact.strip()!r}"
        if task.evaluation == "regex":
            if re.fullmatch(task.pattern, got):
                return True, f"the answer {got!r} matches {task.pattern!r}"
            return False, f"the answer {got!r} does not match {task.pattern!r}"
        details = []
        for i, check in enumerate(task.checks, 1):
            want = check.expected
            if want is None and (check.kind != "script" or task.reference.strip()):
                want = await self._expected()
            passed, detail = await self._check(check, got, want)
            if not passed:
                return False, f"check {i} ({check.kind}) failed: {detail}"
            details.append(detail)
        return True, "; ".join(details)

    async def reference_run(self) -> CommandRun:
        """The reference solution, run once on the working directory as ``init`` left it
        (the agent's commands do not change what it sees).

        Raises:
            EnvironmentFailure: the task has no reference.
        """
        task = self.task
        if task is None:
            raise RuntimeError("OsEnvironment.reference_run before reset")
        if not task.reference.strip():
            raise EnvironmentFailure("os task: the task has no reference solution")
        if self._reference is None:
            self._reference, _ = await self._run(task.reference, self._start)
        return self._reference

    async def _expected(self) -> str:
        run = await self.reference_run()
        if not run.ok:
            raise EnvironmentFailure(
                f"os task: the reference solution {_how(run)}", raw=run.output[-2000:]
            )
        return run.output.strip()

    async def _check(self, check: OsCheck, got: str, want: str | None) -> tuple[bool, str]:
        if check.kind == "script":
            run, _ = await self._run(check.script, self._state, args=(got, want or ""), shell=False)
            tail = run.output.strip()[-300:]
            if run.ok:
                return True, "the check script passed"
            return False, f"the check script {_how(run)}" + (f": {tail}" if tail else "")
        assert want is not None
        if check.kind == "integer":
            a, b = _integer(got), _integer(want)
            if a is None:
                return False, f"the answer {got!r} is not an integer"
            if b is None:
                return False, f"the expected value {want!r} is not an integer"
            return (a == b), f"{a} {'=' if a == b else '!='} {b}"
        if check.kind == "size":
            x, y = size_bytes(got), size_bytes(want)
            if x is None:
                return False, f"the answer {got!r} is not a size"
            if y is None:
                return False, f"the expected value {want!r} is not a size"
            return (x == y), f"{got!r} {'is' if x == y else 'is not'} {want!r} in bytes"
        if check.kind == "contains":
            text, part = _newlines(got), _newlines(want).strip()
            found = part in text
            return found, f"the answer {'contains' if found else 'lacks'} {part!r}"
        same = got == want.strip()
        return same, f"the answer {got!r} {'is' if same else 'is not'} {want.strip()!r}"

    async def _run(
        self, command: str, state: _State, *, args: Sequence[str] = (), shell: bool = True
    ) -> tuple[CommandRun, _State]:
        """Run ``command`` on ``state`` in a fresh sandbox; the run and the state after."""
        mark = f"GT-{secrets.token_hex(12)}"
        wrapper = _WRAPPER.replace("@MARK@", mark).replace(
            "@SHELL@", _RESTORE_SHELL if shell else ""
        )
        files = {
            ".gt-wrap": wrapper,
            ".gt-state": state.archive,
            ".gt-modes": state.modes,
            ".gt-shell": state.shell,
            ".gt-cmd": command,
        }
        try:
            result = await self.sandbox.run_bash(_MAIN, files=files, args=args, name="bash")
        except (OSError, SandboxUnavailable) as exc:
            raise EnvironmentFailure(f"os task: the sandbox failed: {exc}") from exc
        return _read(result, mark, state, self.sandbox.limits)


def _read(
    result: ExecutionResult, mark: str, before: _State, limits: SandboxLimits
) -> tuple[CommandRun, _State]:
    """The command's output and status, and the state it left, from the wrapper's stdout."""
    out = result.stdout
    at = out.find(f"\n{mark}:")
    output = out if at < 0 else out[:at]
    output = output.replace("\r\n", "\n")
    if result.killed_by is not None:
        return CommandRun(output, None, _limit(result.killed_by, limits)), before
    if result.exit_code == 97 and at < 0:
        return CommandRun(output, None, "the working directory could not be unpacked"), before
    tail = out[at + 1 :].split("\n") if at >= 0 else []
    if len(tail) < 5 or tail[4] != f"{mark}:end" or not tail[3]:
        return (
            CommandRun(
                output,
                None,
                "the shell ended without saving the task's state (exec, or a trap on EXIT)",
            ),
            before,
        )
    try:
        status = int(tail[0].split(":", 1)[1])
        modes = base64.b64decode(tail[1], validate=True).decode("utf-8", "replace")
        shell = base64.b64decode(tail[2], validate=True).decode("utf-8", "replace")
    except (ValueError, IndexError, binascii.Error):
        return CommandRun(output, None, "its state could not be read back"), before
    return CommandRun(output, status), _State(archive=tail[3], modes=modes, shell=shell)


def _limit(killed_by: str, limits: SandboxLimits) -> str:
    if killed_by == "wall":
        return f"it ran past the {_seconds(limits.wall_seconds)}-second limit"
    if killed_by == "output":
        return f"its output and files passed {limits.output_bytes} bytes"
    if killed_by == "cpu":
        return f"it used more than {_seconds(limits.cpu_seconds)} seconds of CPU"
    return f"it was killed ({killed_by})"


def _how(run: CommandRun) -> str:
    if run.stopped:
        return f"was stopped: {run.stopped}"
    return f"exited with status {run.exit_code}"


def _seconds(value: float) -> str:
    return f"{value:g}"


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


async def self_check(
    task: OsTask,
    *,
    prompts: PromptLibrary | None = None,
    sandbox: Sandbox | None = None,
) -> str | None:
    """Whether ``task`` agrees with itself (the self-instruct agreement rule): in a fresh
    set-up, its reference solution runs as the agent would, and its own answer (its
    stdout, stripped) must pass the evaluation on the files it leaves. A task whose
    evaluation also passes with no action at all (an empty answer on the fresh files)
    tests nothing and is dropped too.

    Args:
        task: the task to check.
        prompts: the prompt library (default: the built-in one).
        sandbox: where it runs (default: a :class:`Sandbox` with :data:`OS_LIMITS`).

    Returns:
        ``None`` when the task is sound; else why it is dropped, in one line.

    Raises:
        SandboxUnavailable: no sandbox is given and none works here.
    """
    if not task.reference.strip():
        return "the task has no reference solution to check it against"
    env = OsEnvironment(prompts or PromptLibrary(), sandbox=sandbox)
    try:
        try:
            await env.reset(task)
        except EnvironmentFailure as exc:
            return exc.reason.removeprefix("os task: ")
        try:
            idle, idle_detail = await env.evaluate("")
        except EnvironmentFailure as exc:
            return exc.reason.removeprefix("os task: ")
        if idle:
            return f"the evaluation passes with no action and an empty answer ({idle_detail})"
        run = await env.run(task.reference)
        if not run.ok:
            return f"the reference solution {_how(run)}"
        passed, detail = await env.evaluate(run.output)
        if not passed:
            return f"the reference's own answer fails the evaluation: {detail}"
        return None
    finally:
        await env.close()


__all__ = [
    "CHECKS",
    "EVALUATIONS",
    "OS_LIMITS",
    "OUTPUT_TEMPLATE",
    "SYSTEM_TEMPLATE",
    "CheckKind",
    "CommandRun",
    "EvaluationKind",
    "OsCheck",
    "OsEnvironment",
    "OsTask",
    "self_check",
    "size_bytes",
]
