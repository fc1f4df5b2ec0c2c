"""The embedded model on the default engine with the CPU taken by other work: calls that
make progress are never cut short, whatever their length; and a run on it stops within
seconds at Ctrl-C. The CPU hogs are child processes that end by themselves."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from genteach.models.base import ModelRequest, message
from genteach.models.local import local_model_client
from genteach.models.resilient import ResilientModel

pytestmark = pytest.mark.slow

SEEDS = Path(__file__).resolve().parent.parent / "examples" / "seeds"
HOG_SECONDS = 300  # an upper bound: the fixture kills them when the test ends


@pytest.fixture
def cpu_hogs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two busy processes (one per core here), each ending after ``HOG_SECONDS`` at most."""
    code = (
        f"import time\nend = time.monotonic() + {HOG_SECONDS}\nwhile time.monotonic() < end: pass"
    )
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    yield hogs
    for hog in hogs:
        hog.kill()
        hog.wait()


async def test_calls_outlast_their_timeouts_beside_cpu_hogs(
    cpu_hogs: list[subprocess.Popen[bytes]],
) -> None:
    pytest.importorskip("llama_cpp")
    local = local_model_client(stall_timeout=20.0)
    await local.load()
    # A wall-clock timeout far shorter than the calls: the local engine must not get one.
    model = ResilientModel(local, timeout=2.0, max_retries=0)
    started = time.monotonic()
    answers = await asyncio.gather(
        *[
            model.complete(
                ModelRequest(
                    [
                        message(
                            "user", f"Write a long story about a lighthouse keeper named {name}."
                        )
                    ],
                    max_tokens=96,
                    temperature=0.7,
                    seed=seed,
                )
            )
            for seed, name in enumerate(("Ada", "Bram", "Cleo", "Dov"))
        ]
    )
    took = time.monotonic() - started
    assert all(hog.poll() is None for hog in cpu_hogs), "the hogs ended before the calls did"
    assert took > 2.0 * 3  # the calls ran far beyond the wall-clock timeout
    assert all(a.usage.completion_tokens > 20 and a.text for a in answers), [
        (a.usage.completion_tokens, a.text[:80]) for a in answers
    ]
    assert local.tokens_made >= sum(a.usage.completion_tokens for a in answers) - 4
    await local.close()


def test_ctrl_c_stops_a_run_on_the_embedded_model_within_seconds(tmp_path: Path) -> None:
    """The first Ctrl-C ends a run on the default engine within seconds (exit 130), in
    the middle of its model calls: the engine stops at its next step."""
    pytest.importorskip("llama_cpp")
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GENTEACH_"))}
    env["PYTHONUNBUFFERED"] = "1"
    for name in ("GENTEACH_CACHE", "GENTEACH_LOCAL_MODEL"):  # the model and its cache
        if name in os.environ:
            env[name] = os.environ[name]
    args = ["generate", "--seeds", str(SEEDS), "--out", str(out), "--limit", "3", "--no-progress"]
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "genteach", *args], stdout=fh, stderr=subprocess.STDOUT, env=env
        )
    try:
        time.sleep(20)  # the model is loaded and reading its first prompts
        assert proc.poll() is None, log.read_text()[-2000:]
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert proc.returncode == 130, text[-2000:]
    assert took < 10, f"{took:.1f} s from Ctrl-C to the end"
    assert "run the same command to resume" in text
