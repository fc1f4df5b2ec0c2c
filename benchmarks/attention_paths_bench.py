"""What packed rows cost on each attention path: time of a training step (forward and
backward) and the attention work each path does, on one batch of packed rows.

Usage::

    python benchmarks/attention_paths_bench.py                   # CPU: 2 rows of 2048, small model
    python benchmarks/attention_paths_bench.py --length 4096 --vocab 1000   # attention-bound
    python benchmarks/attention_paths_bench.py --device cuda --length 8192 --hidden 4096 --layers 4

Paths (one packed batch, the same tokens and examples for each):

* ``sdpa, rows joined``: what TRL's padding-free collator did with sdpa: the rows concatenated
  into one sequence, one dense block-diagonal mask over it (the waste this replaces);
* ``sdpa, per row``: the recipe's collator: each row its own block-diagonal mask;
* ``eager, per row``: the same mask, attention in plain PyTorch ops;
* ``flex_attention, per row``: a block mask; blocks outside an example are skipped (the first
  call compiles the kernel, reported apart).

Reported: seconds of a forward pass (the first, which compiles FlexAttention, and the median
of ``--repeat`` more) and the median of a forward + backward step, and the
attention score entries each path computes (dense: rows x length², or (rows x length)² when
joined; FlexAttention: the 128 x 128 blocks its mask keeps). Results: docs/training.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any


def packed_batch(rows: int, length: int, vocab: int, seed: int = 0) -> tuple[Any, Any, list[int]]:
    """Rows of ``length`` tokens filled with examples of log-normal length (median length/8)."""
    import math

    import torch

    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    ids, positions, lengths = [], [], []
    for _ in range(rows):
        row_lengths: list[int] = []
        while sum(row_lengths) < length:
            n = max(16, int(rng.lognormvariate(math.log(length / 8), 0.8)))
            row_lengths.append(min(n, length - sum(row_lengths)))
        lengths.extend(row_lengths)
        positions.append(torch.cat([torch.arange(n) for n in row_lengths]))
        ids.append(torch.randint(3, vocab, (length,), generator=generator))
    return torch.stack(ids), torch.stack(positions), lengths


def step_seconds(
    model: Any, ids: Any, positions: Any, repeat: int, backward: bool = True
) -> tuple[float, float]:
    """(first step, median of the next ``repeat``) seconds of forward (+ backward)."""
    import torch

    times = []
    for _ in range(repeat + 1):
        if ids.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.set_grad_enabled(backward):
            out = model(input_ids=ids, position_ids=positions, labels=ids, use_cache=False)
            if backward:
                out.loss.backward()
        if ids.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    return times[0], statistics.median(times[1:])


def flex_blocks(lengths: list[int], rows: int, length: int, block: int = 128) -> int:
    """Score entries in the 128 x 128 blocks a causal block-diagonal BlockMask keeps."""
    kept = 0
    start = 0
    starts = []
    for n in lengths:
        starts.append((start, start + n))
        start += n
    seq = [0] * (rows * length)
    for i, (a, b) in enumerate(starts):
        for t in range(a, b):
            seq[t] = i
    for r in range(rows):
        base = r * length
        for qb in range(0, length, block):
            for kb in range(0, qb + block, block):
                q_ids = set(seq[base + qb : base + qb + block])
                k_ids = set(seq[base + kb : base + kb + block])
                if q_ids & k_ids:
                    kept += block * block
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-flex", action="store_true")
    args = parser.parse_args()

    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 7 // 2,
        num_hidden_layers=args.layers,
        num_attention_heads=max(args.hidden // 128, 2),
        num_key_value_heads=max(args.hidden // 512, 1),
        max_position_embeddings=args.rows * args.length,
        sliding_window=None,
    )
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    model = MistralForCausalLM(config).to(args.device, dtype)
    ids, positions, lengths = packed_batch(args.rows, args.length, args.vocab)
    ids, positions = ids.to(args.device), positions.to(args.device)
    joined = (ids.reshape(1, -1), positions.reshape(1, -1))
    total = args.rows * args.length
    exact = sum(n * (n + 1) // 2 for n in lengths)
    print(
        f"torch {torch.__version__}, device {args.device}, {args.rows} rows x {args.length} "
        f"tokens, {len(lengths)} examples (mean {statistics.fmean(lengths):.0f} tokens), "
        f"model d={args.hidden} x {args.layers} layers, vocab {args.vocab}"
    )
    print(f"causal entries needed inside the examples: {exact:,}")
    cases = [
        ("sdpa, rows joined", "sdpa", joined, total * total),
        ("sdpa, per row", "sdpa", (ids, positions), args.rows * args.length**2),
        ("eager, per row", "eager", (ids, positions), args.rows * args.length**2),
    ]
    if not args.no_flex:
        blocks = flex_blocks(lengths, args.rows, args.length)
        cases.append(("flex_attention, per row", "flex_attention", (ids, positions), blocks))
    print("| path | forward s (first, median) | forward+backward s (median) | score entries |")
    print("|---|---:|---:|---:|")
    for name, attention, (x, p), entries in cases:
        model.set_attn_implementation(attention)
        first, forward = step_seconds(model, x, p, args.repeat, backward=False)
        if attention == "flex_attention" and args.device == "cpu":
            both = "no CPU backward"  # FlexAttention has no backward on CPU (torch 2.13)
        else:
            both = f"{step_seconds(model, x, p, args.repeat)[1]:.2f}"
        print(
            f"| {name} | {first:.2f}, {forward:.2f} | {both} | "
            f"{entries:,} ({entries / exact:.1f}x) |"
        )


if __name__ == "__main__":
    main()
