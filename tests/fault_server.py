"""A fault-injecting OpenAI-compatible chat server on 127.0.0.1, for resilience tests.

It answers ``POST /v1/chat/completions`` with a router (by default :class:`StableTeacher`,
a scripted teacher whose answers depend only on the request's content) and injects the
faults of a :class:`FaultPlan`: rate limits with Retry-After, 403 and 5xx statuses, hangs
past the client's timeout, truncated or malformed bodies, empty or null content, answers
cut off at the token limit, answers without ``choices``, and an outage (every request
fails for a while). Faults are deterministic: explicit ones by request number, the rest
drawn per distinct request body from a seeded RNG, so a run's outcome does not depend on
the order in which concurrent requests arrive. A server given an ``api_key`` answers 401
to any other key, and one given a ``model`` answers 404 (as vLLM does) to any other.

Example:
    >>> with fault_server(plan=FaultPlan(rates={"500": 0.3})) as srv:  # doctest: +SKIP
    ...     run_against(srv.url)
    ...     assert srv.faults["500"] > 0
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from genteach.models.base import Message
from openai_stub import completion_body
from scripted_teacher import PASSAGE, Teacher

Router = Callable[[Sequence[Message]], str]

#: Every fault kind a plan may name.
FAULT_KINDS = (
    "429",  # rate limited, with Retry-After (FaultPlan.retry_after)
    "400",  # bad request: a permanent error, not worth retrying
    "403",  # forbidden: the run cannot go on
    "500",
    "502",
    "503",
    "hang",  # no answer until the server stops (or hang_seconds pass), then the socket closes
    "truncated",  # 200, Content-Length longer than the bytes sent, then the socket closes
    "malformed",  # 200 with a body that is not JSON
    "empty",  # 200, message content ""
    "null",  # 200, message content null
    "cutoff",  # 200, the answer's first half, finish_reason "length"
    "no_choices",  # 200, a completion object without "choices"
)
TRANSIENT_KINDS = ("429", "500", "502", "503", "hang", "truncated")


@dataclass(frozen=True)
class Outage:
    """The endpoint goes down once: from the request that follows ``after`` answered
    requests, every request gets fault ``kind`` for ``seconds``."""

    after: int
    seconds: float
    kind: str = "503"


@dataclass
class FaultPlan:
    """Which requests fail, and how.

    Attributes:
        rates: fault kind -> probability that a distinct request body is given that fault
            (drawn once per body from ``seed``, so retries of one request share its fate).
        attempts: how many attempts of one request body get its fault before it is
            answered normally (None: every attempt, i.e. the request never succeeds).
        by_number: 1-based request number -> fault kind, for that request only (wins over
            ``rates``; depends on arrival order, so meant for sequential clients).
        seed: seed of the per-body draw.
        retry_after: Retry-After header (seconds) sent with 429s; None sends none.
        latency: seconds every request waits before it is answered (or fails).
        hang_seconds: upper bound of a hang; a hang also ends when the server stops.
        outage: every request fails for a while in the middle of the run (wins over the
            rest).
    """

    rates: Mapping[str, float] = field(default_factory=dict)
    attempts: int | None = 1
    by_number: Mapping[int, str] = field(default_factory=dict)
    seed: int = 0
    retry_after: float | None = 0
    latency: float = 0.0
    hang_seconds: float = 30.0
    outage: Outage | None = None

    def __post_init__(self) -> None:
        kinds = set(self.rates) | set(self.by_number.values())
        if self.outage is not None:
            kinds.add(self.outage.kind)
        unknown = kinds - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")

    def fate(self, key: str) -> str | None:
        """The fault drawn for a request body (by its key), or None."""
        draw = random.Random(f"{self.seed}:{key}").random()
        edge = 0.0
        for kind in sorted(self.rates):
            edge += self.rates[kind]
            if draw < edge:
                return kind
        return None


def request_key(body: Mapping[str, Any]) -> str:
    """A stable key of a request body: equal bodies (retries) share it."""
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _tag(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:8]


class StableTeacher(Teacher):
    """:class:`scripted_teacher.Teacher` whose answers depend only on the request, never
    on call order or counts, and differ from seed to seed: the same seeds give the same
    record ids in every run, however concurrent calls interleave, and no two units make
    the same record. (The parent's editor and tool-task answers number themselves by a
    per-process call counter.)

    Args:
        salt: mixed into every answer: another salt stands for a teacher that samples
            other answers to the same requests.
        distinct_seeds: False gives every seed the same transformed passage, so units of
            different seeds can make the same record.
    """

    def __init__(self, *, salt: str = "", distinct_seeds: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.salt = salt
        self.distinct_seeds = distinct_seeds

    def _head(self, messages: Sequence[Message]) -> str:
        # system + first user turn: a repair request keeps the tag of the first attempt
        return _tag(self.salt, *(m["content"] for m in messages[:2]))

    def transform(self, messages: Sequence[Message]) -> str:
        tag = self._head(messages) if self.distinct_seeds else _tag(self.salt)
        data = json.loads(super().transform(messages))
        return json.dumps(
            {"title": f"{data['title']}, report {tag}", "text": f"{data['text']} (Report {tag}.)"}
        )

    def task_instruction(self, label: str, i: int, messages: Sequence[Message]) -> str:
        # the parent reads the task type from the last turn, which a repair request replaces
        return f"[{label} {self._head(messages)}.{i}] What do the critics say about the traffic counts?"

    def edit_instruction(self, i: int, messages: Sequence[Message]) -> str:
        return f"Refined version {i} of edit {self._head(messages)}: which option most weakens the claim?"

    def edit_marker(self, i: int, messages: Sequence[Message]) -> str:
        return f"(revised {self._head(messages)}.{i})"

    def tool_request(self, i: int, messages: Sequence[Message]) -> str:
        return f"How many lorries used the coast road in 2023? (request {self._head(messages)}.{i})"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True  # a hanging handler never holds up the stop

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # a client that gave up (timeout, SIGKILL): expected here
        super().handle_error(request, client_address)


class FaultServer:
    """A running fault server: its URL, and what it saw (read after the run).

    Attributes:
        url: the base URL (``http://127.0.0.1:PORT/v1``).
        requests: every chat request body, in arrival order.
        faults: faults injected, by kind.
        answered: requests answered with a normal, valid completion.
        log: (arrival time, request key, fault kind or None) of every request.
        refused: requests refused for a wrong key (``"401"``) or model (``"404"``).
        outage_window: when the outage began and ended (monotonic seconds).
    """

    def __init__(
        self,
        router: Router,
        plan: FaultPlan,
        *,
        api_key: str | None = None,
        model: str | None = None,
    ) -> None:
        self.router = router
        self.plan = plan
        self.api_key = api_key
        self.model = model
        self.refused: Counter[str] = Counter()  # 401 and 404 answers given
        self.outage_window: tuple[float, float] | None = None  # (start, end), monotonic
        self.requests: list[dict[str, Any]] = []
        self.faults: Counter[str] = Counter()
        self.answered = 0
        self.log: list[tuple[float, str, str | None]] = []
        self.attempts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fault-server", daemon=True
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def faults_total(self) -> int:
        return sum(self.faults.values())

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # ends hangs and latencies at once
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def decide(self, body: dict[str, Any]) -> str | None:
        """Record a request and pick its fault (None: answer normally)."""
        key = request_key(body)
        with self.lock:
            self.requests.append(body)
            number = len(self.requests)
            self.attempts[key] += 1
            attempt = self.attempts[key]
            kind = self.plan.by_number.get(number)
            outage = self.plan.outage
            now = time.monotonic()
            if outage is not None and self.outage_window is None and self.answered >= outage.after:
                self.outage_window = (now, now + outage.seconds)
            if self.outage_window is not None and now < self.outage_window[1]:
                kind = outage.kind if outage is not None else kind
            elif kind is None:
                fate = self.plan.fate(key)
                if fate is not None and (
                    self.plan.attempts is None or attempt <= self.plan.attempts
                ):
                    kind = fate
            if kind is not None:
                self.faults[kind] += 1
            self.log.append((now, key, kind))
        return kind

    def answer(self, messages: Sequence[Message]) -> str:
        with self.lock:  # the scripted teachers count calls: keep them consistent
            return self.router(messages)


def _completion(body: Mapping[str, Any], content: str | None) -> dict[str, Any]:
    return completion_body(body, content, "fault")


def _handler(srv: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(
            self,
            status: int,
            data: bytes,
            headers: Mapping[str, str] | None = None,
            *,
            length: int | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data) if length is None else length))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def _json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
            self._send(status, json.dumps(obj).encode(), headers)

        def do_GET(self) -> None:
            self._json(200, {"object": "list", "data": [{"id": "fault-model", "object": "model"}]})

        def do_POST(self) -> None:
            try:
                self._post()
            except (ConnectionError, TimeoutError):
                self.close_connection = True  # the client gave up on this request

        def _post(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._json(404, {"error": {"message": f"no route {self.path}"}})
                return
            if srv.api_key is not None and self.headers.get("Authorization") != (
                f"Bearer {srv.api_key}"
            ):
                with srv.lock:
                    srv.refused["401"] += 1
                error = {"message": "Incorrect API key provided.", "code": "invalid_api_key"}
                self._json(401, {"error": error})
                return
            if srv.model is not None and body.get("model") != srv.model:
                with srv.lock:
                    srv.refused["404"] += 1
                message = f"The model `{body.get('model')}` does not exist."
                self._json(404, {"object": "error", "message": message, "code": 404})
                return
            kind = srv.decide(body)
            plan = srv.plan
            if plan.latency > 0 and srv.stopping.wait(plan.latency):
                self.close_connection = True
                return
            if kind is None:
                try:
                    content = srv.answer(body["messages"])
                except Exception as exc:  # the router's own failure is a 500
                    self._json(500, {"error": {"message": f"router failed: {exc!r}"}})
                    return
                with srv.lock:
                    srv.answered += 1
                self._json(200, _completion(body, content))
            elif kind == "429":
                headers = (
                    {} if plan.retry_after is None else {"Retry-After": f"{plan.retry_after:g}"}
                )
                self._json(
                    429, {"error": {"message": "injected rate limit", "type": "fault"}}, headers
                )
            elif kind in ("400", "403", "500", "502", "503"):
                self._json(int(kind), {"error": {"message": f"injected {kind}", "type": "fault"}})
            elif kind == "hang":
                srv.stopping.wait(plan.hang_seconds)
                self.close_connection = True
            elif kind == "truncated":
                data = json.dumps(_completion(body, PASSAGE)).encode()
                self._send(200, data[: len(data) // 2], length=len(data))
                self.close_connection = True
            elif kind == "malformed":
                self._send(200, b'{"id": "chatcmpl-fault", "choices": [{"message": {"rol')
            elif kind == "empty":
                self._json(200, _completion(body, ""))
            elif kind == "null":
                self._json(200, _completion(body, None))
            elif kind == "cutoff":
                text = srv.answer(body["messages"])
                self._json(
                    200,
                    completion_body(body, text[: len(text) // 2], "fault", finish_reason="length"),
                )
            elif kind == "no_choices":
                obj = _completion(body, "x")
                del obj["choices"]
                self._json(200, obj)
            else:  # pragma: no cover - FaultPlan validates kinds
                raise AssertionError(kind)

    return Handler


@contextmanager
def fault_server(
    router: Router | None = None,
    plan: FaultPlan | None = None,
    *,
    api_key: str | None = None,
    model: str | None = None,
) -> Iterator[FaultServer]:
    """Serve on a free loopback port; always stopped on exit, hanging requests included."""
    srv = FaultServer(router or StableTeacher(), plan or FaultPlan(), api_key=api_key, model=model)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


# -- seeds in, and the invariants of a run's output -----------------------------------
TOPICS = ["harbour", "orchard", "glacier", "railway", "library", "vineyard", "lighthouse"]


def write_seeds(folder: Path, n: int) -> Path:
    """n distinct text seeds of about 70 words, one file each."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        text = (
            f"Report {i} on the {topic}. The council measured visits to the {topic} before and "
            f"after the works of year {2000 + i}. Critics say the counts missed weekends, that "
            f"the {topic} was closed for {i + 2} weeks in the earlier year, and that the new "
            f"fees pushed visitors elsewhere. Supporters answer that surveys agree with the "
            f"counts and that the {topic} now opens {i + 1} hours longer each day."
        )
        (folder / f"seed_{i:02d}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, each one parsed: a torn line fails the test."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path}: unterminated last line"
    return [json.loads(line) for line in text.splitlines()]


@dataclass
class Outcome:
    """The records, rejects and progress lines of an output folder (and, where a test
    sets them, the model calls the run made and the request bodies its server saw)."""

    records: list[dict[str, Any]]
    rejects: list[dict[str, Any]]
    progress: list[dict[str, Any]]
    calls: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, out: Path) -> Outcome:
        return cls(
            read_lines(out / "records.jsonl"),
            read_lines(out / "rejects.jsonl"),
            read_lines(out / "progress.jsonl"),
        )

    @property
    def ids(self) -> set[str]:
        return {r["id"] for r in self.records}

    def ids_of(self, unit: str) -> set[str]:
        return {r["id"] for r in self.records if r["meta"]["unit"] == unit}

    def check_clean_units_match(self, reference: Outcome) -> None:
        """Units that lost nothing made exactly the reference's records. (A unit with a
        rejected task may differ: its later tasks draw other layouts.)"""
        hit = {r["unit"] for r in self.rejects}
        for p in self.progress:
            if p["unit"] not in hit:
                assert self.ids_of(p["unit"]) == reference.ids_of(p["unit"]), p["unit"]


def check_accounting(out: Path, units: set[str]) -> Outcome:
    """The invariants of a finished run, whatever went wrong on the way: every line of
    every file parses, every unit is done exactly once and ended as records or rejects
    (with a reason), the counts in progress.jsonl match the files, unit by unit, and no
    record id appears twice."""
    o = Outcome.read(out)
    done = Counter(p["unit"] for p in o.progress)
    assert set(done) == units, "every unit is listed in progress.jsonl"
    twice = [u for u, n in done.items() if n > 1]
    assert not twice, f"units done twice: {twice}"
    ids = [r["id"] for r in o.records]
    assert len(ids) == len(set(ids)), "no record id twice"
    assert sum(p["records"] for p in o.progress) == len(o.records), "records vs progress"
    assert sum(p["rejects"] for p in o.progress) == len(o.rejects), "rejects vs progress"
    per_unit_records = Counter(r["meta"]["unit"] for r in o.records)
    per_unit_rejects = Counter(r["unit"] for r in o.rejects)
    for p in o.progress:
        assert p["records"] == per_unit_records[p["unit"]], p
        assert p["rejects"] == per_unit_rejects[p["unit"]], p
        assert p["records"] + p["rejects"] > 0, f"{p['unit']} ended with nothing"
    for rej in o.rejects:
        assert rej["reason"].strip(), rej
        assert rej["unit"] in units and rej["stage"] and rej["agent"]
    return o


__all__ = [
    "FAULT_KINDS",
    "TRANSIENT_KINDS",
    "FaultPlan",
    "FaultServer",
    "Outage",
    "Outcome",
    "StableTeacher",
    "check_accounting",
    "fault_server",
    "read_lines",
    "request_key",
    "write_seeds",
]
