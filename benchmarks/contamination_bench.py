"""Speed and memory of `genteach contamination` on synthetic text.

Synthetic text: words made of random syllables, drawn with Zipf weights (rank r has weight
1/r, 50,000 words: "the"-like words are common, as in English), so common short keys are
common, as in real data. Training rows: a user turn of 30-80 words and an assistant turn of
80-220 words. Test items: a question of 20-60 words and an answer of 5-40 words. 1 % of the
test items are planted in training rows (a quarter exact, the rest with 1-4 substituted
words); the run checks they are all found dirty.

Subcommands:
  one     one measurement in this process; prints a JSON line (phases in seconds, peak RSS).
  sweep   `one` in a fresh process per size and repeat; prints a Markdown table of medians.

Usage:
    nice -n 10 python benchmarks/contamination_bench.py one --train 100000 --test 10000
    nice -n 10 python benchmarks/contamination_bench.py sweep --repeats 3 --json /tmp/c.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from importlib import metadata
from typing import Any

import numpy as np

from genteach.contamination import (
    ContaminationConfig,
    TestItem,
    TrainingRow,
    _encode_batch,
    find_contamination,
    tokenizer_by_name,
)

VOCAB = 50_000
SYLLABLES = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + ["th", "st", "qu"]


def vocabulary(rng: np.random.Generator) -> list[str]:
    words: set[str] = set()
    while len(words) < VOCAB:
        k = int(rng.integers(1, 4))
        words.add("".join(SYLLABLES[int(i)] for i in rng.integers(0, len(SYLLABLES), k)))
    return sorted(words, key=len)  # short words get the high ranks, as in English


def make_data(
    n_train: int, n_test: int, seed: int
) -> tuple[list[TrainingRow], list[TestItem], list[str]]:
    rng = np.random.default_rng(seed)
    vocab = vocabulary(rng)
    p = 1.0 / np.arange(1, VOCAB + 1)
    p /= p.sum()

    words = np.array(vocab, dtype=object)

    def texts(count: int, lo: int, hi: int) -> list[str]:
        lengths = rng.integers(lo, hi + 1, count)
        drawn = words[rng.choice(VOCAB, int(lengths.sum()), p=p)]
        ends = np.cumsum(lengths)
        return [" ".join(drawn[e - n : e]) for e, n in zip(ends, lengths, strict=True)]

    items = [
        TestItem("synthetic", f"t{i}", q + "\n" + a)
        for i, (q, a) in enumerate(zip(texts(n_test, 20, 60), texts(n_test, 5, 40), strict=True))
    ]
    rows = [
        TrainingRow(f"r{i}", u + "\n" + a)
        for i, (u, a) in enumerate(
            zip(texts(n_train, 30, 80), texts(n_train, 80, 220), strict=True)
        )
    ]
    planted = []
    for j in range(max(1, n_test // 100)):
        item = items[j * (n_test // max(1, n_test // 100))]
        words = item.text.split(" ")
        for s in range(j % 5):  # 0-4 substituted words, spread out
            words[(s * 7 + 3) % len(words)] = "zzz"
        r = int(rng.integers(0, n_train))
        rows[r] = TrainingRow(rows[r].id, " ".join(words) + "\n" + rows[r].text)
        planted.append(item.id)
    return rows, items, planted


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    rows, items, planted = make_data(args.train, args.test, args.seed)
    gen_s = time.perf_counter() - t0
    tok = tokenizer_by_name(args.tokenizer)
    base_rss = peak_rss_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    n_tokens = 0
    for a in range(0, len(rows), 2_000):
        ids = _encode_batch(tok, [r.text for r in rows[a : a + 2_000]], args.threads)
        n_tokens += sum(len(x) for x in ids)
        del ids
    tokenize_s, tokenize_cpu = time.perf_counter() - t0, time.process_time() - c0
    cfg = ContaminationConfig(key_tokens=args.key_tokens or None)
    t0, c0 = time.perf_counter(), time.process_time()
    report = find_contamination(rows, items, tok, cfg, threads=args.threads)
    total_s, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    found = {r.id for r in report.items if r.verdict == "dirty"}
    return {
        "train_rows": args.train,
        "test_items": args.test,
        "key_tokens": args.key_tokens,
        "train_tokens": report.training_tokens,
        "test_tokens": report.test_tokens,
        "train_tokens_per_row": round(report.training_tokens / args.train, 1),
        "test_tokens_per_item": round(report.test_tokens / args.test, 1),
        "generate_s": round(gen_s, 2),
        "tokenize_train_s": round(tokenize_s, 2),
        "total_s": round(total_s, 2),
        "match_s": round(total_s - tokenize_s, 2),
        "tokenize_train_cpu_s": round(tokenize_cpu, 2),
        "total_cpu_s": round(total_cpu, 2),
        "match_cpu_s": round(total_cpu - tokenize_cpu, 2),
        "base_rss_mib": round(base_rss, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "planted": len(planted),
        "planted_found_dirty": len(found & set(planted)),
        "dirty": len(found),
        "overlapping_rows": len(report.rows),
        "tokens_check": n_tokens == report.training_tokens,
    }


SIZES = [
    (25_000, 10_000),
    (50_000, 10_000),
    (100_000, 10_000),
    (100_000, 2_500),
    (100_000, 5_000),
]


def sweep(args: argparse.Namespace) -> None:
    results: list[dict[str, Any]] = []
    for key_tokens in args.keys:
        sizes = [tuple(map(int, x.split("x"))) for x in args.sizes] if args.sizes else SIZES
        for n_train, n_test in sizes:
            for rep in range(args.repeats):
                cmd = [sys.executable, __file__, "one", "--train", str(n_train), "--test"]
                cmd += [str(n_test), "--seed", str(rep), "--threads", str(args.threads)]
                cmd += ["--key-tokens", key_tokens]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                res = json.loads(out.strip().splitlines()[-1])
                res["repeat"] = rep
                print(json.dumps(res), file=sys.stderr, flush=True)
                results.append(res)
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "numpy": np.__version__,
        "tiktoken": metadata.version("tiktoken"),
        "threads": args.threads,
    }
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"env": env, "results": results}, fh, indent=1)
    print(json.dumps(env))
    print(
        "| keys | train rows | test items | train tokens | tokenize s | match s | total s "
        "| total CPU s | match CPU s | peak RSS MiB | planted found |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    groups: dict[tuple[Any, int, int], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["key_tokens"], r["train_rows"], r["test_items"]), []).append(r)
    for (kt, tr, te), rs in groups.items():

        def med(k: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(r[k] for r in rs)

        keys = "blocks" if not kt else f"{kt}-token"
        print(
            f"| {keys} | {tr} | {te} | {med('train_tokens'):.0f} | {med('tokenize_train_s'):.1f} "
            f"| {med('match_s'):.1f} | {med('total_s'):.1f} | {med('total_cpu_s'):.1f} "
            f"| {med('match_cpu_s'):.1f} | {med('peak_rss_mib'):.0f} "
            f"| {min(r['planted_found_dirty'] for r in rs)}/{rs[0]['planted']} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("one")
    o.add_argument("--train", type=int, default=100_000)
    o.add_argument("--test", type=int, default=10_000)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--key-tokens", type=int, default=4, help="0: k + 1 blocks")
    o.add_argument("--threads", type=int, default=2)
    o.add_argument("--tokenizer")
    s = sub.add_parser("sweep")
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--keys", nargs="+", default=["4"], help="key sizes; 0: k + 1 blocks")
    s.add_argument("--sizes", nargs="+", help="TRAINxTEST sizes (default: the growth series)")
    s.add_argument("--json")
    args = p.parse_args()
    if args.cmd == "one":
        print(json.dumps(one(args)))
    else:
        sweep(args)


if __name__ == "__main__":
    main()
