"""Run ``transformers serve`` on 127.0.0.1 for the length of a ``with`` block.

:class:`TransformersServer` starts an OpenAI-compatible server for a Hugging Face model
folder (by default the embedded model, see :mod:`genteach.models.local_assets`) as a child
process in its own process group, offline (``HF_HUB_OFFLINE=1``), waits until it answers
``GET /health``, and stops it (SIGTERM, then SIGKILL) on exit. Point any OpenAI client
at :attr:`~TransformersServer.openai_base_url` and send :attr:`~TransformersServer.model`
as the model name (``transformers serve`` names a served folder by its path).

``--continuous-batching`` (on by default here) lets the server batch concurrent requests;
on 2 CPU cores 8 concurrent requests gave ~5x the tokens/s of the plain server. The
server ignores ``response_format``: validate the output and retry on the caller's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO

from genteach.models.local_assets import default_model_dir

_LOG_TAIL = 4000


class ServerError(RuntimeError):
    """The server did not start (its log tail is in the message) or could not be reached."""


class TransformersServer:
    """A ``transformers serve`` child process bound to 127.0.0.1.

    Args:
        model: HF-format model folder; ``None`` uses the embedded model.
        port: TCP port; ``None`` picks a free one.
        continuous_batching: pass ``--continuous-batching``.
        cb_num_blocks: KV-cache blocks for continuous batching (``--cb-num-blocks``; 256
            tokens each). Bounded by default: left to itself the server sizes the cache from
            free memory and took ~11 GiB of RAM on a CPU machine. ``None`` leaves it so.
        startup_timeout: seconds to wait for ``/health`` to answer.
        stop_timeout: seconds between SIGTERM and SIGKILL on exit.
        extra_args: more ``transformers serve`` options (e.g. ``["--dtype", "bfloat16"]``).
        log_path: where the server's stdout and stderr go; default a temporary file.
        cache_dir: cache for the embedded model.

    Example:
        >>> with TransformersServer() as server:  # doctest: +SKIP
        ...     client = OpenAIChatCompletionClient(
        ...         model=server.model, base_url=server.openai_base_url, api_key="x", ...)
    """

    host = "127.0.0.1"

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        port: int | None = None,
        continuous_batching: bool = True,
        cb_num_blocks: int | None = 128,
        startup_timeout: float = 180.0,
        stop_timeout: float = 10.0,
        extra_args: tuple[str, ...] | list[str] = (),
        log_path: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self._model_arg = model
        self._cache_dir = cache_dir
        self.port = port
        self.continuous_batching = continuous_batching
        self.cb_num_blocks = cb_num_blocks
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.extra_args = list(extra_args)
        self.log_path = log_path
        self._owns_log = log_path is None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._model: str | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], TransformersServer] | None = (
            None
        )

    # ----------------------------------------------------------------- properties
    @property
    def model(self) -> str:
        """The model name clients must send: the served folder's path."""
        if self._model is None:
            raise ServerError("server not started")
        return self._model

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no ``/v1``)."""
        if self.port is None:
            raise ServerError("server not started")
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The base URL for OpenAI clients: :attr:`base_url` + ``/v1``."""
        return self.base_url + "/v1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The command line that :meth:`start` runs."""
        cmd = [
            sys.executable,
            "-m",
            "transformers.cli.transformers",
            "serve",
            self.model,
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        if self.continuous_batching:
            cmd.append("--continuous-batching")
            if self.cb_num_blocks is not None:
                cmd += ["--cb-num-blocks", str(self.cb_num_blocks)]
        return cmd + self.extra_args

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> TransformersServer:
        """Start the server and block until it answers, or raise :class:`ServerError`."""
        if self._process is not None:
            raise ServerError("server already started")
        folder = (
            Path(self._model_arg)
            if self._model_arg is not None
            else default_model_dir(self._cache_dir)
        )
        if not (folder / "config.json").is_file():
            raise ServerError(f"{folder} is not a Hugging Face model folder (no config.json)")
        self._model = str(folder)
        if self.port is None:
            self.port = _free_port(self.host)
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="genteach-serve-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self._log = self.log_path.open("wb")
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=(os.name == "posix"),  # own process group, killed as one
        )
        # If the caller forgets stop() (or the interpreter exits), still kill the group.
        self._finalizer = weakref.finalize(self, _kill_group, self._process)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after ``stop_timeout``."""
        proc, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(self.stop_timeout)
        if proc is not None and os.name == "posix":
            # Children (uvicorn workers) may outlive the leader; clear the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._owns_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def log_tail(self, chars: int = _LOG_TAIL) -> str:
        """The end of the server's log (empty if there is none)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()[-chars:]
        return data.decode("utf-8", errors="replace")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        # /health answers once the preloaded model is in memory. (/v1/models would do too,
        # but in transformers 5.23 it fails when the HF hub cache folder does not exist.)
        url = self.base_url + "/health"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
        while True:
            proc = self._process
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise ServerError(
                    f"transformers serve exited with code {code} before it was ready; "
                    f"log tail:\n{self.log_tail()}"
                )
            try:
                with opener.open(url, timeout=2.0) as response:
                    if response.status == 200:
                        json.loads(response.read() or b"{}")
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(
                    f"transformers serve not ready after {self.startup_timeout:.0f}s at {url}; "
                    f"log tail:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    # ----------------------------------------------------------------- context managers
    def __enter__(self) -> TransformersServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> TransformersServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        _signal_group(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        elif sig == signal.SIGTERM:  # pragma: no cover - Windows
            proc.terminate()
        else:  # pragma: no cover - Windows
            proc.kill()
    except ProcessLookupError:
        pass


__all__ = ["ServerError", "TransformersServer"]
