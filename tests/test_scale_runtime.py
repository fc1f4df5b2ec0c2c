"""Flow control (adaptive concurrency, RPM/TPM caps, the circuit breaker), asking again
after empty and cut-off answers, the response cache and cost accounting, on a virtual clock
or a scripted teacher: no network."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from genteach import Agent, AgentError, Pipeline, RunSettings, ScriptedModel, TransientModelError
from genteach.cache import CACHE_FILE, CachedModel, ResponseCache
from genteach.cost import Price, PriceTable, format_cost
from genteach.models import limits
from genteach.models.base import (
    Choice,
    Completion,
    ModelRequest,
    OutageError,
    ToolSpec,
    Usage,
    message,
)
from genteach.models.limits import AdaptiveLimiter, RateLimiter
from genteach.models.resilient import ResilientModel
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from scripted_teacher import Teacher

_real_sleep = asyncio.sleep  # the fixture below replaces asyncio.sleep itself


class Clock:
    """A virtual clock for the limiters: sleeping advances time instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await _real_sleep(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(limits.time, "monotonic", c.monotonic)
    monkeypatch.setattr(limits.asyncio, "sleep", c.sleep)
    return c


# -- adaptive concurrency ------------------------------------------------------------------
async def test_aimd_halves_on_overload_and_grows_back(clock: Clock) -> None:
    lim = AdaptiveLimiter(16, cooldown=1.0)
    assert lim.limit == 16
    await lim.acquire()
    await lim.release("overload")
    assert lim.limit == 8
    await lim.acquire()
    await lim.release("overload")  # within the cooldown: the same congestion event
    assert lim.limit == 8
    clock.now += 1.5
    await lim.acquire()
    await lim.release("overload")
    assert lim.limit == 4 and lim.state().decreases == 2
    for _ in range(5):  # about one window of successes at limit 4 adds one
        await lim.acquire()
        await lim.release("ok")
    assert lim.limit == 5
    for _ in range(200):
        await lim.acquire()
        await lim.release("ok")
    assert lim.limit == 16  # never above the ceiling
    await lim.acquire()
    await lim.release("error")  # neither success nor overload: unchanged
    assert lim.limit == 16


async def test_aimd_never_goes_below_the_floor_and_can_be_fixed(clock: Clock) -> None:
    lim = AdaptiveLimiter(4, cooldown=0.0)
    for _ in range(10):
        await lim.acquire()
        await lim.release("overload")
    assert lim.limit == 1
    fixed = AdaptiveLimiter(4, adaptive=False)
    await fixed.acquire()
    await fixed.release("overload")
    assert fixed.limit == 4
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        AdaptiveLimiter(0)


async def test_limit_bounds_calls_in_flight() -> None:
    lim = AdaptiveLimiter(3)
    in_flight = peak = 0

    async def call() -> None:
        nonlocal in_flight, peak
        await lim.acquire()
        in_flight += 1
        peak = max(peak, in_flight)
        await _real_sleep(0.001)
        in_flight -= 1
        await lim.release("ok")

    await asyncio.gather(*(call() for _ in range(20)))
    assert peak == 3 and lim.state().in_flight == 0


async def test_retry_after_pauses_every_new_call(clock: Clock) -> None:
    lim = AdaptiveLimiter(4)
    lim.pause(7.0)
    start = clock.now
    await lim.acquire()
    assert clock.now - start == pytest.approx(7.0)


# -- rate caps -----------------------------------------------------------------------------
async def test_rpm_spaces_requests_evenly(clock: Clock) -> None:
    rate = RateLimiter(rpm=120)
    start = clock.now
    for _ in range(5):
        await rate.acquire(10)
    assert clock.now - start == pytest.approx(4 * 0.5)


async def test_tpm_waits_for_the_bucket_and_settles_real_usage(clock: Clock) -> None:
    rate = RateLimiter(tpm=6000)  # 100 tokens a second, 6000 at most in the bucket
    start = clock.now
    r1 = await rate.acquire(6000)
    assert r1 == 6000 and clock.now == start  # a full bucket
    r2 = await rate.acquire(1000)
    assert clock.now - start == pytest.approx(10.0)  # 1000 tokens refill in 10 s
    rate.settle(r2, 200)  # the call used fewer tokens than reserved: 800 come back
    t = clock.now
    await rate.acquire(800)
    assert clock.now == t
    assert await rate.acquire(10**9) == 6000  # never more than a minute's worth
    with pytest.raises(ValueError, match="tpm must be > 0"):
        RateLimiter(tpm=0)


# -- ResilientModel ------------------------------------------------------------------------
class Overloaded:
    """Answers 429 (Retry-After 2 s) to the first ``fail`` calls, then succeeds."""

    model_name = "overloaded"

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.calls = 0

    async def complete(self, request: ModelRequest) -> Completion:
        self.calls += 1
        await _real_sleep(0)
        if self.calls <= self.fail:
            raise TransientModelError("429 Too Many Requests", retry_after=2.0)
        return Completion("ok", Usage(10, 5, 1))

    async def close(self) -> None: ...


async def test_resilient_backs_off_honours_retry_after_and_recovers(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genteach.models.resilient.random.uniform", lambda a, b: b)
    usages: list[Usage] = []
    model = ResilientModel(Overloaded(fail=3), concurrency=8, on_usage=usages.append)
    result = await model.complete(ModelRequest([message("user", "hi")]))
    assert result.text == "ok" and model.retries == 3
    # 8 -> 4 -> 2 -> 1 (each 429 came after the cooldown), then the success adds one.
    assert model.concurrency == 2
    assert 2.0 in clock.sleeps  # the Retry-After, not the shorter backoff
    assert usages == [Usage(10, 5, 1)]


async def test_resilient_gives_up_after_max_retries(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ResilientModel(Overloaded(fail=100), max_retries=2)
    with pytest.raises(TransientModelError, match="gave up after 2 retries: 429"):
        await model.complete(ModelRequest([message("user", "hi")]))


# -- the circuit breaker ---------------------------------------------------------------------
class Down:
    """Fails its first ``fail`` calls (``None``: every call) with ``error``, noting the
    virtual time of each call."""

    model_name = "down"

    def __init__(self, clock: Clock | None, fail: int | None, status: int | None = 503) -> None:
        self.clock = clock
        self.fail = fail
        self.status = status
        self.times: list[float] = []

    async def complete(self, request: ModelRequest) -> Completion:
        self.times.append(self.clock.now if self.clock else 0.0)
        await _real_sleep(0)
        if self.fail is None or len(self.times) <= self.fail:
            raise TransientModelError(f"HTTP {self.status}: down", status=self.status)
        return Completion("ok", Usage(1, 1, 1))

    async def close(self) -> None: ...


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


async def test_breaker_pauses_probes_at_growing_intervals_and_closes(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genteach.models.resilient.random.uniform", lambda a, b: b)
    down = Down(clock, fail=12)
    model = ResilientModel(
        down, max_retries=2, breaker_threshold=3, probe_interval=1.0, max_probe_interval=4.0
    )
    result = await model.complete(ModelRequest([message("user", "hi")]))
    assert result.text == "ok" and not model.breaker.is_open
    # two retries with backoff (1 s, 2 s), the third failure opens the breaker; then one
    # probe after 1 s, 2 s, then every 4 s, none of them spending a retry
    assert gaps(down.times) == [1, 2, 1, 2, 4, 4, 4, 4, 4, 4, 4, 4]
    assert model.retries == 2 and model.breaker.openings == 1


async def test_breaker_deadline_fails_every_call_with_an_outage_error(clock: Clock) -> None:
    model = ResilientModel(
        Down(clock, fail=None),
        base_delay=1.0,
        breaker_threshold=3,
        max_probe_interval=4.0,
        outage_deadline=10.0,
    )
    with pytest.raises(OutageError, match=r"failing for 10s, past the outage deadline of 10s"):
        await model.complete(ModelRequest([message("user", "hi")]))
    assert "(last error: HTTP 503: down)" in str(model.breaker.dead)
    before = len(model.client.times)  # type: ignore[attr-defined]
    with pytest.raises(OutageError):
        await model.complete(ModelRequest([message("user", "again")]))
    assert len(model.client.times) == before, "nothing more is sent"  # type: ignore[attr-defined]


async def test_rate_limits_do_not_open_the_breaker(clock: Clock) -> None:
    model = ResilientModel(Down(clock, fail=6, status=429), max_retries=8, breaker_threshold=3)
    assert (await model.complete(ModelRequest([message("user", "hi")]))).text == "ok"
    assert model.breaker.openings == 0 and model.retries == 6


async def test_one_probe_at_a_time_and_every_waiting_call_resumes() -> None:
    """Real time, 6 calls at once against an endpoint down for 0.3 s."""

    class Outage:
        model_name = "outage"

        def __init__(self) -> None:
            self.until = asyncio.get_running_loop().time() + 0.3
            self.in_flight = self.peak_while_down = 0

        async def complete(self, request: ModelRequest) -> Completion:
            self.in_flight += 1
            try:
                await _real_sleep(0.01)
                if asyncio.get_running_loop().time() < self.until:
                    self.peak_while_down = max(self.peak_while_down, self.in_flight)
                    raise TransientModelError("HTTP 502: down", status=502)
                return Completion("ok", Usage(1, 1, 1))
            finally:
                self.in_flight -= 1

        async def close(self) -> None: ...

    outage = Outage()
    model = ResilientModel(
        outage, max_retries=1, base_delay=0.01, breaker_threshold=2, max_probe_interval=0.05
    )
    results = await asyncio.gather(
        *(model.complete(ModelRequest([message("user", str(i))])) for i in range(6))
    )
    assert [r.text for r in results] == ["ok"] * 6
    assert model.breaker.openings >= 1 and not model.breaker.is_open


# -- asking again after an empty or cut-off answer ------------------------------------------
class Reply(BaseModel):
    answer: str


class Question(BaseModel):
    question: str


class Answerer(Agent[Question, Reply]):
    input_model = Question
    output_model = Reply


@pytest.fixture
def answerer(tmp_path: Path) -> Answerer:
    d = tmp_path / "prompts"
    (d / "t").mkdir(parents=True)
    (d / "t" / "system.j2").write_text('Answer as JSON: {"answer": ...}.\n')
    (d / "t" / "user.j2").write_text("{{ question }}\n")
    lib = PromptLibrary([d])
    return Answerer(
        "answerer", prompts=lib, system_template="t/system.j2", user_template="t/user.j2"
    )


GOOD = '{"answer": "Paris"}'


def cut(text: str) -> Completion:
    return Completion(text, Usage(1, 1, 1), finish_reason="length")


async def test_empty_answers_are_asked_again_with_other_seeds_and_spend_no_repair(
    answerer: Answerer,
) -> None:
    model = ScriptedModel(["", "  ", GOOD])
    result = await answerer.run(model, Question(question="Capital of France?"), seed=10)
    assert result.output.answer == "Paris" and result.attempts == 3
    assert [r.seed for r in model.requests] == [10, 10 + 104_729, 10 + 2 * 104_729]
    assert all(r.messages == model.requests[0].messages for r in model.requests)


async def test_past_its_budget_an_empty_answer_is_a_malformed_one(answerer: Answerer) -> None:
    model = ScriptedModel(["", "", "", "", "", "", GOOD])
    result = await answerer.run(model, Question(question="Capital of France?"), seed=10)
    assert result.attempts == 7
    repair = model.requests[-1]
    assert repair.seed == 11 and len(repair.messages) == 4  # shown the empty answer + why
    assert "the answer was empty" in repair.messages[-1]["content"]
    model = ScriptedModel([""] * 12)
    with pytest.raises(AgentError, match="after 3 attempts: the answer was empty"):
        await answerer.run(model, Question(question="?"))
    assert len(model.calls) == 6 + 1 + 1, "five more empties, then one call per repair"


async def test_a_cut_off_answer_is_asked_again_once_then_repaired(answerer: Answerer) -> None:
    model = ScriptedModel([cut('{"answer": "Pa'), GOOD])
    result = await answerer.run(model, Question(question="Capital of France?"), seed=3)
    assert result.output.answer == "Paris" and result.attempts == 2
    assert [r.seed for r in model.requests] == [3, 3 + 104_729]
    model = ScriptedModel([cut('{"answer": "Pa'), cut('{"answer": "P'), GOOD])
    result = await answerer.run(model, Question(question="Capital of France?"), seed=3)
    assert result.attempts == 3
    assert "cut off at the token limit" in model.requests[-1].messages[-1]["content"]
    with pytest.raises(AgentError, match="cut off at the token limit"):
        await answerer.run(ScriptedModel([cut("{")] * 4), Question(question="?"))


# -- the response cache --------------------------------------------------------------------
def test_request_key_covers_everything_that_shapes_the_answer() -> None:
    msgs = [message("system", "s"), message("user", "u")]
    req = ModelRequest(msgs, temperature=0.7, max_tokens=100, seed=1)
    base = req.key("m")
    assert base == ModelRequest(list(msgs), temperature=0.7, max_tokens=100, seed=1).key("m")
    variants = [
        req.key("other"),
        req.with_(messages=msgs[:1]).key("m"),
        req.with_(temperature=0.2).key("m"),
        req.with_(max_tokens=101).key("m"),
        req.with_(seed=2).key("m"),
        req.with_(grammar="start: /x/").key("m"),
        req.with_(response_schema=Seed).key("m"),
        req.with_(stop=["Observation:"]).key("m"),
        req.with_(n=2).key("m"),
        req.with_(tools=[ToolSpec("f")]).key("m"),
        req.with_(messages=[*msgs[:1], message("user", "u", trained=False)]).key("m"),
    ]
    assert len({base, *variants}) == 12


async def test_cached_model_answers_repeats_from_disk(tmp_path: Path) -> None:
    inner = ScriptedModel(["first", "second"])
    cache = ResponseCache(tmp_path / "c.sqlite")
    model = CachedModel(inner, cache)
    a = await model.complete(ModelRequest([message("user", "q")], seed=1))
    b = await model.complete(ModelRequest([message("user", "q")], seed=1))
    c = await model.complete(ModelRequest([message("user", "q")], seed=2))
    assert (a.text, b.text, c.text) == ("first", "first", "second")
    assert not a.cached and b.cached and b.usage == a.usage
    assert (model.hits, model.misses, len(inner.calls)) == (1, 2, 2)
    cache.close()
    reopened = CachedModel(ScriptedModel([]), ResponseCache(tmp_path / "c.sqlite"))
    again = await reopened.complete(ModelRequest([message("user", "q")], seed=1))
    assert again.text == "first" and again.cached


async def test_empty_and_cut_off_answers_are_never_cached(tmp_path: Path) -> None:
    inner = ScriptedModel(["", cut("half"), "whole", "whole again"])
    model = CachedModel(inner, ResponseCache(tmp_path / "c.sqlite"))
    ask = ModelRequest([message("user", "q")], seed=1)
    assert (await model.complete(ask)).text == ""
    assert (await model.complete(ask)).text == "half"
    assert (await model.complete(ask)).text == "whole"
    assert (await model.complete(ask)).cached and len(model.cache) == 1
    assert model.misses == 3 and model.hits == 1


def test_cache_keeps_tool_calls_and_samples_and_skips_incomplete_old_rows(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    call = {"id": "c1", "name": "f", "arguments": "{}"}
    calls = Completion("", Usage(3, 2, 1), "m", "tool_calls", tool_calls=(call,))
    samples = Completion(
        "a", Usage(3, 4, 1), "m", choices=(Choice("a"), Choice("b", "stop", (call,)))
    )
    cache.put("k1", calls)
    cache.put("k2", samples)
    assert cache.get("k1") == Completion(
        "", Usage(3, 2, 1), "m", "tool_calls", cached=True, tool_calls=(call,)
    )
    got = cache.get("k2")
    assert got is not None and got.choices == samples.choices and got.cached
    cut_sample = Completion("a", Usage(), "m", choices=(Choice("a"), Choice("b", "length")))
    cache.put("k3", cut_sample)
    assert cache.get("k3") is None
    cache.close()
    # a cache written before this version: no `extra` column, an empty answer stored
    import sqlite3

    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as db:
        db.execute(
            "CREATE TABLE responses (key TEXT PRIMARY KEY, text TEXT NOT NULL, finish_reason "
            "TEXT NOT NULL, model TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, "
            "completion_tokens INTEGER NOT NULL, created REAL NOT NULL)"
        )
        db.execute("INSERT INTO responses VALUES ('e', '', 'stop', 'm', 1, 0, 0)")
        db.execute("INSERT INTO responses VALUES ('g', 'good', 'stop', 'm', 1, 1, 0)")
    reopened = ResponseCache(old)
    assert reopened.get("e") is None
    assert reopened.get("g") == Completion("good", Usage(1, 1, 1), "m", cached=True)
    reopened.put("t", calls)
    assert reopened.get("t") is not None and len(reopened) == 3
    reopened.close()


def seeds(n: int) -> list[Seed]:
    return [
        Seed.from_text(f"Document {i}. " + "The tunnel opened in May and traffic fell. " * 12)
        for i in range(n)
    ]


def test_redoing_finished_steps_costs_no_model_call(tmp_path: Path) -> None:
    """A unit redone after a crash (its progress line lost) replays every answer from the
    cache: the teacher sees no call. Its earlier lines are dropped and written again, the
    same ones: nothing is lost or written twice."""
    out = tmp_path / "out"
    settings = RunSettings(seed=3, overrides={"suggestions": 1, "tasks_per_type": 1})
    first = ScriptedModel(Teacher())
    s1 = Pipeline(first, skills=["rc"], settings=settings).run(seeds(2), out)
    assert s1.records > 0 and s1.cached_calls == 0 and len(first.calls) == s1.usage.calls
    (out / "progress.jsonl").write_text("")  # as if killed before any unit was marked done
    second = ScriptedModel(Teacher())
    s2 = Pipeline(second, skills=["rc"], settings=settings).run(seeds(2), out)
    assert second.calls == [] and s2.usage.calls == 0
    assert s2.cached_calls == s1.usage.calls
    assert s2.records == s1.records and s2.duplicates == 0
    ids = [json.loads(x)["id"] for x in (out / "records.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == s1.records


def test_fresh_clears_the_cache_and_cache_can_be_off(tmp_path: Path) -> None:
    out = tmp_path / "out"
    settings = RunSettings(overrides={"suggestions": 1, "tasks_per_type": 1})
    Pipeline(ScriptedModel(Teacher()), skills=["rc"], settings=settings).run(seeds(1), out)
    assert (out / CACHE_FILE).exists()
    again = ScriptedModel(Teacher())
    Pipeline(again, skills=["rc"], settings=settings).run(seeds(1), out, fresh=True)
    assert again.calls  # nothing answered from the old cache
    off = RunSettings(cache=False, overrides={"suggestions": 1, "tasks_per_type": 1})
    Pipeline(ScriptedModel(Teacher()), skills=["rc"], settings=off).run(seeds(1), tmp_path / "b")
    assert not (tmp_path / "b" / CACHE_FILE).exists()


# -- cost ----------------------------------------------------------------------------------
def test_price_lookup_exact_prefix_provider_and_unknown() -> None:
    table = PriceTable()
    assert table.lookup("gpt-4o") == Price(2.50, 10.00)
    assert table.lookup("gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)  # longest prefix
    assert table.lookup("openai/gpt-4.1-mini") == Price(0.40, 1.60)
    assert table.lookup("my-llama") is None
    assert table.lookup("local:qwen2.5-coder-0.5b-instruct") == Price(0.0, 0.0)  # embedded
    assert table.cost("my-llama", Usage(10, 10, 1)) is None
    assert table.cost("gpt-4o", Usage(1_000_000, 100_000, 3)) == pytest.approx(2.50 + 1.00)
    assert format_cost(None) == "unknown" and format_cost(3.5) == "$3.50"
    assert format_cost(0.00123) == "$0.0012"


def test_prices_file_overrides_and_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "prices.yaml"
    good.write_text("my-llama: {input: 0.1, output: 0.2}\ngpt-4o: {input: 1, output: 2}\n")
    table = PriceTable.load(good)
    assert table.lookup("my-llama") == Price(0.1, 0.2)
    assert table.lookup("gpt-4o") == Price(1.0, 2.0)
    assert table.lookup("gpt-4.1") is not None  # built-ins kept
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpt-4o: {input: 1}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: gpt-4o: expected \{input"):
        PriceTable.load(bad)
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        PriceTable.load(tmp_path / "missing.yaml")


def test_run_summary_reports_cost(tmp_path: Path) -> None:
    settings = RunSettings(overrides={"suggestions": 1, "tasks_per_type": 1})
    client = ScriptedModel(Teacher(), name="gpt-4o-mini")
    seen: list[float | None] = []
    summary = Pipeline(client, skills=["rc"], settings=settings).run(
        seeds(1), tmp_path / "out", progress=lambda p: seen.append(p.cost)
    )
    expected = PriceTable().cost("gpt-4o-mini", summary.usage)
    assert summary.cost == pytest.approx(expected) and summary.cost and summary.cost > 0
    assert seen[-1] == pytest.approx(expected)
    assert f"cost {format_cost(summary.cost)}" in str(summary)


# -- dry run -------------------------------------------------------------------------------
def test_dry_run_counts_calls_from_the_pipeline_settings_and_calls_nothing() -> None:
    from genteach.estimate import estimate_run

    settings = RunSettings(overrides={"suggestions": 2, "tasks_per_type": 1, "rounds": 1})
    client = ScriptedModel([], name="gpt-4o")
    pipe = Pipeline(client, skills=["rc", "text_modification"], settings=settings)
    est = estimate_run(pipe, seeds(3))
    assert client.calls == [] and est.seeds == 3 and est.units == 6
    rc = next(s for s in est.skills if s.skill == "rc")
    # Per rc unit: the transformer (unless identity, by weight), one call per task type
    # drawn, per task a suggester + editor call, one answer per task (original + 2 refined).
    skill = pipe.skills[0]
    weights = [t.weight for t in skill.transformers]
    calling = sum(t.weight for t in skill.transformers if t.agent != "identity") / sum(weights)
    types = pipe.flows["rc"][1].settings.task_types_per_seed  # type: ignore[attr-defined]
    per_unit = calling + types + 2 * types + 3 * types
    assert rc.calls == pytest.approx(3 * per_unit)
    assert rc.cost is not None and rc.cost > 0 and est.cost is not None
    assert "uncalibrated" in str(est) and "gpt-4o" in str(est)


def test_dry_run_calibrated_from_an_earlier_run(tmp_path: Path) -> None:
    from genteach.estimate import estimate_run

    settings = RunSettings(overrides={"suggestions": 1, "tasks_per_type": 1})
    out = tmp_path / "pilot"
    pilot = Pipeline(ScriptedModel(Teacher(), name="my-llama"), skills=["rc"], settings=settings)
    summary = pilot.run(seeds(2), out)
    est = estimate_run(pilot, seeds(10), calibration=[out])
    (rc,) = est.skills
    assert rc.calibrated_units == 2 and rc.units == 10
    assert rc.calls == pytest.approx(5 * summary.usage.calls)
    assert rc.prompt_tokens == pytest.approx(5 * summary.usage.prompt_tokens)
    assert est.cost is None and "no price known for my-llama" in str(est)
    with pytest.raises(FileNotFoundError, match="calibration"):
        estimate_run(pilot, seeds(1), calibration=[tmp_path / "nope"])


async def test_usage_a_server_leaves_out_is_counted() -> None:
    from genteach.tokens import count_message_tokens, tokenizer_for

    class NoUsage:
        model_name = "gpt-4"

        async def complete(self, request: ModelRequest) -> Completion:
            return Completion("Paris is the capital of France.", Usage(0, 0, 1))

        async def close(self) -> None: ...

    msgs = [message("system", "Answer briefly."), message("user", "Capital of France?")]
    result = await ResilientModel(NoUsage()).complete(ModelRequest(msgs))
    tok = tokenizer_for("gpt-4")
    assert result.usage == Usage(count_message_tokens(msgs, tok), 7, 1)
    assert tok.count("Paris is the capital of France.") == 7
    kept = await ResilientModel(NoUsage(), count_missing_usage=False).complete(ModelRequest(msgs))
    assert kept.usage == Usage(0, 0, 1)


def test_the_example_prices_file_loads() -> None:
    table = PriceTable.load(Path(__file__).resolve().parent.parent / "examples" / "prices.yaml")
    assert table.lookup("Qwen/Qwen2.5-72B-Instruct") == Price(0.35, 0.35)
    assert table.lookup("gpt-4o-2024-08-06") == Price(1.25, 5.00)


def test_one_run_per_folder_and_unlockable_filesystems_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import errno
    import fcntl

    from genteach.pipeline import LOCK_FILE

    out = tmp_path / "out"
    out.mkdir()
    settings = RunSettings(overrides={"suggestions": 1, "tasks_per_type": 1})
    with (out / LOCK_FILE).open("w") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # another run holds the folder
        with pytest.raises(ValueError, match="another genteach run is writing to this folder"):
            Pipeline(ScriptedModel(Teacher()), skills=["rc"], settings=settings).run(seeds(1), out)

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    pipe = Pipeline(ScriptedModel(Teacher()), skills=["rc"], settings=settings)
    assert pipe.run(seeds(1), out).records > 0
    assert "cannot lock the output folder" in caplog.text
