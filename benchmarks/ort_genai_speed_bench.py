"""Raw speed of onnxruntime-genai on CPU, on the prompts of ``engine_speed_bench.py``.

The engine that issue 16 names as a candidate beside llama.cpp: an int4 ONNX model converted
locally from the embedded model's Hugging Face folder (the folder the transformers engine
uses). It is not one of genteach's engines; this script only measures it, side by side with
``engine_speed_bench.py``: one prompt of about 1,150 tokens read (an answer of one token), one
128-token answer alone, and eight 128-token answers at once (one batch: onnxruntime-genai's
Python API has no continuous batching). Tokens per second of wall time.

Set-up (outside genteach's environment; torch, transformers, onnx and onnx_ir are only needed
for the conversion):

    python -m venv /tmp/ortvenv
    /tmp/ortvenv/bin/pip install onnxruntime-genai onnx onnx_ir onnxruntime torch==2.13.0 \
        transformers==5.24.0
    /tmp/ortvenv/bin/python -m onnxruntime_genai.models.builder \
        -i ~/.cache/genteach/models/qwen2.5-coder-1.5b-instruct-<hash> -o /tmp/ort_q15 \
        -p int4 -e cpu -c /tmp/ort_cache

Usage:
    /tmp/ortvenv/bin/python benchmarks/ort_genai_speed_bench.py --model /tmp/ort_q15
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def chat(og: Any, tokenizer: Any, text: str) -> str:
    """``text`` as one user turn in the model's chat template, ready for the answer."""
    messages = json.dumps([{"role": "user", "content": text}])
    return str(tokenizer.apply_chat_template(messages, add_generation_prompt=True))


def generate(og: Any, model: Any, tokenizer: Any, prompts: list[str], new: int) -> int:
    """Generate up to ``new`` tokens for each of ``prompts`` in one batch; the number of
    tokens generated in all."""
    tokens = tokenizer.encode_batch(prompts)
    params = og.GeneratorParams(model)
    longest = max(len(tokenizer.encode(p)) for p in prompts)
    params.set_search_options(
        max_length=longest + new,
        batch_size=len(prompts),
        do_sample=new > 1,
        temperature=0.7,
        top_k=50,
    )
    generator = og.Generator(model, params)
    generator.append_tokens(tokens)
    while not generator.is_done():
        generator.generate_next_token()
    made = 0
    for i, prompt in enumerate(prompts):
        sequence = list(generator.get_sequence(i))
        pad = tokenizer.encode(prompt)
        made += max(len(sequence) - longest, 0) if len(prompts) > 1 else len(sequence) - len(pad)
    return made


def measure(path: str, threads: int | None) -> dict[str, Any]:
    import onnxruntime_genai as og

    config = og.Config(path)
    if threads:
        config.set_provider_option("cpu", "intra_op_num_threads", str(threads))
    model = og.Model(config)
    tokenizer = og.Tokenizer(model)
    seed = sorted((REPO / "examples" / "seeds").iterdir())[0].read_text(encoding="utf-8")
    long = chat(og, tokenizer, (seed * 3)[:6000] + "\nSummarise.")
    read = len(tokenizer.encode(long))
    start = time.perf_counter()
    generate(og, model, tokenizer, [long], 1)
    reading = read / (time.perf_counter() - start)

    def story(i: int) -> str:
        return chat(og, tokenizer, f"Write a story about a cat named {i}.")

    start = time.perf_counter()
    one = generate(og, model, tokenizer, [story(0)], 128)
    single = one / (time.perf_counter() - start)
    start = time.perf_counter()
    eight = generate(og, model, tokenizer, [story(i) for i in range(1, 9)], 128)
    parallel = eight / (time.perf_counter() - start)
    return {
        "model": path,
        "engine": f"onnxruntime-genai {og.__version__}",
        "prompt_tokens": read,
        "reading_tok_s": round(reading),
        "one_answer_tok_s": round(single, 1),
        "eight_answers_tok_s": round(parallel, 1),
        "tokens_made": [one, eight],
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, help="the folder the model builder wrote")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all)")
    args = ap.parse_args()
    print(json.dumps(measure(args.model, args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
