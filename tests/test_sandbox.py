"""The sandboxed code interpreter: normal runs, and the hostile-snippet suite. Each hostile
case runs under every isolation that works here (bubblewrap, unshare) and checks that it
was contained and reported, and that nothing reached the test's own process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from genteach.models.base import ToolSpec
from genteach.runtime.sandbox import (
    CodeInterpreterTool,
    ExecutionResult,
    Sandbox,
    SandboxLimits,
    SandboxUnavailable,
)
from genteach.runtime.tools import ToolError

REPO = Path(__file__).resolve().parents[1]


def unavailable(isolation: Literal["bwrap", "unshare"]) -> str | None:
    """Why ``isolation`` does not work here, or ``None``."""
    try:
        Sandbox.probe(isolation)
    except SandboxUnavailable as exc:
        return str(exc)
    return None


FAST = SandboxLimits(cpu_seconds=2, memory_mb=256, wall_seconds=8, output_bytes=10_000)
ISOLATIONS = [
    pytest.param(
        iso,
        marks=pytest.mark.skipif(unavailable(iso) is not None, reason=str(unavailable(iso))),
    )
    for iso in ("bwrap", "unshare")
]


@pytest.fixture(params=ISOLATIONS)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    return Sandbox(FAST, isolation=request.param)


def with_limits(sandbox: Sandbox, **changes: float) -> Sandbox:
    limits = SandboxLimits(**{**FAST.__dict__, **changes})
    return Sandbox(limits, isolation=sandbox.isolation)


def processes_with(marker: str) -> list[int]:
    """Host PIDs whose command line holds ``marker`` (the test's own process aside)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def run_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("genteach-sandbox-*")}


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique string to find the run's processes by; none may be left at the end."""
    mark = f"canary-{uuid.uuid4().hex[:12]}"
    yield mark
    for pid in processes_with(mark):  # clean up before failing, never leave them running
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


# Sandboxed code that counts the other processes whose command line holds sys.argv[1]
# (PID 1 and the parent, the sandbox's launcher and wall-clock backstop, aside).
COUNT_MARKED = (
    "import os, sys, time\n"
    "def marked():\n"
    "    time.sleep(0.3)\n"
    "    n = 0\n"
    "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "        try:\n"
    "            line = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
    "        except OSError:\n"
    "            continue\n"
    "        n += int(pid) not in (1, os.getpid(), os.getppid()) and sys.argv[1].encode() in line\n"
    "    return n\n"
)


# -- normal runs -------------------------------------------------------------------------


async def test_print_exit_code_and_duration(sandbox: Sandbox) -> None:
    result = await sandbox.run_python("print('hello')\nprint(6 * 7)")
    assert result.ok and result.exit_code == 0 and result.killed_by is None
    assert result.stdout == "hello\n42\n" and result.stderr == ""
    assert result.duration_s > 0 and not result.truncated and not result.timed_out


async def test_exit_status_and_traceback(sandbox: Sandbox) -> None:
    exited = await sandbox.run_python("import sys; print('x'); sys.exit(3)")
    assert (exited.exit_code, exited.ok, exited.killed_by) == (3, False, None)
    raised = await sandbox.run_python("def f():\n    raise ValueError('boom')\nf()")
    assert raised.exit_code == 1 and raised.killed_by is None
    assert "Traceback (most recent call last)" in raised.stderr
    assert raised.stderr.rstrip().endswith("ValueError: boom")


async def test_files_stdin_and_args(sandbox: Sandbox) -> None:
    code = (
        "import sys, helper\n"
        "data = open('data/in.txt').read()\n"
        "print(helper.X + 1, data, input().upper(), sys.argv[1:])"
    )
    result = await sandbox.run_python(
        code,
        files={"helper.py": "X = 41", "data/in.txt": "seed"},
        stdin="abc\n",
        args=["-v", "two words"],
    )
    assert result.ok, result.stderr
    assert result.stdout == "42 seed ABC ['-v', 'two words']\n"


async def test_bash(sandbox: Sandbox) -> None:
    result = await sandbox.run_bash(
        'echo "$1"; cat; printf "%s" "$(cat notes.txt)" >&2; exit 4',
        args=["first"],
        stdin="from stdin\n",
        files={"notes.txt": "note"},
    )
    assert (result.exit_code, result.stdout, result.stderr) == (4, "first\nfrom stdin\n", "note")


async def test_the_run_directory_is_removed(sandbox: Sandbox) -> None:
    before = run_dirs()
    result = await sandbox.run_python("import os; os.chmod('.', 0); open('x', 'w')")
    assert result.exit_code == 1  # the chmod took its own write access away
    assert run_dirs() == before


async def test_bad_file_names_are_refused(sandbox: Sandbox) -> None:
    for name in ("../up.py", "/etc/x", "main.py"):
        with pytest.raises(ValueError, match="sandbox"):
            await sandbox.run_python("pass", files={name: ""})


def test_limits_and_isolation_are_checked() -> None:
    with pytest.raises(ValueError, match=r"SandboxLimits\.memory_mb"):
        SandboxLimits(memory_mb=0)
    with pytest.raises(ValueError, match="unknown isolation"):
        Sandbox(isolation="docker")  # type: ignore[arg-type]


def test_an_isolation_works_here() -> None:
    # The hostile suite skips an isolation that does not work here; this test makes sure
    # at least one does, so CI cannot pass with the whole suite skipped.
    chosen = Sandbox.probe()  # raises SandboxUnavailable, saying why, when none works
    assert chosen in ("bwrap", "unshare") and unavailable(chosen) is None
    assert Sandbox().isolation == chosen


async def test_isolation_none_still_limits_and_cleans_up(marker: str) -> None:
    sandbox = Sandbox(SandboxLimits(wall_seconds=1), isolation="none")
    result = await sandbox.run_python("import os; print(sorted(os.environ)); print(os.getcwd())")
    assert (
        result.ok and "OPENAI_API_KEY" not in result.stdout and "genteach-sandbox-" in result.stdout
    )
    code = (
        COUNT_MARKED + "import subprocess\n"
        "subprocess.Popen(['sh', '-c', 'sleep 30; : ' + sys.argv[1]])\n"
        "print('running', marked(), flush=True)\n"
        "time.sleep(20)\n"
    )
    slept = await sandbox.run_python(code, args=[marker])
    assert slept.stdout == "running 1\n"
    assert slept.timed_out and slept.killed_by == "wall" and slept.exit_code is None
    assert processes_with(marker) == []


def test_report_is_bounded() -> None:
    result = ExecutionResult(exit_code=None, stdout="x" * 10_000, stderr="", killed_by="wall")
    text = result.report(max_chars=1000)
    assert text.startswith("stopped: wall limit") and len(text) < 700
    assert ExecutionResult(0, "1\n", "").report() == "exit code 0\nstdout:\n1\n"
    assert "stopped by signal 9" in ExecutionResult(None, "", "", killed_by="signal 9").report()


async def test_code_interpreter_tool(sandbox: Sandbox) -> None:
    tool = CodeInterpreterTool(sandbox, max_chars=200)
    assert isinstance(tool.spec, ToolSpec) and tool.spec.name == "python"
    assert tool.spec.parameters["required"] == ["code"]
    assert await tool({"code": "print(2 ** 10)"}) == "exit code 0\nstdout:\n1024\n"
    failed = await tool({"code": "1 / 0"})
    assert failed.startswith("exit code 1") and "ZeroDivisionError" in failed
    long = await tool({"code": "print('y' * 5000)"})
    assert len(long) < 300
    with pytest.raises(ToolError, match="'code' must be a non-empty string"):
        await tool({"code": "  "})


# -- the hostile-snippet suite -----------------------------------------------------------


async def test_network_is_unreachable(sandbox: Sandbox) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        code = (
            "import socket\n"
            "for host in ('127.0.0.1', '10.0.0.1', 'example.com'):\n"
            "    try:\n"
            f"        socket.create_connection((host, {port}), timeout=2)\n"
            "        print('connected', host)\n"
            "    except OSError as exc:\n"
            "        print('blocked', host, type(exc).__name__)\n"
        )
        result = await sandbox.run_python(code)
        assert result.ok, result.stderr
        assert "connected" not in result.stdout and result.stdout.count("blocked") == 3
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing reached the parent's listener


async def test_fork_bomb_is_bounded(sandbox: Sandbox, marker: str) -> None:
    code = (
        "import os, sys, time\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as exc:\n"
        "    print('forks', n, type(exc).__name__)\n"
    )
    limited = with_limits(sandbox, processes=12)
    result = await limited.run_python(code, args=[marker])
    assert result.ok, result.stderr
    forks = int(result.stdout.split()[1])
    assert 0 < forks < 12 and "BlockingIOError" in result.stdout
    assert processes_with(marker) == []  # the sleeping children died with the run


@pytest.mark.slow
async def test_bash_fork_bomb_is_stopped_at_the_deadline(sandbox: Sandbox, marker: str) -> None:
    limited = with_limits(sandbox, processes=16, wall_seconds=2)
    result = await limited.run_bash(f"# {marker}\nb() {{ b | b & }}; b; sleep 30", args=[marker])
    assert result.exit_code is None or result.exit_code != 0 or result.timed_out
    assert processes_with(marker) == []
    assert (await sandbox.run_python("print(1)")).ok  # the process budget is free again


async def test_memory_bomb_is_stopped(sandbox: Sandbox) -> None:
    result = await sandbox.run_python("x = bytearray(2 * 1024**3)")
    assert (result.exit_code, result.killed_by) == (1, "memory")
    grow = await sandbox.run_python("a = []\nwhile True:\n    a.append(' ' * 10**6)")
    assert grow.killed_by == "memory" and grow.stderr.rstrip().endswith("MemoryError")


async def test_infinite_loop_hits_the_cpu_limit(sandbox: Sandbox) -> None:
    limited = with_limits(sandbox, cpu_seconds=1, wall_seconds=10)
    result = await limited.run_python("while True:\n    pass")
    assert (result.exit_code, result.killed_by, result.timed_out) == (None, "cpu", False)


async def test_sleep_loop_hits_the_wall_clock(sandbox: Sandbox, marker: str) -> None:
    limited = with_limits(sandbox, wall_seconds=1)
    result = await limited.run_python(
        "import time\nwhile True:\n    time.sleep(0.1)", args=[marker]
    )
    assert (result.exit_code, result.killed_by, result.timed_out) == (None, "wall", True)
    assert processes_with(marker) == []


async def test_cancelled_run_leaves_nothing(sandbox: Sandbox, marker: str) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(sandbox.run_python("import time; time.sleep(30)", args=[marker]), 1)
    assert processes_with(marker) == []


async def test_big_files_hit_the_file_size_limit(sandbox: Sandbox) -> None:
    limited = with_limits(sandbox, file_size_mb=1)
    result = await limited.run_python("open('big', 'wb').write(b'0' * 4 * 2**20)")
    assert result.killed_by == "file_size" and "File too large" in result.stderr


async def test_writes_outside_the_work_dir_fail(sandbox: Sandbox) -> None:
    targets = [
        f"/tmp/xyz-outside-{uuid.uuid4().hex[:8]}",
        str(Path.home() / f"sandbox-canary-{uuid.uuid4().hex[:8]}"),
        str(REPO / f"sandbox-canary-{uuid.uuid4().hex[:8]}"),
        "/usr/sandbox-canary",
        "/sandbox-canary",
        "/dev/shm/sandbox-canary",
    ]
    code = (
        "import sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('denied', path, type(exc).__name__)\n"
        "open('inside.txt', 'w').write('fine')\n"
        "print('inside ok')\n"
    )
    result = await sandbox.run_python(code, args=targets)
    assert result.ok, result.stderr
    assert "wrote" not in result.stdout and result.stdout.count("denied") == len(targets)
    assert "inside ok" in result.stdout
    assert not any(Path(t).exists() for t in targets)


async def test_parent_environment_is_invisible(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-canary")
    code = (
        "import os, glob\n"
        "print(dict(os.environ))\n"
        "for path in glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        print(path, open(path, 'rb').read())\n"
        "    except OSError as exc:\n"
        "        print(path, type(exc).__name__)\n"
    )
    result = await sandbox.run_python(code)
    assert result.ok, result.stderr
    assert "sk-test-canary" not in result.stdout + result.stderr
    assert "OPENAI_API_KEY" not in result.stdout


async def test_files_outside_the_allow_list_cannot_be_read(sandbox: Sandbox) -> None:
    secret = REPO / "pyproject.toml"
    targets = ["/etc/shadow", "/etc/passwd", "/etc/hostname", str(secret), "/root/.bashrc"]
    code = (
        "import sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        open(path).read()\n"
        "        print('read', path)\n"
        "    except OSError as exc:\n"
        "        print('denied', path, type(exc).__name__)\n"
    )
    result = await sandbox.run_python(code, args=targets)
    assert result.ok, result.stderr
    assert "read " not in result.stdout and result.stdout.count("denied") == len(targets)


async def test_signals_cannot_reach_the_parent(sandbox: Sandbox) -> None:
    code = (
        "import os, signal, sys\n"
        "parent = int(sys.argv[1])\n"
        "print('visible', os.path.exists(f'/proc/{parent}'))\n"
        "try:\n"
        "    os.kill(parent, signal.SIGKILL)\n"
        "    print('sent')\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__)\n"
        "print('ppid', os.getppid())\n"
    )
    result = await sandbox.run_python(code, args=[str(os.getpid())])
    assert result.ok, result.stderr
    assert "visible False" in result.stdout and "refused ProcessLookupError" in result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="starts a process as uid 65534")
async def test_kill_all_reaches_no_host_process(sandbox: Sandbox) -> None:
    # A host process of the sandbox's own uid: kill(-1) from inside must not reach it.
    host = subprocess.Popen(["sleep", "30"], user=65534, group=65534)
    code = (
        "import os, signal, subprocess\n"
        "child = subprocess.Popen(['sleep', '30'])\n"
        "os.kill(-1, signal.SIGKILL)\n"
        "print('child', child.wait())\n"
    )
    try:
        result = await sandbox.run_python(code)
        assert result.ok and result.stdout == "child -9\n", result.stderr
        assert host.poll() is None
    finally:
        host.kill()
        host.wait()


async def test_huge_output_is_truncated(sandbox: Sandbox) -> None:
    result = await sandbox.run_python("while True:\n    print('x' * 1000)")
    assert result.truncated and result.killed_by == "output" and result.exit_code is None
    assert len(result.stdout) == FAST.output_bytes and set(result.stdout) <= {"x", "\n"}
    one_write = await sandbox.run_python(
        "import sys; sys.stderr.write('e' * 50_000_000); print('done')"
    )
    assert one_write.truncated and len(one_write.stderr) <= FAST.output_bytes


async def test_background_processes_die_with_the_run(sandbox: Sandbox, marker: str) -> None:
    code = COUNT_MARKED + (
        "import subprocess\n"
        "subprocess.Popen(['sh', '-c', 'sleep 60; : ' + sys.argv[1]], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.execvp('sh', ['sh', '-c', 'sleep 60; : ' + sys.argv[1]])\n"
        "    os._exit(0)\n"
        "print('running', marked())\n"
    )
    result = await sandbox.run_python(code, args=[marker])
    assert result.ok and result.stdout == "running 2\n", result.stderr
    assert processes_with(marker) == []
    shell = await sandbox.run_bash(
        f"nohup sh -c 'sleep 60; : {marker}' >/dev/null 2>&1 &\ndisown\necho bg"
    )
    assert shell.ok and shell.stdout == "bg\n"
    assert processes_with(marker) == []


@pytest.mark.slow
async def test_a_dying_caller_takes_its_sandbox_along(
    sandbox: Sandbox, marker: str, request: pytest.FixtureRequest
) -> None:
    if sandbox.isolation == "unshare":
        # Known defect of the fallback, seen once in CI (2026-12-01): a caller killed in the
        # first moments of an unshare run left the sandboxed program alive past the 10 s
        # this test waits. bwrap, the isolation CI uses, passed. See docs/sandbox.md.
        request.applymarker(pytest.mark.xfail(reason="unshare: dying caller race", strict=False))
    before = run_dirs()
    caller = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio\n"
            "from genteach.runtime.sandbox import Sandbox, SandboxLimits\n"
            f"sandbox = Sandbox(SandboxLimits(wall_seconds=2), isolation={sandbox.isolation!r})\n"
            f"asyncio.run(sandbox.run_python('import time; time.sleep(30)', args=[{marker!r}]))\n",
        ]
    )
    try:
        for _ in range(100):  # until the sandboxed program runs (at most 10 s)
            if any(pid != caller.pid for pid in processes_with(marker)):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the sandboxed program never started")
    finally:
        caller.kill()
        caller.wait()
    # The kernel kills the launcher, then the namespace; should the launcher die before
    # the namespace's PID 1 asks to die with it, the backstop inside ends the run at
    # wall_seconds + 5 s. Wait at most 10 s.
    for _ in range(100):
        if not processes_with(marker):
            break
        await asyncio.sleep(0.1)
    assert processes_with(marker) == []
    for name in run_dirs() - before:  # a killed caller cannot remove its run directory
        shutil.rmtree(Path(tempfile.gettempdir(), name), ignore_errors=True)
