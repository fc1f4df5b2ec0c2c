"""A sandbox for model-written code: Python or bash runs in a separate process, in new
network, PID, mount, IPC and UTS namespaces, as an unprivileged user, with CPU, memory,
file-size, process and wall-clock limits, an empty environment and bounded output.

Two mechanisms build the sandbox: bubblewrap (``bwrap``) or util-linux ``unshare`` with a
small mount script (root only). :meth:`Sandbox.probe` finds one that works here. See
``docs/sandbox.md`` for the threat model: what is isolated and what is not.

Example::

    sandbox = Sandbox(SandboxLimits(wall_seconds=5))
    result = await sandbox.run_python("print(6 * 7)")
    assert result.ok and result.stdout == "42\\n"
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import math
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from genteach.models.base import ToolSpec
from genteach.runtime.tools import ToolError

Isolation = Literal["auto", "bwrap", "unshare", "none"]

#: The user that sandboxed code runs as when the caller is root (``nobody``).
SANDBOX_UID = 65534
#: The sandbox's working directory, as the code sees it (its only writable place).
WORKDIR = "/sandbox"

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Harmless files that common programs look for: the loader's cache, the time zone and
# Debian's alternatives (/usr/bin/awk and friends are links into /etc/alternatives).
_SYSTEM_EXTRAS = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")
_DEVICES = ("null", "zero", "full", "random", "urandom")
_CHUNK = 65_536
_PR_SET_PDEATHSIG = 1
_BACKSTOP_S = 5
_SIGNAL_LIMITS = {int(signal.SIGXCPU): "cpu", int(signal.SIGXFSZ): "file_size"}


class SandboxUnavailable(RuntimeError):
    """No isolation mechanism works on this machine (or the one asked for does not)."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use.

    Attributes:
        cpu_seconds: CPU time of each process (``RLIMIT_CPU``, rounded up to whole seconds).
        memory_mb: address space of each process (``RLIMIT_AS``).
        file_size_mb: the largest file a process may write (``RLIMIT_FSIZE``).
        processes: processes and threads of the sandbox user (``RLIMIT_NPROC``).
        wall_seconds: wall-clock time of the whole run; at the deadline every process of
            the run is killed.
        output_bytes: bytes kept of stdout and of stderr each; more ends the run.
    """

    cpu_seconds: float = 10
    memory_mb: int = 512
    file_size_mb: int = 16
    processes: int = 32
    wall_seconds: float = 20
    output_bytes: int = 64_000

    def __post_init__(self) -> None:
        for name in (
            "cpu_seconds",
            "memory_mb",
            "file_size_mb",
            "processes",
            "wall_seconds",
            "output_bytes",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"SandboxLimits.{name} must be positive, got {getattr(self, name)}"
                )


@dataclass(frozen=True)
class ExecutionResult:
    """The outcome of one run.

    Attributes:
        exit_code: the program's exit status; ``None`` when a signal or the sandbox ended it.
        stdout / stderr: what it wrote (decoded as UTF-8, at most ``output_bytes`` each).
        timed_out: the wall-clock limit ended the run.
        killed_by: the limit or signal that ended the run: ``"wall"``, ``"output"``,
            ``"cpu"``, ``"memory"``, ``"file_size"`` or ``"signal N"``; ``None`` when the
            program ended by itself. ``"memory"`` and ``"file_size"`` are read from Python's
            ``MemoryError`` / ``File too large`` as the last line of stderr.
        truncated: some output was cut.
        duration_s: seconds from start to result, sandbox set-up included.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    killed_by: str | None = None
    truncated: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """The program exited with status 0 within its limits."""
        return self.exit_code == 0 and self.killed_by is None

    def report(self, max_chars: int = 4000) -> str:
        """The result as text for a model: status line, then stdout and stderr, each cut
        to about ``max_chars // 2`` characters (its start and its end, where a traceback's
        last line is)."""
        if self.killed_by is not None:
            status = f"stopped: {self.killed_by} limit" if "signal" not in self.killed_by else ""
            status = status or f"stopped by {self.killed_by}"
        else:
            status = f"exit code {self.exit_code}"
        parts = [status + (" (output truncated)" if self.truncated else "")]
        half = max(max_chars // 2, 1)
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            if text:
                parts.append(f"{name}:\n{_middle_cut(text, half)}")
        return "\n".join(parts)


def _middle_cut(text: str, limit: int) -> str:
    """``text`` with its middle cut out when it is longer than ``limit``."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-tail:]}"


@dataclass(frozen=True)
class _Mount:
    """One entry of the sandbox's file system: ``kind`` is ``ro``, ``rw``, ``symlink``
    (``src`` is the link's target), ``proc``, ``dev`` or ``dir`` (an empty directory,
    mode 0755, made for the parents of bound paths)."""

    kind: Literal["dir", "ro", "rw", "symlink", "proc", "dev"]
    dst: str
    src: str = ""


def _tool(name: str) -> str | None:
    """The system binary ``name`` when it lies under /usr or /bin (visible inside)."""
    found = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    return found if found and os.path.realpath(found).startswith("/usr/") else None


def _is_root() -> bool:
    return os.geteuid() == 0


def _probe_run(argv: Sequence[str]) -> str | None:
    """Run a probe command; ``None`` when it worked, else its error's last line."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=20, env={}, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0 and done.stdout.strip() == "ok":
        return None
    lines = (done.stderr or done.stdout or f"exit status {done.returncode}").strip()
    return lines.splitlines()[-1] if lines else f"exit status {done.returncode}"


@functools.cache
def _probe(isolation: Literal["bwrap", "unshare"]) -> str | None:
    """Why ``isolation`` does not work here (``None`` when it does); cached per process."""
    missing = [t for t in ("prlimit", "timeout", "env") if _tool(t) is None]
    if _is_root() and _tool("setpriv") is None:
        missing.append("setpriv")
    if isolation == "bwrap" and shutil.which("bwrap") is None:
        missing.append("bwrap")
    if isolation == "unshare":
        if not _is_root():
            return "unshare isolation needs root (or use bubblewrap)"
        missing += [t for t in ("unshare", "mount", "chroot") if _tool(t) is None]
    if missing:
        return f"missing {', '.join(missing)}"
    with tempfile.TemporaryDirectory(prefix="genteach-probe-") as base:
        builder = _Builder(isolation, SandboxLimits(), Path(base), python="", read_only=())
        Path(base, "work").mkdir()
        if _is_root():
            os.chown(Path(base, "work"), SANDBOX_UID, SANDBOX_UID)
        return _probe_run(builder.command(["/bin/sh", "-c", "echo ok"]))


class _Builder:
    """Builds the command line that runs ``argv`` inside the sandbox for one run, whose
    host directory is ``base`` (``base/work`` becomes :data:`WORKDIR`)."""

    def __init__(
        self,
        isolation: Literal["bwrap", "unshare", "none"],
        limits: SandboxLimits,
        base: Path,
        *,
        python: str,
        read_only: Sequence[str],
    ) -> None:
        self.isolation = isolation
        self.limits = limits
        self.base = base
        self.python = python
        self.read_only = read_only

    @property
    def workdir(self) -> str:
        return WORKDIR if self.isolation != "none" else str(self.base / "work")

    def mounts(self) -> list[_Mount]:
        """The file system the code sees: system directories and the Python install
        read-only, the working directory read-write, a fresh /proc and a minimal /dev."""
        out: list[_Mount] = []
        for d in _SYSTEM_DIRS:
            if os.path.islink(d):
                out.append(_Mount("symlink", d, os.readlink(d)))
            elif os.path.isdir(d):
                out.append(_Mount("ro", d, d))
        extras = [p for p in _SYSTEM_EXTRAS if os.path.exists(p)]
        prefixes: list[str] = []
        if self.python:
            prefixes = [sys.prefix, sys.base_prefix] if self.python == sys.executable else []
            prefixes.append(str(Path(os.path.realpath(self.python)).parent.parent))
        bound = ["/usr"]
        made: set[str] = {"/"}
        for path in [*extras, *prefixes, *self.read_only]:
            real = os.path.realpath(path)
            if not os.path.exists(real) or any(_under(real, b) for b in bound):
                continue
            bound.append(real)
            for parent in reversed(PurePosixPath(path).parents):
                if str(parent) not in made:
                    made.add(str(parent))
                    out.append(_Mount("dir", str(parent)))
            out.append(_Mount("ro", path, real))
        out.append(_Mount("proc", "/proc"))
        out.append(_Mount("dev", "/dev"))
        out.append(_Mount("rw", WORKDIR, str(self.base / "work")))
        return out

    def inner(self, argv: Sequence[str]) -> list[str]:
        """Start a wall-clock backstop, drop privileges (as root), set the limits, clear
        the environment, run ``argv``."""
        lim = self.limits
        cpu = max(1, math.ceil(lim.cpu_seconds))
        mem = lim.memory_mb * 2**20
        fsize = lim.file_size_mb * 2**20
        # The backstop needs no caller: should the caller die before it can kill the run
        # (e.g. while the sandbox starts), the run still ends. It runs before the drop of
        # privileges, so the code cannot kill it.
        backstop = math.ceil(lim.wall_seconds) + _BACKSTOP_S
        chain = [str(_tool("timeout")), "--signal=KILL", str(backstop)]
        if _is_root() and self.isolation != "none":
            chain += [
                str(_tool("setpriv")),
                f"--reuid={SANDBOX_UID}",
                f"--regid={SANDBOX_UID}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        chain += [
            str(_tool("prlimit")),
            f"--cpu={cpu}:{cpu + 1}",
            f"--as={mem}:{mem}",
            f"--fsize={fsize}:{fsize}",
            f"--nproc={lim.processes}:{lim.processes}",
            "--core=0:0",
            "--",
        ]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.workdir,
            "TMPDIR": self.workdir,
            "USER": "sandbox",
            "LOGNAME": "sandbox",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONIOENCODING": "utf-8",
        }
        chain += [str(_tool("env")), "-i", "-C", self.workdir]
        chain += [f"{k}={v}" for k, v in env.items()]
        return [*chain, *argv]

    def command(self, argv: Sequence[str], *, info_fd: int | None = None) -> list[str]:
        """The whole command line, run from the host; bubblewrap writes the host PID of
        the namespace's PID 1 to ``info_fd``."""
        inner = self.inner(argv)
        if self.isolation == "none":
            return inner
        if self.isolation == "bwrap":
            return self._bwrap(inner, info_fd)
        return self._unshare(inner)

    def _bwrap(self, inner: list[str], info_fd: int | None) -> list[str]:
        args = [str(shutil.which("bwrap"))]
        if info_fd is not None:
            args += ["--info-fd", str(info_fd)]
        for m in self.mounts():
            if m.kind == "symlink":
                args += ["--symlink", m.src, m.dst]
            elif m.kind == "dir":
                args += ["--perms", "0755", "--dir", m.dst]
            elif m.kind in ("ro", "rw"):
                args += ["--ro-bind" if m.kind == "ro" else "--bind", m.src, m.dst]
            else:
                args += [f"--{m.kind}", m.dst]
        args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--die-with-parent", "--new-session"]
        if _is_root():
            # No user namespace: the code runs as real uid 65534, which RLIMIT_NPROC binds.
            for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
                args += ["--cap-add", cap]
        else:
            args += ["--unshare-user", "--disable-userns"]
        args += ["--hostname", "sandbox", "--chdir", WORKDIR, "--", *inner]
        return args

    def _unshare(self, inner: list[str]) -> list[str]:
        root = self.base / "root"
        root.mkdir(exist_ok=True)
        r = shlex.quote(str(root))
        lines = ["set -e", f"mount -t tmpfs -o mode=0755,size=1m genteach-sandbox {r}"]
        for m in self.mounts():
            dst = shlex.quote(str(root) + m.dst)
            parent = shlex.quote(str(root) + str(PurePosixPath(m.dst).parent))
            if m.kind == "symlink":
                lines.append(f"ln -s {shlex.quote(m.src)} {dst}")
            elif m.kind == "dir":
                lines.append(f"mkdir -p -m 0755 {dst}")
            elif m.kind == "proc":
                lines += [f"mkdir -p {dst}", f"mount -t proc -o nosuid,nodev,noexec proc {dst}"]
            elif m.kind == "dev":
                lines += [f"mkdir -p {dst}", f"mount -t tmpfs -o mode=0755,size=64k dev {dst}"]
                for dev in _DEVICES:
                    lines += [f": > {dst}/{dev}", f"mount --bind /dev/{dev} {dst}/{dev}"]
                lines.append(f"ln -s /proc/self/fd {dst}/fd")
                for n, name in enumerate(("stdin", "stdout", "stderr")):
                    lines.append(f"ln -s /proc/self/fd/{n} {dst}/{name}")
            else:
                make = (
                    f"mkdir -p {dst}" if os.path.isdir(m.src) else f"mkdir -p {parent}; : > {dst}"
                )
                opts = "-o ro " if m.kind == "ro" else ""
                lines += [make, f"mount --bind {opts}{shlex.quote(m.src)} {dst}"]
        lines += [
            f"mount -o remount,ro {r}",
            "set +e",
            # This shell stays as PID 1 (root, so the code cannot signal it): when it ends,
            # the kernel kills every process left in the namespace.
            f"{shlex.quote(str(_tool('chroot')))} {r} " + shlex.join(inner),
            "exit $?",
        ]
        return [
            str(_tool("unshare")),
            "--net",
            "--pid",
            "--mount",
            "--ipc",
            "--uts",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            "\n".join(lines),
        ]


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


class _Capture:
    """The first ``limit`` bytes of a stream; ``overflow`` once more arrived."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.overflow = False

    async def drain(self, stream: asyncio.StreamReader | None, full: asyncio.Event) -> None:
        if stream is None:
            return
        while chunk := await stream.read(_CHUNK):
            room = self.limit - len(self.data)
            if room > 0:
                self.data += chunk[:room]
            if len(chunk) > room:
                self.overflow = True
                full.set()

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _remove(path: Path) -> None:
    """Remove a run's directory even where the code took away its permissions."""

    def fix(func: Any, target: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), stat.S_IRWXU)
            os.chmod(target, stat.S_IRWXU)
        with contextlib.suppress(OSError):
            func(target)

    shutil.rmtree(path, onerror=fix)


class Sandbox:
    """Runs untrusted Python or bash in isolation, one fresh sandbox per run.

    Args:
        limits: what each run may use.
        isolation: ``"auto"`` picks ``"bwrap"`` or else ``"unshare"``, whichever works
            here (:meth:`probe`); ``"none"`` runs with the limits, an empty environment and
            a temporary directory but *no isolation*: only for tests of callers, never for
            model-written code.
        python: the interpreter to run (default: this one, with its packages).
        read_only: more host paths the code may read (bound read-only at the same path).

    Raises:
        SandboxUnavailable: the isolation asked for does not work here.
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        isolation: Isolation = "auto",
        python: str | None = None,
        read_only: Sequence[str] = (),
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.isolation: Literal["bwrap", "unshare", "none"]
        if isolation == "auto":
            self.isolation = Sandbox.probe()
        elif isolation in ("bwrap", "unshare"):
            self.isolation = Sandbox.probe(isolation)
        elif isolation == "none":
            self.isolation = "none"
        else:
            raise ValueError(f"sandbox: unknown isolation {isolation!r}")
        self.python = python or sys.executable
        self.read_only = tuple(read_only)

    @staticmethod
    def probe(only: Literal["bwrap", "unshare"] | None = None) -> Literal["bwrap", "unshare"]:
        """The isolation that works here: ``"bwrap"`` if bubblewrap runs a test sandbox,
        else ``"unshare"`` (root only). The answer is cached for the process.

        Args:
            only: check this isolation alone.

        Raises:
            SandboxUnavailable: none works (or not ``only``); the message says why.
        """
        if only is not None:
            reason = _probe(only)
            if reason is not None:
                raise SandboxUnavailable(f"sandbox: {only} does not work here: {reason}")
            return only
        reasons: dict[str, str] = {}
        isolation: Literal["bwrap", "unshare"]
        for isolation in ("bwrap", "unshare"):
            reason = _probe(isolation)
            if reason is None:
                return isolation
            reasons[isolation] = reason
        raise SandboxUnavailable(
            "sandbox: no isolation works here ("
            + "; ".join(f"{k}: {v}" for k, v in reasons.items())
            + "); install bubblewrap (apt-get install bubblewrap) or run as root"
        )

    async def run_python(
        self,
        code: str,
        *,
        files: Mapping[str, str] | None = None,
        stdin: str = "",
        args: Sequence[str] = (),
    ) -> ExecutionResult:
        """Run ``code`` as ``main.py`` in a fresh sandbox.

        Args:
            code: the program.
            files: more files for the working directory, by relative path (e.g. a module
                the program imports); ``main.py`` is taken.
            stdin: the program's standard input.
            args: its command-line arguments.
        """
        return await self._run(
            [self.python, "-E", "-s", "main.py", *args], "main.py", code, files, stdin
        )

    async def run_bash(
        self,
        script: str,
        *,
        files: Mapping[str, str] | None = None,
        stdin: str = "",
        args: Sequence[str] = (),
        name: str = "main.sh",
    ) -> ExecutionResult:
        """Run ``script`` as the file ``name`` (``main.sh``) with bash in a fresh sandbox
        (the other arguments as for :meth:`run_python`). bash's own error messages start
        with that name: ``main.sh: line 3: ...``."""
        return await self._run(
            ["/bin/bash", "--noprofile", "--norc", name, *args], name, script, files, stdin
        )

    async def _run(
        self,
        argv: list[str],
        main: str,
        program: str,
        files: Mapping[str, str] | None,
        stdin: str,
    ) -> ExecutionResult:
        files = dict(files or {})
        if main in files:
            raise ValueError(f"sandbox: files may not hold {main!r} (the program's own file)")
        base = Path(tempfile.mkdtemp(prefix="genteach-sandbox-"))
        try:
            work = base / "work"
            _write_files(work, {main: program, **files})
            if _is_root() and self.isolation != "none":
                for p in [work, *work.rglob("*")]:
                    os.lchown(p, SANDBOX_UID, SANDBOX_UID)
            builder = _Builder(
                self.isolation, self.limits, base, python=self.python, read_only=self.read_only
            )
            return await self._execute(builder, argv, stdin.encode())
        finally:
            _remove(base)

    async def _execute(self, builder: _Builder, argv: list[str], stdin: bytes) -> ExecutionResult:
        limits = self.limits
        start = time.monotonic()
        # bubblewrap's launcher may exit before the namespace is empty: watch its PID 1.
        info_r, info_w = os.pipe() if self.isolation == "bwrap" else (-1, -1)
        try:
            proc = await asyncio.create_subprocess_exec(
                *builder.command(argv, info_fd=info_w if info_w >= 0 else None),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={},
                start_new_session=True,
                pass_fds=(info_w,) if info_w >= 0 else (),
                preexec_fn=_die_with_parent,
            )
        except BaseException:
            for fd in (info_r, info_w):
                if fd >= 0:
                    os.close(fd)
            raise
        if info_w >= 0:
            os.close(info_w)
        pid1 = asyncio.ensure_future(_pid1_handle(info_r)) if info_r >= 0 else None
        out, err = _Capture(limits.output_bytes), _Capture(limits.output_bytes)
        full = asyncio.Event()
        readers = asyncio.gather(out.drain(proc.stdout, full), err.drain(proc.stderr, full))
        feeder = asyncio.ensure_future(_feed(proc.stdin, stdin))
        waiter = asyncio.ensure_future(proc.wait())
        overflow = asyncio.ensure_future(full.wait())
        killed_by: str | None = None
        try:
            await asyncio.wait(
                {waiter, overflow}, timeout=limits.wall_seconds, return_when="FIRST_COMPLETED"
            )
            if not waiter.done():
                killed_by = "output" if full.is_set() else "wall"
                await self._stop(proc, waiter)
        finally:
            if not waiter.done():  # cancelled from outside: leave nothing running
                await self._stop(proc, waiter)
            overflow.cancel()
            feeder.cancel()
            if pid1 is not None:
                await _await_namespace_end(pid1)
        if self.isolation == "none":  # no PID namespace: kill what is left in the session
            _killpg(proc.pid)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(readers, timeout=2)
        duration = time.monotonic() - start
        code = proc.returncode
        exit_code: int | None = code
        if killed_by is None and code is not None:
            # A launcher reports its child's death by signal N as status 128 + N.
            sig = -code if code < 0 else 0
            if 128 < code <= 128 + signal.SIGRTMAX and self.isolation != "none":
                sig = code - 128
            if sig > 0:
                exit_code = None
                killed_by = _SIGNAL_LIMITS.get(sig, f"signal {sig}")
        stderr = err.text()
        if killed_by is None and code not in (0, None):
            last = stderr.rstrip().rsplit("\n", 1)[-1]
            if last.startswith("MemoryError"):
                killed_by = "memory"
            elif "File too large" in last:
                killed_by = "file_size"
        return ExecutionResult(
            exit_code=None if killed_by in ("wall", "output") else exit_code,
            stdout=out.text(),
            stderr=stderr,
            timed_out=killed_by == "wall",
            killed_by=killed_by,
            truncated=out.overflow or err.overflow,
            duration_s=duration,
        )

    async def _stop(self, proc: asyncio.subprocess.Process, waiter: asyncio.Future[int]) -> None:
        """Kill the run: PID 1 of its namespace first (the kernel then kills the rest
        before the launcher can exit), then the launcher and its session."""
        if self.isolation != "none":
            for child in _children(proc.pid):
                _kill(child)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), timeout=5)
        if not waiter.done():
            _killpg(proc.pid)
            _kill(proc.pid)
            await asyncio.shield(waiter)


async def _readable(fd: int, timeout: float) -> bool:
    """Wait until ``fd`` is readable (a pidfd: its process has exited); ``False`` at the
    timeout."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await asyncio.wait_for(ready, timeout)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


async def _pid1_handle(info_fd: int) -> int | None:
    """A pidfd for the namespace's PID 1, whose host PID bubblewrap writes to ``info_fd``
    as JSON; ``None`` when it never says or PID 1 is already gone. Closes ``info_fd``."""
    data = b""
    try:
        os.set_blocking(info_fd, False)
        while b"}" not in data:
            await _readable(info_fd, 3600)
            try:
                chunk = os.read(info_fd, 4096)
            except BlockingIOError:
                continue
            if not chunk:
                break
            data += chunk
    finally:
        os.close(info_fd)
    found = re.search(rb'"child-pid"\s*:\s*(\d+)', data)
    if found is None:
        return None
    try:
        return os.pidfd_open(int(found.group(1)))
    except ProcessLookupError:
        return None


async def _await_namespace_end(pid1: asyncio.Future[int | None]) -> None:
    """Return once the namespace's PID 1 has exited, which the kernel allows only after
    every other process in the namespace is gone; kill it if it lingers."""
    try:
        pidfd = await asyncio.wait_for(asyncio.shield(pid1), timeout=5)
    except asyncio.TimeoutError:
        pid1.cancel()
        return
    if pidfd is None:
        return
    try:
        if not await _readable(pidfd, 2):
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            await _readable(pidfd, 10)
    finally:
        os.close(pidfd)


def _die_with_parent() -> None:
    """In the launcher, before exec: be killed when the caller dies (``PR_SET_PDEATHSIG``),
    so that a dying caller takes its sandboxes with it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _feed(pipe: asyncio.StreamWriter | None, data: bytes) -> None:
    if pipe is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            pipe.write(data)
            await pipe.drain()
        pipe.close()
        await pipe.wait_closed()


def _write_files(work: Path, files: Mapping[str, str]) -> None:
    """Write ``files`` under ``work``; each path must be relative and stay inside."""
    work.mkdir()
    for name, text in files.items():
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"sandbox: file path {name!r} must be relative, without '..'")
        path = work.joinpath(*rel.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


class CodeInterpreterTool:
    """The sandbox as a teacher tool: ``{"code": ...}`` runs Python and answers with the
    exit status, stdout and stderr, cut to ``max_chars``.

    Args:
        sandbox: where code runs (a default :class:`Sandbox` when omitted).
        name: the tool's name.
        max_chars: the most characters of output the answer holds.
    """

    def __init__(
        self, sandbox: Sandbox | None = None, *, name: str = "python", max_chars: int = 4000
    ) -> None:
        self.sandbox = sandbox or Sandbox()
        self.max_chars = max_chars
        self._spec = ToolSpec(
            name=name,
            description=(
                "Run a Python program in a sandbox (no network, nothing kept between calls) "
                "and return its exit status, stdout and stderr. Print what you need to see."
            ),
            parameters={
                "type": "object",
                "properties": {"code": {"type": "string", "description": "The program."}},
                "required": ["code"],
            },
        )

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def __call__(self, arguments: Mapping[str, Any]) -> str:
        """The run's report.

        Raises:
            ToolError: ``code`` is missing or empty.
        """
        code = arguments.get("code")
        if not isinstance(code, str) or not code.strip():
            raise ToolError(f"{self._spec.name}: 'code' must be a non-empty string")
        result = await self.sandbox.run_python(code)
        return result.report(self.max_chars)


__all__ = [
    "SANDBOX_UID",
    "WORKDIR",
    "CodeInterpreterTool",
    "ExecutionResult",
    "Isolation",
    "Sandbox",
    "SandboxLimits",
    "SandboxUnavailable",
]
