"""Throughput of OpenAI-compatible clients against a server with a fixed latency.

A stub chat-completions server (aiohttp.web, in its own process so its CPU is not the
client's) answers every call after ``--latency`` seconds. For each client and each
concurrency N the script sends N x ``--waves`` calls, N at a time, and reports calls/s
against the ideal N / latency, the client's CPU per call and its peak memory. Each client
runs in a fresh process of its own.

Clients:
  genteach        ResilientModel(HttpModel): what agents use.
  openai-sdk      ResilientModel(AutoGenModel(OpenAIChatCompletionClient)), the openai SDK
                  with its default transport, built as ``build_client`` did before.
  aiohttp-bare    a bare aiohttp loop (post, read, json.loads): the ceiling for reference.
  distilabel      distilabel 1.5.3: LoadDataFromDicts >> TextGeneration(OpenAILLM), batch
                  size N, run by the interpreter given with ``--distilabel-python`` (it is not
                  a genteach dependency); without it the row says "not run".

Usage::

    # the full run (an idle machine); distilabel in a venv of its own:
    python3 -m venv /tmp/dl-venv && /tmp/dl-venv/bin/pip install distilabel==1.5.3 openai requests
    python benchmarks/throughput_bench.py --distilabel-python /tmp/dl-venv/bin/python \\
        --write-docs --json /tmp/throughput.json
    # a quick check:
    python benchmarks/throughput_bench.py --concurrency 16,64 --calls-per-level 256 --latency 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

# Only the standard library at the top: the distilabel interpreter runs this file too.
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "throughput.md"
CLIENTS = ["genteach", "genteach-pipeline", "openai-sdk", "aiohttp-bare", "distilabel"]
MODEL = "stub-model"
#: Requests for this model are answered by the scripted teacher (valid agent answers).
TEACHER_MODEL = "stub-teacher"
TESTS = Path(__file__).resolve().parent.parent / "tests"
SYSTEM = "You are a careful teacher. Answer the question in full sentences, citing the text."
MAX_TOKENS = 256
TEMPERATURE = 0.7


def prompt(i: int) -> str:
    """A user turn of about 600 characters, different for every call."""
    return f"Question {i}: " + "Explain how the passage supports its main claim. " * 12


# --------------------------------------------------------------------------- stub server
def serve(latency: float, answer_chars: int) -> None:
    """Run the stub server; prints ``PORT <n>`` once it listens."""
    from aiohttp import web

    answer = ("The passage supports its claim with three examples. " * 100)[:answer_chars]
    state: dict[str, Any] = {}
    sys.path.insert(0, str(TESTS))
    from scripted_teacher import Teacher

    teacher = Teacher()

    def reset() -> None:
        state.update(requests=0, in_flight=0, peak_in_flight=0, first=None, last=None)

    async def chat(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        now = time.time()
        state["first"] = state["first"] or now
        state["requests"] += 1
        state["in_flight"] += 1
        state["peak_in_flight"] = max(state["peak_in_flight"], state["in_flight"])
        try:
            await asyncio.sleep(latency)
        finally:
            state["in_flight"] -= 1
        content = teacher(body["messages"]) if body.get("model") == TEACHER_MODEL else answer
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4
        data = {
            "id": f"chatcmpl-{state['requests']}",
            "object": "chat.completion",
            "created": int(now),
            "model": body.get("model", MODEL),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt_tokens + len(content) // 4,
            },
        }
        response = web.Response(body=json.dumps(data).encode(), content_type="application/json")
        state["last"] = time.time()
        return response

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({**state, "server_cpu_s": time.process_time()})

    async def do_reset(request: web.Request) -> web.Response:
        reset()
        return web.json_response({})

    async def main() -> None:
        reset()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", do_reset)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        print(f"PORT {runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _server_call(url: str, path: str, post: bool = False) -> dict[str, Any]:
    req = urllib.request.Request(url + path, data=b"" if post else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return dict(json.loads(resp.read()))


# --------------------------------------------------------------------------- workers
Call = Callable[[int], Awaitable[None]]


async def _run_calls(call: Call, calls: int) -> tuple[int, list[str]]:
    results = await asyncio.gather(*(call(i) for i in range(calls)), return_exceptions=True)
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return calls - len(errors), errors[:5]


async def _genteach(url: str, n: int, calls: int, sdk: bool) -> tuple[int, list[str]]:
    from genteach.models import AutoGenModel, ResilientModel, message
    from genteach.models.base import ModelRequest

    if sdk:
        from autogen_core.models import ModelFamily, ModelInfo
        from autogen_ext.models.openai import OpenAIChatCompletionClient

        inner: Any = OpenAIChatCompletionClient(
            model=MODEL,
            api_key="EMPTY",
            base_url=url,
            max_retries=0,
            include_name_in_message=False,
            model_info=ModelInfo(
                vision=False,
                function_calling=False,
                json_output=False,
                family=ModelFamily.UNKNOWN,
                structured_output=False,
            ),
        )
        client: Any = AutoGenModel(inner, temperature=TEMPERATURE, max_tokens=MAX_TOKENS)
    else:
        from genteach.models.http import HttpModel

        client = HttpModel(MODEL, url, "EMPTY", temperature=TEMPERATURE, max_tokens=MAX_TOKENS)
    model = ResilientModel(client, concurrency=n)

    async def call(i: int) -> None:
        await model.complete(ModelRequest([message("system", SYSTEM), message("user", prompt(i))]))

    try:
        return await _run_calls(call, calls)
    finally:
        await model.close()


async def _pipeline(url: str, n: int, calls: int) -> tuple[int, list[str]]:
    """The whole genteach path: Pipeline units (reading comprehension: transform,
    instruct, refine, respond) with prompt rendering, parsing, the response cache and
    JSONL output, until about ``calls`` model calls were made."""
    import math

    from genteach import ModelConfig, Pipeline, RunSettings, build_client
    from genteach.estimate import estimate_run
    from genteach.records import Seed

    client = build_client(ModelConfig(base_url=url, model=TEACHER_MODEL, api_key="EMPTY"))
    settings = RunSettings(concurrency=n, overrides={"suggestions": 1, "tasks_per_type": 1})
    pipe = Pipeline(client, skills=["rc"], settings=settings)
    text = "The harbour tunnel opened in May; commuting times fell by a third. " * 12
    seeds = [Seed.from_text(f"Report {i}. {text}") for i in range(calls)]
    per_unit = estimate_run(pipe, seeds[:1]).usage.calls
    units = max(1, math.ceil(calls / max(per_unit, 1)))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            summary = await pipe.arun(seeds[:units], Path(tmp) / "out")
        finally:
            await client.close()
    errors = [f"{summary.rejects} rejects"] if summary.rejects else []
    return summary.usage.calls, errors


async def _bare(url: str, n: int, calls: int) -> tuple[int, list[str]]:
    import aiohttp

    sem = asyncio.Semaphore(n)
    headers = {"Content-Type": "application/json", "Authorization": "Bearer EMPTY"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), headers=headers
    ) as session:

        async def call(i: int) -> None:
            body = {
                "model": MODEL,
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": prompt(i)},
                ],
                "temperature": TEMPERATURE,
                "max_tokens": MAX_TOKENS,
            }
            async with sem, session.post(url + "/chat/completions", data=json.dumps(body)) as r:
                data = json.loads(await r.read())
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")
                data["choices"][0]["message"]["content"]

        return await _run_calls(call, calls)


def _distilabel(url: str, n: int, calls: int) -> tuple[int, list[str]]:
    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    rows = [{"instruction": prompt(i)} for i in range(calls)]
    with tempfile.TemporaryDirectory() as cache, Pipeline(name="throughput", cache_dir=cache) as p:
        load = LoadDataFromDicts(data=rows, batch_size=n)
        generate = TextGeneration(
            llm=OpenAILLM(
                model=MODEL,
                base_url=url,
                api_key="EMPTY",  # type: ignore[arg-type]
                max_retries=0,
                timeout=600,
                generation_kwargs={"max_new_tokens": MAX_TOKENS, "temperature": TEMPERATURE},
            ),
            system_prompt=SYSTEM,
            input_batch_size=n,
        )
        load >> generate
        distiset = p.run(use_cache=False)
        out = next(iter(distiset.values()))["train"]
        ok = sum(1 for g in out["generation"] if g)
    return ok, [] if ok == calls else [f"{calls - ok} rows without a generation"]


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def worker(client: str, url: str, n: int, calls: int, out: Path) -> None:
    """Run one client once and write what it measured to ``out`` (JSON)."""
    _raise_fd_limit()
    # Imports happen before the clock starts.
    if client == "distilabel":
        import distilabel.pipeline  # noqa: F401
    elif client != "aiohttp-bare":
        import autogen_ext.models.openai  # noqa: F401

        import genteach.estimate
        import genteach.models.http
        import genteach.pipeline  # noqa: F401
    cpu0, t0 = _cpu(), time.perf_counter()
    if client == "distilabel":
        ok, errors = _distilabel(url, n, calls)
    elif client == "aiohttp-bare":
        ok, errors = asyncio.run(_bare(url, n, calls))
    elif client == "genteach-pipeline":
        ok, errors = asyncio.run(_pipeline(url, n, calls))
    else:
        ok, errors = asyncio.run(_genteach(url, n, calls, sdk=client == "openai-sdk"))
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    packages = ["aiohttp", "openai", "httpx", "autogen-core", "autogen-ext", "distilabel"]
    result = {
        "wall_s": wall,
        "cpu_run_s": cpu,
        "cpu_before_s": cpu0,
        "ok": ok,
        "errors": errors,
        "maxrss_mb": _maxrss_mb(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in packages},
    }
    out.write_text(json.dumps(result))


def _maxrss_mb() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(me, kids) / 1024


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --------------------------------------------------------------------------- orchestration
@dataclass
class Row:
    client: str
    concurrency: int
    calls: int
    latency: float
    ran: bool = True
    note: str = ""
    ok: int = 0
    server_requests: int = 0
    peak_in_flight: int = 0
    span_s: float = 0.0  # first request received to last answer sent, at the server
    wall_s: float = 0.0  # the client's own clock around the calls (start-up included)
    cpu_s: float = 0.0  # CPU of the client's process tree from the first call to its exit
    maxrss_mb: float = 0.0
    versions: dict[str, str | None] = field(default_factory=dict)

    @property
    def ideal(self) -> float:
        return self.concurrency / self.latency

    @property
    def calls_per_s(self) -> float:
        return self.ok / self.span_s if self.span_s else 0.0

    @property
    def pct_ideal(self) -> float:
        return 100 * self.calls_per_s / self.ideal

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_s / self.ok if self.ok else 0.0

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0


def run_one(client: str, url: str, n: int, calls: int, latency: float, python: str) -> Row:
    _server_call(url.removesuffix("/v1"), "/reset", post=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [python, str(Path(__file__).resolve()), "--worker", client, "--url", url]
        cmd += ["--n", str(n), "--calls", str(calls), "--out", str(out)]
        env = {**os.environ, "PYTHONPATH": _pythonpath()}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout)[-2000:]
            raise RuntimeError(f"{client} at {n} failed ({proc.returncode}):\n{tail}")
        res = json.loads(out.read_text())
    stats = _server_call(url.removesuffix("/v1"), "/stats")
    tree_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    span = (stats["last"] - stats["first"]) if stats["first"] and stats["last"] else 0.0
    return Row(
        client=client,
        concurrency=n,
        calls=calls,
        latency=latency,
        note="; ".join(res["errors"]),
        ok=res["ok"],
        server_requests=stats["requests"],
        peak_in_flight=stats["peak_in_flight"],
        span_s=span,
        wall_s=res["wall_s"],
        cpu_s=tree_cpu - res["cpu_before_s"],
        maxrss_mb=res["maxrss_mb"],
        versions=res["versions"],
    )


def _pythonpath() -> str:
    src = str(Path(__file__).resolve().parent.parent / "src")
    return os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gib": round(mem_gib, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "aiohttp": _version("aiohttp"),
        "openai": _version("openai"),
        "autogen-ext": _version("autogen-ext"),
        "loadavg_start": os.getloadavg(),
    }


def table(rows: list[Row]) -> str:
    lines = [
        "| client | concurrency | calls | span (s) | calls/s | ideal | % of ideal "
        "| client CPU (s) | CPU ms/call | CPU cores | peak RSS (MB)* | peak in flight |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if not r.ran:
            lines.append(
                f"| {r.client} | {r.concurrency} | {r.calls} | not run ({r.note}) | | | | | | | | |"
            )
            continue
        ok = f"{r.ok}" if r.ok == r.calls else f"{r.ok} of {r.calls}"
        lines.append(
            f"| {r.client} | {r.concurrency} | {ok} | {r.span_s:.2f} | {r.calls_per_s:.1f} "
            f"| {r.ideal:.0f} | {r.pct_ideal:.0f}% | {r.cpu_s:.2f} | {r.cpu_ms_per_call:.2f} "
            f"| {r.cores:.2f} | {r.maxrss_mb:.0f} | {r.peak_in_flight} |"
        )
    return "\n".join(lines)


def docs(rows: list[Row], info: dict[str, Any], command: str, args: argparse.Namespace) -> str:
    dl = next((r.versions.get("distilabel") for r in rows if r.versions.get("distilabel")), None)
    return f"""# Client throughput against a slow OpenAI-compatible server

Script: [`benchmarks/throughput_bench.py`](../../benchmarks/throughput_bench.py) (a script,
not a timed test). This page is written by it:

```
{command}
```

A stub chat-completions server (aiohttp.web, its own process) answers every call after
{args.latency:g} s with a {args.answer_chars}-character answer. Each client sends
concurrency x {args.waves} calls (or `--calls-per-level`), at most *concurrency* at a time,
from a fresh process. **Ideal** is concurrency / latency calls/s. **calls/s** is the
successful calls over the **span** the server saw, from the first request received to the
last answer sent (a client's start-up, e.g. distilabel's worker processes, is outside it).
**Client CPU** is the CPU of the client's process tree (its child processes included) from
just before the first call to its exit; **CPU cores** is that over the client's own wall
time. **Peak in flight** is the most calls the server held at once. *Peak RSS is that of the
largest single process of the client (distilabel runs several).

- genteach: `ResilientModel(HttpModel)`, genteach's own aiohttp client, the path agents use.
- genteach-pipeline: the whole run: `Pipeline` units of reading comprehension (transform,
  instruct, suggester + editor, respond) against the scripted teacher served by the stub, with
  rendering, parsing, the response cache (SQLite) and JSONL output; about as many calls as the
  other clients (units x calls per unit). Units make their calls partly one after another, so
  the end of the run is less full than a flat batch of calls.
- openai-sdk: `ResilientModel(AutoGenModel(OpenAIChatCompletionClient))` (openai SDK, default
  transport, `max_retries=0`).
- aiohttp-bare: a bare aiohttp loop (post, read, `json.loads`), the ceiling for reference.
- distilabel {dl or "1.5.3"}: `LoadDataFromDicts >> TextGeneration(OpenAILLM)`, batch size =
  concurrency, in its own interpreter (not a genteach dependency), made with
  `python3 -m venv /tmp/dl-venv && /tmp/dl-venv/bin/pip install distilabel==1.5.3 openai requests`.

Target (issue "Generation at scale"): genteach at 95% of ideal or more at 256 concurrent
calls, with one core or less of client CPU.

## Machine

- {info["usable_cores"]} usable cores of {info["cores"]} ({info["cpu"] or "CPU model unknown"}),
  {info["memory_gib"]} GiB; {info["platform"]}
- Python {info["python"]}, aiohttp {info["aiohttp"]}, openai {info["openai"]},
  autogen-ext {info["autogen-ext"]}
- Load average at start {_load(info["loadavg_start"])}, at end {_load(info["loadavg_end"])}
- Run {info["date"]}
{_busy(info)}{chr(10) + args.note + chr(10) if args.note else ""}

## Results

{table(rows)}
"""


def _busy(info: dict[str, Any]) -> str:
    load = max(info["loadavg_start"][0], info["loadavg_end"][0])
    if load <= 0.5 * info["usable_cores"]:
        return ""
    return (
        f"\n**The machine was busy** (load average up to {load:.1f} on "
        f"{info['usable_cores']} cores): the rows are noisy, rerun on an idle machine.\n"
    )


def _load(avg: Any) -> str:
    return " / ".join(f"{x:.2f}" for x in avg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=float, default=1.0, help="server seconds per call")
    ap.add_argument("--concurrency", default="16,64,256", help="comma-separated levels")
    ap.add_argument("--waves", type=int, default=8, help="calls per level = concurrency x waves")
    ap.add_argument("--calls-per-level", type=int, help="fixed number of calls per level")
    ap.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated clients")
    ap.add_argument("--distilabel-python", help="interpreter with distilabel 1.5.3 installed")
    ap.add_argument("--pause", type=float, default=2.0, help="idle seconds before each run")
    ap.add_argument("--answer-chars", type=int, default=1000, help="length of each answer")
    ap.add_argument("--note", help="a paragraph added to the docs page (e.g. the conditions)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--write-docs", action="store_true", help=f"rewrite {DOCS.name}")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker", choices=CLIENTS, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        _raise_fd_limit()
        return serve(args.latency, args.answer_chars)
    if args.worker:
        return worker(args.worker, args.url, args.n, args.calls, args.out)

    clients = [c for c in args.clients.split(",") if c]
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        ap.error(f"unknown clients: {sorted(unknown)}")
    levels = [int(x) for x in args.concurrency.split(",")]
    info = machine()
    serve_args = [
        "--serve",
        "--latency",
        str(args.latency),
        "--answer-chars",
        str(args.answer_chars),
    ]
    server = subprocess.Popen(
        [sys.executable, __file__, *serve_args], stdout=subprocess.PIPE, text=True
    )
    rows: list[Row] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        url = f"http://127.0.0.1:{port}/v1"
        print(f"stub server on {url}, latency {args.latency:g}s", file=sys.stderr)
        # distilabel last: its worker processes may still be exiting when it returns.
        order = sorted(clients, key=lambda c: c == "distilabel")
        for client in order:
            for n in levels:
                calls = args.calls_per_level or n * args.waves
                python = sys.executable
                if client == "distilabel":
                    if not args.distilabel_python:
                        note = "no --distilabel-python"
                        rows.append(Row(client, n, calls, args.latency, ran=False, note=note))
                        continue
                    python = args.distilabel_python
                time.sleep(args.pause)
                try:
                    row = run_one(client, url, n, calls, args.latency, python)
                except RuntimeError as exc:
                    print(exc, file=sys.stderr)
                    rows.append(Row(client, n, calls, args.latency, ran=False, note="failed"))
                    continue
                rows.append(row)
                print(
                    f"{client:>13} n={n:<4} {row.calls_per_s:7.1f} calls/s "
                    f"({row.pct_ideal:3.0f}% of ideal), {row.cpu_ms_per_call:.2f} ms CPU/call, "
                    f"{row.cores:.2f} cores, {row.maxrss_mb:.0f} MB",
                    file=sys.stderr,
                )
        rows.sort(key=lambda r: (levels.index(r.concurrency), clients.index(r.client)))
    finally:
        server.terminate()
        server.wait()
    info["loadavg_end"] = os.getloadavg()
    info["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(table(rows))
    if args.json:
        payload = {"machine": info, "rows": [asdict(r) for r in rows]}
        args.json.write_text(json.dumps(payload, indent=2))
    if args.write_docs:
        command = shlex.join(["python", "benchmarks/throughput_bench.py", *_shown(sys.argv[1:])])
        DOCS.parent.mkdir(parents=True, exist_ok=True)
        DOCS.write_text(docs(rows, info, command, args))
        print(f"wrote {DOCS}", file=sys.stderr)


def _shown(argv: list[str]) -> list[str]:
    """The arguments that shape the results (not --json or --note)."""
    shown: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--json", "--note"):
            skip = True
        elif not a.startswith(("--json=", "--note=")):
            shown.append(a)
    return shown


if __name__ == "__main__":
    main()
