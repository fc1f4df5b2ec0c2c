"""The llama.cpp client's worker loop with a fake engine (no llama.cpp, no model): calls
share steps and finish independently (continuous batching), wait for a free slot, give
their slot back when cancelled, and time out on lack of progress only."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from genteach.models.base import ModelRequest, TransientModelError, message
from genteach.models.llamacpp import LlamaCppModel, _common_prefix, _Sequence
from genteach.models.local import _Request, _Result
from genteach.models.resilient import ResilientModel


class FakeEngine:
    """Stands in for llama.cpp: a prompt is ``prompt_len`` tokens, each step takes
    ``step_seconds`` and gives every generating sequence one token; a call asking for
    ``max_tokens`` ends after that many."""

    def __init__(self, *, slots: int, prompt_len: int = 10, step_seconds: float = 0.01):
        self.free_slots = list(range(slots))
        self.prompt_len = prompt_len
        self.step_seconds = step_seconds
        self.steps: list[list[int]] = []  # seq ids of each step
        self.released: list[int] = []
        self.stuck = threading.Event()

    def start(self, row: _Request) -> _Sequence:
        return _Sequence(row, [1] * self.prompt_len, row.max_new_tokens, sampler=None)

    def place(self, seq: _Sequence, running: list[_Sequence]) -> int:
        seq.seq_id = self.free_slots.pop(0)
        return 0

    def decode(
        self, running: list[_Sequence], chunk: int
    ) -> tuple[list[tuple[_Sequence, int]], int]:
        while self.stuck.is_set():
            time.sleep(0.01)
        time.sleep(self.step_seconds)
        self.steps.append([s.seq_id for s in running])
        wanted, read = [], 0
        for i, s in enumerate(running):
            if s.reading:
                read += len(s.prompt) - s.fed
                s.fed = len(s.prompt)
            wanted.append((s, i))
        return wanted, read

    def advance(self, seq: _Sequence, index: int) -> _Result | None:
        seq.out.append(7)
        if len(seq.out) >= seq.budget:
            return _Result(f"{seq.budget} tokens", len(seq.prompt), seq.budget, "length")
        return None

    def retire(self, seq: _Sequence) -> None:
        self.release(seq)

    def release(self, seq: _Sequence) -> None:
        self.released.append(seq.seq_id)
        self.free_slots.append(seq.seq_id)

    def free(self) -> None:
        pass


def fake_client(engine: FakeEngine, **kwargs: Any) -> LlamaCppModel:
    client = LlamaCppModel(constrained=False, parallel=len(engine.free_slots), **kwargs)
    client._engine = engine  # type: ignore[assignment]
    return client


def ask(tokens: int) -> ModelRequest:
    return ModelRequest([message("user", "hi")], max_tokens=tokens)


async def test_a_short_call_is_not_held_back_by_a_long_one() -> None:
    engine = FakeEngine(slots=4)
    client = fake_client(engine)
    long = asyncio.create_task(client.complete(ask(60)))
    await asyncio.sleep(0.05)
    short = await client.complete(ask(3))
    assert short.text == "3 tokens" and not long.done()
    assert (await long).text == "60 tokens"
    assert max(len(ids) for ids in engine.steps) == 2  # both advanced in the same steps
    assert client.stats.requests == 2 and client.stats.largest_batch == 2
    await client.close()


async def test_calls_beyond_the_slots_wait_their_turn() -> None:
    engine = FakeEngine(slots=2)
    client = fake_client(engine)
    results = await asyncio.gather(*[client.complete(ask(5 + i)) for i in range(5)])
    assert [r.text for r in results] == [f"{5 + i} tokens" for i in range(5)]
    assert max(len(ids) for ids in engine.steps) == 2
    assert all(set(ids) <= {0, 1} for ids in engine.steps)
    await client.close()


async def test_a_cancelled_call_gives_its_place_back() -> None:
    engine = FakeEngine(slots=1)
    client = fake_client(engine)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.complete(ask(10_000)), 0.1)
    answer = await asyncio.wait_for(client.complete(ask(2)), 5)
    assert answer.text == "2 tokens" and 0 in engine.released
    await client.close()


async def test_a_call_making_progress_outlives_every_timeout() -> None:
    engine = FakeEngine(slots=8, step_seconds=0.02)
    local = fake_client(engine, stall_timeout=0.2)
    model = ResilientModel(local, timeout=0.1)  # a wall-clock timeout it must not apply
    assert model.timeout is None
    started = time.monotonic()
    completion = await model.complete(ask(40))
    assert time.monotonic() - started >= 0.8 and completion.text == "40 tokens"
    assert local.tokens_made >= 40 and local.tokens_read == 10
    await local.close()


async def test_a_stalled_call_fails_as_transient() -> None:
    engine = FakeEngine(slots=8)
    engine.stuck.set()
    client = fake_client(engine, stall_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TransientModelError, match=r"made no new token for 0\.\ds"):
        await client.complete(ask(5))
    assert time.monotonic() - started < 2.0
    engine.stuck.clear()
    await client.close()


async def test_closing_fails_waiting_calls() -> None:
    engine = FakeEngine(slots=1, step_seconds=0.05)
    client = fake_client(engine)
    calls = [asyncio.create_task(client.complete(ask(1000))) for _ in range(3)]
    await asyncio.sleep(0.2)
    await client.close()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, Exception) and "closed" in str(o) for o in outcomes), outcomes


def test_common_prefix() -> None:
    assert _common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert _common_prefix([1, 2], [1, 2, 3]) == 2
    assert _common_prefix([], [1]) == 0


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="parallel"):
        LlamaCppModel(parallel=0)
    with pytest.raises(ValueError, match="slot_context"):
        LlamaCppModel(slot_context=8)
