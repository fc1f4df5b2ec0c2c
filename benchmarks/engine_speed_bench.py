"""Raw speed of a local engine: prompt reading, one answer, eight answers at once.

Tokens per second of wall time on the same prompts for every engine and model: one prompt
of about 1,150 tokens read (an answer of one token), one 128-token answer alone, and eight
128-token answers asked at once (continuous batching on llama.cpp, one batch on
transformers). Prompt reuse is off, so every prompt is read in full.

Usage:
    python benchmarks/engine_speed_bench.py --engine llama.cpp
    python benchmarks/engine_speed_bench.py --engine llama.cpp --model q4_0.gguf
    python benchmarks/engine_speed_bench.py --engine transformers --dtype float32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from genteach.models.base import ModelRequest, message
from genteach.models.local import LocalEngine, local_model_client

REPO = Path(__file__).resolve().parent.parent


async def measure(client: LocalEngine) -> dict[str, Any]:
    await client.load()
    seed = sorted((REPO / "examples" / "seeds").iterdir())[0].read_text(encoding="utf-8")
    long = [message("user", (seed * 3)[:6000] + "\nSummarise.")]
    read = client.count_tokens(long)
    start = time.perf_counter()
    await client.complete(ModelRequest(long, max_tokens=1, temperature=0))
    reading = read / (time.perf_counter() - start)

    def story(i: int) -> ModelRequest:
        ask = f"Write a story about a cat named {i}."
        return ModelRequest([message("user", ask)], max_tokens=128, temperature=0.7, seed=i)

    start = time.perf_counter()
    one = await client.complete(story(0))
    single = one.usage.completion_tokens / (time.perf_counter() - start)
    start = time.perf_counter()
    eight = await asyncio.gather(*[client.complete(story(i)) for i in range(1, 9)])
    parallel = sum(a.usage.completion_tokens for a in eight) / (time.perf_counter() - start)
    return {
        "model": client.model_name,
        "engine": type(client).__name__,
        "prompt_tokens": read,
        "reading_tok_s": round(reading),
        "one_answer_tok_s": round(single, 1),
        "eight_answers_tok_s": round(parallel, 1),
        "dtype": getattr(client, "resolved_dtype", None),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--engine", choices=("llama.cpp", "transformers"), default="llama.cpp")
    ap.add_argument("--model", default=None, help="a shipped model's name, a .gguf, an HF folder")
    ap.add_argument("--dtype", default="auto", help="transformers only: auto, bfloat16, float32")
    args = ap.parse_args()
    kwargs: dict[str, Any] = (
        {"reuse_prompts": False} if args.engine == "llama.cpp" else {"dtype": args.dtype}
    )
    client = local_model_client(args.model, engine=args.engine, **kwargs)

    async def run() -> dict[str, Any]:
        try:
            return await measure(client)
        finally:
            await client.close()

    print(json.dumps(asyncio.run(run())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
