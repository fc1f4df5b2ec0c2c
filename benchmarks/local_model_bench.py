"""Throughput of the embedded local model: in-process vs ``transformers serve``.

Measures completion tokens per second (wall clock) for:

1. in-process :class:`~genteach.models.local.LocalModel`, requests one at a
   time, then N concurrent requests (run as one batched ``generate``);
2. ``transformers serve`` on 127.0.0.1 without continuous batching, one at a time and N
   concurrent;
3. the same with ``--continuous-batching``.

Every request is greedy with the same ``max_tokens`` and a prompt that asks for a long
answer, so most rows run to the budget. Results go to stdout as a markdown table (and
JSON with ``--json``); docs/benchmarks/local_model.md holds a run.

Usage::

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/local_model_bench.py
    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/local_model_bench.py \\
        --max-tokens 64 --concurrency 8 --sequential 3 --only in-process
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from genteach.models.base import ModelRequest, message
from genteach.models.local import LocalModel
from genteach.models.local_assets import EMBEDDED_MODELS, default_model_dir
from genteach.models.serve import TransformersServer

TOPICS = [
    "the history of the printing press",
    "how a compiler turns source code into machine code",
    "why the sky is blue",
    "the life cycle of a star",
    "how vaccines train the immune system",
    "the rules of chess for a beginner",
    "how a hash table works",
    "the water cycle",
]


def prompt(i: int) -> str:
    return f"Write a detailed, multi-paragraph explanation of {TOPICS[i % len(TOPICS)]}."


@dataclass
class Row:
    backend: str
    mode: str
    requests: int
    completion_tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds


# One call: returns the completion tokens it produced.
Call = Callable[[int], Awaitable[int]]


async def measure(
    backend: str, call: Call, *, sequential: int, concurrency: int, warmup: bool = True
) -> list[Row]:
    if warmup:
        await call(0)
    rows = []
    start = time.perf_counter()
    tokens = 0
    for i in range(sequential):
        tokens += await call(i)
    rows.append(Row(backend, "one at a time", sequential, tokens, time.perf_counter() - start))
    print(f"# {rows[-1]} -> {rows[-1].tokens_per_s:.1f} tokens/s", flush=True)
    start = time.perf_counter()
    counts = await asyncio.gather(*[call(i) for i in range(concurrency)])
    rows.append(
        Row(
            backend,
            f"{concurrency} concurrent",
            concurrency,
            sum(counts),
            time.perf_counter() - start,
        )
    )
    print(f"# {rows[-1]} -> {rows[-1].tokens_per_s:.1f} tokens/s", flush=True)
    return rows


async def bench_in_process(folder: Path, args: argparse.Namespace) -> list[Row]:
    client = LocalModel(folder, max_batch_size=args.concurrency)
    await client.load()

    async def call(i: int) -> int:
        result = await client.complete(
            ModelRequest([message("user", prompt(i))], max_tokens=args.max_tokens, temperature=0)
        )
        return result.usage.completion_tokens

    try:
        return await measure(
            "in-process (bf16)", call, sequential=args.sequential, concurrency=args.concurrency
        )
    finally:
        await client.close()


async def bench_server(folder: Path, args: argparse.Namespace, cb: bool) -> list[Row]:
    import openai

    start = time.perf_counter()
    async with TransformersServer(folder, continuous_batching=cb) as server:
        ready = time.perf_counter() - start
        api = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="x", timeout=600)

        async def call(i: int) -> int:
            result = await api.chat.completions.create(
                model=server.model,
                messages=[{"role": "user", "content": prompt(i)}],
                max_tokens=args.max_tokens,
                temperature=0,
            )
            return result.usage.completion_tokens if result.usage else 0

        name = "transformers serve" + (" --continuous-batching" if cb else "")
        rows = await measure(name, call, sequential=args.sequential, concurrency=args.concurrency)
        await api.close()
    print(f"# {name}: ready in {ready:.1f}s")
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch
    import transformers

    return (
        f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), transformers {transformers.__version__}"
    )


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| backend | mode | requests | completion tokens | seconds | tokens/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.backend} | {r.mode} | {r.requests} | {r.completion_tokens} | "
            f"{r.seconds:.1f} | {r.tokens_per_s:.1f} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sequential", type=int, default=3, help="requests run one at a time")
    parser.add_argument(
        "--only", choices=["in-process", "serve", "serve-cb"], action="append", default=None
    )
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument(
        "--model",
        choices=sorted(EMBEDDED_MODELS),
        default="qwen2.5-coder-0.5b-instruct",
        help="the shipped model (the figures in docs/ are the 0.5B's)",
    )
    args = parser.parse_args()
    only = set(args.only or ["in-process", "serve", "serve-cb"])
    folder = default_model_dir(spec=EMBEDDED_MODELS[args.model])
    print(f"# machine: {machine()}")
    rows: list[Row] = []
    if "in-process" in only:
        rows += await bench_in_process(folder, args)
    if "serve" in only:
        rows += await bench_server(folder, args, cb=False)
    if "serve-cb" in only:
        rows += await bench_server(folder, args, cb=True)
    print(table(rows))
    if args.json:
        print(json.dumps([asdict(r) | {"tokens_per_s": r.tokens_per_s} for r in rows], indent=2))


if __name__ == "__main__":
    asyncio.run(main())
