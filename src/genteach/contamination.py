"""Test-set contamination: which benchmark items a training set already contains.

Llama-2's method, as AgentTuning used it: tokenise both sides; a test item's token is
*covered* when some n-gram of the item (n = 10) that contains it matches an n-gram of the
training data with at most k = 4 tokens different (same length, position by position). An
item's contamination rate is its covered tokens over its tokens: *dirty* above 80 %,
*clean* below 20 %, in-between otherwise. Items shorter than n are reported as too short.

It is an index, not a pairwise scan. The test grams (the smaller side) are indexed by
*keys*: position subsets of a gram such that two grams with at most k mismatches agree
exactly on all positions of at least one key (the pigeonhole principle: k + 1 blocks; by
default a covering by 4-token keys, far rarer in natural text, see :func:`pigeonhole_keys`).
The training rows stream through in chunks: each training gram's key hashes are looked up,
the candidates verified token by token, so every match is found and nothing else. Memory is
the test index plus one chunk; the training set is read twice only for ``drop_dirty``.

Example:
    >>> tok = tokenizer_by_name("words")
    >>> rows = [TrainingRow("r1", "the quick brown fox jumps over the lazy dog again today")]
    >>> items = [TestItem("demo", "q1", "the quick brown fox jumps over the lazy dog again")]
    >>> report = find_contamination(rows, items, tok)
    >>> report.items[0].verdict, report.items[0].rows
    ('dirty', ['r1'])
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import re
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from genteach.export import find_record_files
from genteach.records import read_jsonl
from genteach.tokens import TiktokenTokenizer, Tokenizer, tokenizer_for

log = logging.getLogger("genteach.contamination")

Verdict = Literal["dirty", "clean", "in-between", "too short"]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

ITEMS_FILE = "items.jsonl"
ROWS_FILE = "rows.jsonl"
SUMMARY_MD = "summary.md"
SUMMARY_JSON = "summary.json"
KEPT_FILE = "records.jsonl"
DROPPED_FILE = "dropped.jsonl"

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_WORD_RE = re.compile(r"\w+|[^\w\s]")
_VERIFY_BATCH = 1 << 21  # candidate pairs verified at once (bounds temporary memory)


@dataclass(frozen=True)
class ContaminationConfig:
    """How matches are counted.

    Attributes:
        n: gram length in tokens (Llama-2 and AgentTuning: 10).
        max_mismatches: tokens that may differ between two matching grams, position by
            position (4).
        dirty_above: an item whose rate is above this is dirty (0.8).
        clean_below: an item whose rate is below this is clean (0.2).
        key_tokens: index keys of this many tokens (n - k if that is fewer): a covering
            found by :func:`pigeonhole_keys`; None for the k + 1 contiguous blocks of the
            plain pigeonhole principle (2 tokens each at n = 10, k = 4: so common in natural
            text that the candidates grow with the product of both sides; see
            docs/benchmarks/contamination.md).
        chunk_tokens: training tokens matched at once (bounds memory).
    """

    n: int = 10
    max_mismatches: int = 4
    dirty_above: float = 0.8
    clean_below: float = 0.2
    key_tokens: int | None = 4
    chunk_tokens: int = 2_000_000

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, not {self.n}")
        if not 0 <= self.max_mismatches < self.n:
            raise ValueError(
                f"max_mismatches must be from 0 to n - 1 = {self.n - 1}, not {self.max_mismatches}"
            )
        if not 0.0 <= self.clean_below <= self.dirty_above <= 1.0:
            raise ValueError(
                f"need 0 <= clean_below <= dirty_above <= 1, not {self.clean_below} and "
                f"{self.dirty_above}"
            )
        if self.key_tokens is not None and self.key_tokens < 1:
            raise ValueError(f"key_tokens must be at least 1, not {self.key_tokens}")
        if self.chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be at least 1, not {self.chunk_tokens}")

    @property
    def effective_key_tokens(self) -> int | None:
        """``key_tokens``, at most n - max_mismatches."""
        if self.key_tokens is None:
            return None
        return min(self.key_tokens, self.n - self.max_mismatches)

    def verdict(self, rate: float | None) -> Verdict:
        """``"dirty"``, ``"clean"``, ``"in-between"``, or ``"too short"`` for no rate."""
        if rate is None:
            return "too short"
        if rate > self.dirty_above:
            return "dirty"
        if rate < self.clean_below:
            return "clean"
        return "in-between"


@dataclass(frozen=True)
class TrainingRow:
    """One training conversation as text. ``source`` is the file it came from."""

    id: str
    text: str
    source: str = ""


@dataclass(frozen=True)
class TestItem:
    """One benchmark item as text."""

    __test__ = False  # not a pytest class

    benchmark: str
    id: str
    text: str


@dataclass
class ItemResult:
    """What the training set holds of one test item.

    Attributes:
        benchmark, id: which item.
        tokens: its length in tokens.
        covered: its tokens covered by matching grams.
        rate: covered / tokens (None when the item is shorter than n).
        verdict: dirty, clean, in-between or too short.
        rows: ids of the training rows with a gram matching one of its grams, in reading order.
    """

    benchmark: str
    id: str
    tokens: int
    covered: int
    rate: float | None
    verdict: Verdict
    rows: list[str] = field(default_factory=list)


@dataclass
class BenchmarkSummary:
    """AgentTuning's table row: mean contamination rate and dirty count over scored items.

    ``scored`` leaves out the items shorter than n (``too_short``).
    """

    benchmark: str
    items: int
    scored: int
    too_short: int
    mean_rate: float | None
    dirty: int
    in_between: int
    clean: int


@dataclass
class RowOverlap:
    """A training row with matching grams: which items it overlaps, and which it makes dirty.

    ``index`` is its position in the order the inputs were read (0-based).
    """

    id: str
    index: int
    source: str
    items: list[tuple[str, str]]
    dirty_items: list[tuple[str, str]]


@dataclass
class ContaminationReport:
    """The result of :func:`find_contamination`."""

    config: ContaminationConfig
    tokenizer: str
    items: list[ItemResult]
    benchmarks: list[BenchmarkSummary]
    rows: list[RowOverlap]
    training_rows: int
    training_tokens: int
    test_tokens: int
    seconds: float
    keys: list[tuple[int, ...]]

    @property
    def culprits(self) -> set[int]:
        """Reading-order indices of the training rows that make some item dirty."""
        return {r.index for r in self.rows if r.dirty_items}


# -- tokenizers --------------------------------------------------------------------------


class WordTokenizer:
    """Words and punctuation marks as tokens (``\\w+`` or one other non-space character).

    Needs no files; ids are given in order of first sight, so they are stable within one
    instance only (one run).
    """

    name = "words"
    approximate = False

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._words: list[str] = []

    def encode(self, text: str) -> list[int]:
        ids = self._ids
        out = []
        for word in _WORD_RE.findall(text):
            i = ids.get(word)
            if i is None:
                i = ids[word] = len(self._words)
                self._words.append(word)
            out.append(i)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self._words[i] for i in ids)

    def count(self, text: str) -> int:
        return len(_WORD_RE.findall(text))


def tokenizer_by_name(name: str | None = None) -> Tokenizer:
    """``"words"`` (:class:`WordTokenizer`), else :func:`genteach.tokens.tokenizer_for`:
    a tiktoken encoding or OpenAI model name, or a local Hugging Face tokenizer folder;
    None for cl100k_base. Never reaches the network."""
    if name == "words":
        return WordTokenizer()
    tok = tokenizer_for(name)
    if name is not None and tok.approximate:
        log.warning("tokenizer %s is not available offline; cl100k_base stands in", name)
    return tok


def _encode_batch(tok: Tokenizer, texts: list[str], threads: int) -> list[list[int]]:
    if isinstance(tok, TiktokenTokenizer):
        return tok.encoding.encode_ordinary_batch(texts, num_threads=threads)
    return [tok.encode(t) for t in texts]


# -- reading inputs ----------------------------------------------------------------------


def message_text(messages: Any, roles: Sequence[str] = ("user", "assistant")) -> str:
    """The contents of the turns with these roles, one per line.

    Args:
        messages: a list of ``{"role", "content"}`` mappings, or that list as JSON text (the
            ``--json-messages`` export form).
        roles: the roles to keep.

    Raises:
        ValueError: ``messages`` is not a list of turns.
    """
    if isinstance(messages, str):
        messages = json.loads(messages)
    if not isinstance(messages, list):
        raise ValueError(f"messages is a {type(messages).__name__}, not a list of turns")
    parts = []
    for m in messages:
        if not isinstance(m, Mapping):
            raise ValueError(f"a turn is a {type(m).__name__}, not a mapping")
        if m.get("role") in roles:
            content = m.get("content")
            parts.append(content if isinstance(content, str) else _as_text(content))
    return "\n".join(parts)


def read_training(
    paths: Sequence[str | Path], roles: Sequence[str] = ("user", "assistant")
) -> Iterator[TrainingRow]:
    """Stream training rows from genteach output folders, records or other ``.jsonl``
    files, ``.parquet`` files, folders of parquet files (an export) and ``datasets``
    folders (``save_to_disk``); each row needs a ``messages`` column.

    A row's id is its ``id`` column, else ``<file>:<line>`` (``<file>#<row>`` for parquet
    and datasets rows).

    Raises:
        FileNotFoundError: a path is missing, or a folder holds nothing readable.
        ValueError: a row has no ``messages``, or they are not turns.
    """
    for path in paths:
        for source, where, row in _table_rows(Path(path)):
            if "messages" not in row:
                raise ValueError(f"{where}: no 'messages' column (columns: {', '.join(row)})")
            try:
                text = message_text(row["messages"], roles)
            except (ValueError, json.JSONDecodeError) as exc:
                raise ValueError(f"{where}: messages: {exc}") from exc
            rid = row.get("id")
            yield TrainingRow(str(rid) if rid is not None else where, text, source)


def read_benchmark(
    path: str | Path,
    fields: Sequence[str],
    *,
    name: str | None = None,
    id_field: str = "id",
) -> list[TestItem]:
    """The items of one benchmark file (JSONL, parquet, or a ``datasets`` folder).

    Args:
        path: the file or folder.
        fields: the columns whose text makes an item, joined by newlines; ``a.b`` reads
            field ``b`` of column ``a``; lists are joined by newlines, other values written
            as JSON.
        name: the benchmark's name (default: the file name without its extension).
        id_field: the column with the item's id; without it, the item's 0-based position.

    Raises:
        FileNotFoundError: the path is missing.
        ValueError: an item lacks a field (the message names the file and row).
    """
    p = Path(path)
    if not fields:
        raise ValueError("no test fields given")
    bench = name or p.name.split(".")[0]
    items = []
    for i, (_, where, row) in enumerate(_table_rows(p)):
        parts = []
        for f in fields:
            value: Any = row
            for key in f.split("."):
                if not isinstance(value, Mapping) or key not in value:
                    cols = ", ".join(row)
                    raise ValueError(f"{where}: no field {f!r} (columns: {cols})")
                value = value[key]
            parts.append(_as_text(value))
        rid = row.get(id_field)
        items.append(TestItem(bench, str(rid) if rid is not None else str(i), "\n".join(parts)))
    return items


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_as_text(v) for v in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _table_rows(p: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(source, where, row) for every row of a JSONL / parquet file or a folder."""
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if p.is_dir():
        if (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
            yield from _datasets_rows(p)
            return
        if (p / "records.jsonl").is_file() or (p / "shards").is_dir():
            for f in find_record_files(p):
                yield from _jsonl_rows(f)
            return
        parquet = sorted(p.rglob("*.parquet"))
        if not parquet:
            raise FileNotFoundError(
                f"{p}: not a genteach output folder, a datasets folder (save_to_disk) nor a "
                "folder of parquet files"
            )
        for f in parquet:
            yield from _parquet_rows(f)
        return
    if p.suffix == ".parquet":
        yield from _parquet_rows(p)
    else:
        yield from _jsonl_rows(p)


def _jsonl_rows(f: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for lineno, obj in enumerate(read_jsonl(f), 1):
        if not isinstance(obj, dict):
            raise ValueError(f"{f}:{lineno}: a JSON {type(obj).__name__}, not an object")
        yield str(f), f"{f}:{lineno}", obj


def _parquet_rows(f: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    i = 0
    for batch in pq.ParquetFile(f).iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            yield str(f), f"{f}#{i}", row
            i += 1


def _datasets_rows(p: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    from datasets import Dataset, load_from_disk

    loaded = load_from_disk(str(p))
    splits = {"": loaded} if isinstance(loaded, Dataset) else dict(loaded)
    for split, ds in splits.items():
        src = f"{p}/{split}" if split else str(p)
        for i, row in enumerate(ds):
            yield src, f"{src}#{i}", dict(row)


# -- the index -----------------------------------------------------------------------------


def pigeonhole_keys(n: int, k: int, key_tokens: int | None = None) -> list[tuple[int, ...]]:
    """Position subsets of an n-gram such that two n-grams with at most k mismatched
    positions agree on every position of at least one subset.

    Args:
        n: gram length.
        k: most mismatches.
        key_tokens: None: k + 1 contiguous blocks of near-equal length (k mismatches spoil at
            most k blocks). A number s <= n - k: a covering of s-position keys found greedily
            and checked against every pattern of n - k agreeing positions; larger keys are
            rarer in natural text (fewer false candidates) but there are more of them.

    Raises:
        ValueError: k not below n, or s not in 1..n - k.
    """
    if not 0 <= k < n:
        raise ValueError(f"mismatches must be from 0 to n - 1 = {n - 1}, not {k}")
    if key_tokens is None:
        bounds = [round(i * n / (k + 1)) for i in range(k + 2)]
        return [tuple(range(a, b)) for a, b in itertools.pairwise(bounds)]
    s = key_tokens
    if not 1 <= s <= n - k:
        raise ValueError(f"key tokens must be from 1 to n - mismatches = {n - k}, not {s}")
    if math.comb(n, n - k) * math.comb(n, s) > 50_000_000:
        raise ValueError(f"a covering for n={n}, k={k}, key tokens={s} is too large to search")
    patterns = np.array(
        [sum(1 << i for i in c) for c in itertools.combinations(range(n), n - k)], dtype=np.int64
    )
    subsets = [c for c in itertools.combinations(range(n), s)]
    masks = np.array([sum(1 << i for i in c) for c in subsets], dtype=np.int64)
    spans = np.array([c[-1] - c[0] for c in subsets])
    left = np.ones(len(patterns), dtype=bool)
    chosen: list[tuple[int, ...]] = []
    while left.any():
        live = patterns[left]
        hits = ((live[None, :] & masks[:, None]) == masks[:, None]).sum(axis=1)
        best = int(np.lexsort((spans, -hits))[0])  # most patterns, then the narrowest
        chosen.append(subsets[best])
        left &= (patterns & masks[best]) != masks[best]
    return chosen


def _mix(h: U64) -> U64:
    h ^= h >> np.uint64(31)
    h *= _M2
    h ^= h >> np.uint64(29)
    return h


def _key_hash(cols: Sequence[I64], salt: int) -> U64:
    h = np.full(len(cols[0]), salt, dtype=np.uint64)
    for c in cols:
        h ^= c.astype(np.uint64)
        h *= _M1
        h ^= h >> np.uint64(32)
    return _mix(h)


def _gram_starts(lengths: I64, n: int) -> tuple[I64, I64]:
    """Start offsets of all n-grams in the concatenation of sequences, and their sequence."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    grams = np.maximum(lengths - n + 1, 0)
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), grams)
    first = np.repeat(starts - np.concatenate([[0], np.cumsum(grams)[:-1]]), grams)
    return np.arange(len(owner), dtype=np.int64) + first, owner


def _concat(seqs: Sequence[Sequence[int]]) -> tuple[I64, I64]:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    flat = np.fromiter(
        itertools.chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum())
    )
    return flat, lengths


class NgramIndex:
    """The distinct n-grams of the test items, indexed by their keys.

    Args:
        items: token ids per test item.
        n, max_mismatches, key_tokens: see :class:`ContaminationConfig`.
    """

    def __init__(
        self,
        items: Sequence[Sequence[int]],
        *,
        n: int = 10,
        max_mismatches: int = 4,
        key_tokens: int | None = 4,
    ) -> None:
        self.n, self.k = n, max_mismatches
        if key_tokens is not None:
            key_tokens = min(key_tokens, n - max_mismatches)
        self.keys = pigeonhole_keys(n, max_mismatches, key_tokens)
        self.tokens, self.lengths = _concat(items)
        self.item_starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        starts, self.gram_item = _gram_starts(self.lengths, n)
        self.gram_pos = starts
        mat = self.tokens[starts[:, None] + np.arange(n)] if len(starts) else np.zeros((0, n))
        mat = np.ascontiguousarray(mat, dtype=np.int64)
        # Distinct grams: repeated text (a run of one token, a phrase used in many items) is
        # looked up once; gram_id maps each test gram to its distinct gram.
        view = mat.view(np.dtype((np.void, 8 * n))).ravel()
        _, first, self.gram_id = np.unique(view, return_index=True, return_inverse=True)
        self.gram_id = self.gram_id.ravel().astype(np.int64)
        self.grams: I64 = mat[first]
        # A hash table in one sorted array of packed entries: the top `bits` bits of the
        # key's hash (its bucket: entries of bucket b are start[b] to start[b + 1], about one
        # each), then check bits (more of the hash, to tell bucket mates apart; a rare false
        # candidate is verified anyway), then the distinct gram. A bit filter (8 bits per
        # entry, small enough to stay mostly in cache) answers most misses first.
        grams = len(self.grams)
        entries = len(self.keys) * grams
        bits = int(min(max(10, math.ceil(math.log2(max(1, entries)))), 28))
        self._shift = np.uint64(64 - bits)
        self._owner_bits = max(1, math.ceil(math.log2(max(2, grams))))
        check_bits = 64 - bits - self._owner_bits
        if check_bits < 1:
            raise ValueError(f"{grams} distinct test grams are too many for one index")
        self._owner_mask = np.uint64((1 << self._owner_bits) - 1)
        self._check_mask = np.uint64((1 << check_bits) - 1)
        filter_bits = int(min(max(13, math.ceil(math.log2(max(1, 8 * entries)))), 33))
        self._bit_mask = np.uint64((1 << filter_bits) - 1)
        self._bits = np.zeros(1 << (filter_bits - 3), dtype=np.uint8)
        packed = np.empty(entries, dtype=np.uint64)
        owner = np.arange(grams, dtype=np.uint64)
        for j, key in enumerate(self.keys):
            h = _key_hash([self.grams[:, i] for i in key], j + 1)
            packed[j * grams : (j + 1) * grams] = self._pack(h, owner)
            bit = (h & self._bit_mask).astype(np.int64)
            for b in range(8):  # one value per pass, so repeated indices write the same byte
                self._bits[bit[(bit & 7) == b] >> 3] |= np.uint8(1 << b)
        packed.sort()
        self._packed = packed
        self._start = np.empty((1 << bits) + 1, np.int32 if entries < 2**31 else np.int64)
        self._start[-1] = entries
        for a in range(0, 1 << bits, 1 << 20):  # in parts: no 64-bit array per bucket
            bucket = np.arange(a, min(a + (1 << 20), 1 << bits), dtype=np.uint64)
            self._start[a : a + len(bucket)] = np.searchsorted(packed, bucket << self._shift)

    def _pack(self, h: U64, owner: U64) -> U64:
        top = (h >> self._shift) << self._shift
        check = (h & self._check_mask) << np.uint64(self._owner_bits)
        return top | check | owner

    @property
    def distinct_grams(self) -> int:
        """Distinct test n-grams indexed."""
        return len(self.grams)

    def match(self, rows: Sequence[Sequence[int]]) -> tuple[I64, I64]:
        """Match training rows against the index.

        Args:
            rows: token ids per training row.

        Returns:
            ``(row, gram)`` pairs, unique: a row (position in ``rows``) has a gram within
            ``max_mismatches`` of distinct test gram ``gram``.
        """
        n, k = self.n, self.k
        tokens, lengths = _concat(rows)
        starts, owner = _gram_starts(lengths, n)
        found_rows, found_grams = [], []
        if not len(starts):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        cols = [tokens[starts + i] for i in range(n)]  # token i of every training gram
        for j, key in enumerate(self.keys):
            h = _key_hash([cols[i] for i in key], j + 1)
            # A one-byte-per-8-entries bit filter first (small, so mostly in cache).
            bit = (h & self._bit_mask).astype(np.int64)
            hit = np.flatnonzero((self._bits[bit >> 3] >> (bit & 7).astype(np.uint8)) & 1)
            bucket = (h[hit] >> self._shift).astype(np.int64)
            lo = self._start[bucket].astype(np.int64)
            count = self._start[bucket + 1].astype(np.int64) - lo
            keep = np.flatnonzero(count)
            hit, lo, count = hit[keep], lo[keep], count[keep]
            total = int(count.sum())
            for a in range(0, total, _VERIFY_BATCH):
                b = min(total, a + _VERIFY_BATCH)
                cand, test = _expand(hit, lo, count, a, b)
                entry = self._packed[test]
                own = self._owner_mask
                same = (entry & ~own) == self._pack(h[cand], np.zeros(len(cand), np.uint64))
                cand = cand[same]  # bucket mates with other hashes out
                gram = (entry[same] & own).astype(np.int64)
                mism = np.zeros(len(cand), dtype=np.int16)
                for i in range(n):
                    mism += cols[i][cand] != self.grams[gram, i]
                ok = mism <= k
                found_rows.append(owner[cand[ok]])
                found_grams.append(gram[ok])
        if not found_rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pairs = np.unique(
            np.stack([np.concatenate(found_rows), np.concatenate(found_grams)], axis=1), axis=0
        )
        return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)


def _expand(hit: I64, lo: I64, count: I64, a: int, b: int) -> tuple[I64, I64]:
    """Candidates a..b of the ranges ``lo[i] : lo[i] + count[i]``, as (query, index) pairs."""
    ends = np.cumsum(count)
    first = int(np.searchsorted(ends, a, side="right"))
    last = int(np.searchsorted(ends, b - 1, side="right")) + 1
    ends, hit, lo, count = ends[first:last], hit[first:last], lo[first:last], count[first:last]
    begins = ends - count
    clip_lo = np.maximum(begins, a)
    clip_hi = np.minimum(ends, b)
    sizes = clip_hi - clip_lo
    query = np.repeat(hit, sizes)
    offset = np.arange(b - a, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    index = np.repeat(lo + (clip_lo - begins), sizes) + offset
    return query, index


# -- the analysis ------------------------------------------------------------------------


def find_contamination(
    training: Iterable[TrainingRow],
    items: Sequence[TestItem],
    tokenizer: Tokenizer | None = None,
    config: ContaminationConfig | None = None,
    *,
    threads: int = 1,
    progress: Callable[[int], None] | None = None,
) -> ContaminationReport:
    """Measure how much of each test item the training rows contain.

    Args:
        training: training rows, read once, in chunks (see :func:`read_training`).
        items: the test items of every benchmark (see :func:`read_benchmark`).
        tokenizer: default cl100k_base.
        config: n, mismatches, thresholds, keys.
        threads: tiktoken threads for tokenising.
        progress: called with the number of training rows read so far, after each chunk.

    Returns:
        Per item, per benchmark and per overlapping training row results.
    """
    cfg = config or ContaminationConfig()
    tok = tokenizer or tokenizer_by_name(None)
    t0 = time.perf_counter()
    index = NgramIndex(
        _encode_batch(tok, [it.text for it in items], threads),
        n=cfg.n,
        max_mismatches=cfg.max_mismatches,
        key_tokens=cfg.effective_key_tokens,
    )
    pair_rows: list[I64] = []
    pair_grams: list[I64] = []
    matched: dict[int, TrainingRow] = {}
    n_rows = n_tokens = 0
    for chunk in _chunks(training, cfg.chunk_tokens):
        ids = _encode_batch(tok, [r.text for r in chunk], threads)
        n_tokens += sum(len(x) for x in ids)
        rows, grams = index.match(ids)
        for r in np.unique(rows).tolist():
            matched[n_rows + r] = chunk[r]
        pair_rows.append(rows + n_rows)
        pair_grams.append(grams)
        n_rows += len(chunk)
        if progress:
            progress(n_rows)
    rows_all = np.concatenate(pair_rows) if pair_rows else np.zeros(0, np.int64)
    grams_all = np.concatenate(pair_grams) if pair_grams else np.zeros(0, np.int64)
    results, row_items = _score(index, items, cfg, rows_all, grams_all, matched)
    overlaps = []
    for r in sorted(row_items):
        its = sorted(row_items[r])
        row = matched[r]
        overlaps.append(
            RowOverlap(
                id=row.id,
                index=r,
                source=row.source,
                items=[(items[i].benchmark, items[i].id) for i in its],
                dirty_items=[
                    (items[i].benchmark, items[i].id) for i in its if results[i].verdict == "dirty"
                ],
            )
        )
    return ContaminationReport(
        config=cfg,
        tokenizer=tok.name + (" (standing in)" if tok.approximate else ""),
        items=results,
        benchmarks=summarize(results),
        rows=overlaps,
        training_rows=n_rows,
        training_tokens=n_tokens,
        test_tokens=int(index.lengths.sum()),
        seconds=time.perf_counter() - t0,
        keys=index.keys,
    )


def _chunks(rows: Iterable[TrainingRow], chunk_tokens: int) -> Iterator[list[TrainingRow]]:
    # Tokens are estimated before tokenising as characters / 4: close enough to bound memory.
    chunk: list[TrainingRow] = []
    size = 0
    for row in rows:
        chunk.append(row)
        size += len(row.text) // 4 + 1
        if size >= chunk_tokens:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _score(
    index: NgramIndex,
    items: Sequence[TestItem],
    cfg: ContaminationConfig,
    rows: I64,
    grams: I64,
    matched: Mapping[int, TrainingRow],
) -> tuple[list[ItemResult], dict[int, set[int]]]:
    """Covered tokens per item, and which items each matching row overlaps."""
    n = cfg.n
    hit = np.zeros(index.distinct_grams, dtype=bool)
    hit[grams] = True
    matched_pos = index.gram_pos[hit[index.gram_id]]
    edge = np.zeros(len(index.tokens) + 1, dtype=np.int64)
    np.add.at(edge, matched_pos, 1)
    np.add.at(edge, matched_pos + n, -1)
    covered = np.cumsum(edge)[:-1] > 0
    cum = np.concatenate([[0], np.cumsum(covered)])
    ends = index.item_starts + index.lengths
    per_item = cum[ends] - cum[index.item_starts]
    # (row, distinct gram) -> (row, item): every test gram with that content.
    order = np.argsort(index.gram_id, kind="stable")
    bounds = np.searchsorted(index.gram_id[order], np.arange(index.distinct_grams + 1))
    row_items: dict[int, set[int]] = {}
    item_rows: dict[int, set[int]] = {}
    for r, g in zip(rows.tolist(), grams.tolist(), strict=True):
        for it in set(index.gram_item[order[bounds[g] : bounds[g + 1]]].tolist()):
            row_items.setdefault(r, set()).add(it)
            item_rows.setdefault(it, set()).add(r)
    results = []
    for i, item in enumerate(items):
        length = int(index.lengths[i])
        rate = None if length < n else int(per_item[i]) / length
        results.append(
            ItemResult(
                benchmark=item.benchmark,
                id=item.id,
                tokens=length,
                covered=int(per_item[i]),
                rate=rate,
                verdict=cfg.verdict(rate),
                rows=[matched[r].id for r in sorted(item_rows.get(i, ()))],
            )
        )
    return results, row_items


def summarize(results: Sequence[ItemResult]) -> list[BenchmarkSummary]:
    """One :class:`BenchmarkSummary` per benchmark, in order of first appearance."""
    by: dict[str, list[ItemResult]] = {}
    for r in results:
        by.setdefault(r.benchmark, []).append(r)
    out = []
    for name, rs in by.items():
        rates = [r.rate for r in rs if r.rate is not None]
        out.append(
            BenchmarkSummary(
                benchmark=name,
                items=len(rs),
                scored=len(rates),
                too_short=len(rs) - len(rates),
                mean_rate=statistics.fmean(rates) if rates else None,
                dirty=sum(r.verdict == "dirty" for r in rs),
                in_between=sum(r.verdict == "in-between" for r in rs),
                clean=sum(r.verdict == "clean" for r in rs),
            )
        )
    return out


# -- outputs -------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def summary_table(report: ContaminationReport) -> str:
    """AgentTuning's table in Markdown: mean contamination rate and dirty / scored items."""
    lines = [
        "| benchmark | contamination rate | dirty / total | in-between | clean | too short |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for b in report.benchmarks:
        lines.append(
            f"| {b.benchmark} | {_pct(b.mean_rate)} | {b.dirty}/{b.scored} | {b.in_between} "
            f"| {b.clean} | {b.too_short} |"
        )
    if len(report.benchmarks) > 1:
        rates = [r.rate for r in report.items if r.rate is not None]
        mean = statistics.fmean(rates) if rates else None
        dirty = sum(b.dirty for b in report.benchmarks)
        lines.append(
            f"| **total** | {_pct(mean)} | {dirty}/{len(rates)} "
            f"| {sum(b.in_between for b in report.benchmarks)} "
            f"| {sum(b.clean for b in report.benchmarks)} "
            f"| {sum(b.too_short for b in report.benchmarks)} |"
        )
    return "\n".join(lines)


def summary_markdown(report: ContaminationReport) -> str:
    """The summary page: settings, the table, and the dirtiest items."""
    c = report.config
    kt = c.effective_key_tokens
    keys = "k + 1 blocks" if kt is None else f"{len(report.keys)} keys of {kt} tokens"
    lines = [
        "# Test-set contamination",
        "",
        f"Method: {c.n}-grams of `{report.tokenizer}` tokens matching a training {c.n}-gram "
        f"with at most {c.max_mismatches} mismatched tokens cover the item's tokens; "
        f"rate = covered / tokens; dirty above {_pct(c.dirty_above)}, clean below "
        f"{_pct(c.clean_below)}. Items shorter than {c.n} tokens are not scored. "
        f"Index keys: {keys}.",
        "",
        f"Training: {report.training_rows} rows, {report.training_tokens} tokens. "
        f"Test: {len(report.items)} items, {report.test_tokens} tokens. "
        f"Rows overlapping some item: {len(report.rows)}; making some item dirty: "
        f"{len(report.culprits)}. Time: {report.seconds:.1f} s.",
        "",
        summary_table(report),
        "",
    ]
    worst = sorted(
        (r for r in report.items if r.rate), key=lambda r: (-(r.rate or 0), r.benchmark, r.id)
    )[:20]
    if worst:
        lines += ["## Most contaminated items", "", "| benchmark | id | rate | verdict | rows |"]
        lines.append("|---|---|---:|---|---|")
        for r in worst:
            shown = ", ".join(r.rows[:3]) + (f" (+{len(r.rows) - 3})" if len(r.rows) > 3 else "")
            lines.append(f"| {r.benchmark} | {r.id} | {_pct(r.rate)} | {r.verdict} | {shown} |")
        lines.append("")
    return "\n".join(lines)


def write_report(report: ContaminationReport, out_dir: str | Path) -> list[Path]:
    """Write ``items.jsonl``, ``rows.jsonl`` (overlapping rows only), ``summary.json`` and
    ``summary.md`` into ``out_dir``; returns their paths.

    Raises:
        ValueError: ``out_dir`` is a file.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / ITEMS_FILE, out / ROWS_FILE, out / SUMMARY_JSON, out / SUMMARY_MD]
    with paths[0].open("w", encoding="utf-8") as fh:
        for it in report.items:
            fh.write(json.dumps(asdict(it), ensure_ascii=False) + "\n")
    with paths[1].open("w", encoding="utf-8") as fh:
        for row in report.rows:
            d = asdict(row)
            d["items"] = [{"benchmark": b, "id": i} for b, i in row.items]
            d["dirty_items"] = [{"benchmark": b, "id": i} for b, i in row.dirty_items]
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    summary = {
        "config": asdict(report.config),
        "tokenizer": report.tokenizer,
        "keys": [list(k) for k in report.keys],
        "training_rows": report.training_rows,
        "training_tokens": report.training_tokens,
        "test_items": len(report.items),
        "test_tokens": report.test_tokens,
        "overlapping_rows": len(report.rows),
        "culprit_rows": len(report.culprits),
        "seconds": round(report.seconds, 3),
        "benchmarks": [asdict(b) for b in report.benchmarks],
    }
    paths[2].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    paths[3].write_text(summary_markdown(report), encoding="utf-8")
    return paths


def drop_dirty(
    paths: Sequence[str | Path], report: ContaminationReport, out_dir: str | Path
) -> tuple[int, int]:
    """Write the training set without the rows that make some item dirty.

    A row makes an item dirty when the item is dirty and one of the row's grams matches one
    of the item's (so the row's matches add to the item's covered tokens). ``out_dir``
    gets ``records.jsonl`` (the kept rows as read, in order: a genteach folder that
    ``genteach export`` reads) and ``dropped.jsonl`` (the ids, sources and dirty items of
    the dropped rows). The inputs are read again, in the same order as for ``report``.

    Returns:
        (kept, dropped) row counts.

    Raises:
        ValueError: ``out_dir`` already has a ``records.jsonl``, or the inputs changed
            since the report (another number of rows).
    """
    out = Path(out_dir)
    if (out / KEPT_FILE).exists():
        raise ValueError(f"{out / KEPT_FILE} exists; give another folder for the kept rows")
    out.mkdir(parents=True, exist_ok=True)
    culprits = {r.index: r for r in report.rows if r.dirty_items}
    kept = dropped = 0
    with (
        (out / KEPT_FILE).open("w", encoding="utf-8") as keep,
        (out / DROPPED_FILE).open("w", encoding="utf-8") as drop,
    ):
        i = -1
        for p in paths:
            for _, _, row in _table_rows(Path(p)):
                i += 1
                culprit = culprits.get(i)
                if culprit is None:
                    keep.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
                    kept += 1
                else:
                    d = {"id": culprit.id, "index": i, "source": culprit.source}
                    d["dirty_items"] = [{"benchmark": b, "id": x} for b, x in culprit.dirty_items]
                    drop.write(json.dumps(d, ensure_ascii=False) + "\n")
                    dropped += 1
    if i + 1 != report.training_rows:
        raise ValueError(
            f"the inputs have {i + 1} rows now, {report.training_rows} when measured; measure again"
        )
    return kept, dropped


# -- command line ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``genteach contamination`` (see docs/contamination.md)."""
    parser.add_argument(
        "inputs",
        nargs="+",
        help="training data: genteach output folders, records/other .jsonl, .parquet, export "
        "or datasets (save_to_disk) folders, each row with a messages column",
    )
    parser.add_argument(
        "--test",
        action="append",
        required=True,
        metavar="[NAME=]PATH",
        help="a benchmark: JSONL, parquet or a datasets folder (repeat for several; NAME "
        "defaults to the file name)",
    )
    parser.add_argument(
        "--test-fields",
        required=True,
        help="comma-separated fields whose text makes a test item, e.g. question,answer "
        "(a.b: field b of column a)",
    )
    parser.add_argument("--test-id-field", default="id", help="item id column (default id)")
    parser.add_argument(
        "--roles",
        default="user,assistant",
        help="training turns compared (default user,assistant)",
    )
    parser.add_argument("--out", required=True, help="folder for items.jsonl, rows.jsonl, summary")
    parser.add_argument(
        "--tokenizer",
        metavar="NAME",
        help="tiktoken encoding or OpenAI model, a local HF tokenizer folder, or 'words' "
        "(default cl100k_base)",
    )
    parser.add_argument("-n", "--ngram", type=int, default=10, help="gram length (default 10)")
    parser.add_argument(
        "--mismatches", type=int, default=4, help="tokens that may differ in a gram (default 4)"
    )
    parser.add_argument(
        "--dirty-above", type=float, default=0.8, help="dirty above this rate (default 0.8)"
    )
    parser.add_argument(
        "--clean-below", type=float, default=0.2, help="clean below this rate (default 0.2)"
    )
    parser.add_argument(
        "--key-tokens",
        type=int,
        default=4,
        help="tokens per index key (default 4; n - mismatches at most); speed only, the "
        "result is the same",
    )
    parser.add_argument(
        "--blocks",
        action="store_true",
        help="index by mismatches + 1 blocks instead (slow on natural text; same result)",
    )
    parser.add_argument(
        "--threads", type=int, default=min(4, os.cpu_count() or 1), help="tokenizer threads"
    )
    parser.add_argument(
        "--drop-dirty",
        metavar="OUT",
        help="also write the training rows that make no item dirty to OUT/records.jsonl",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``genteach contamination``: print the table, write the report (and the cleaned
    set). Bad input raises ValueError / FileNotFoundError (exit 2 in the CLI)."""
    cfg = ContaminationConfig(
        n=args.ngram,
        max_mismatches=args.mismatches,
        dirty_above=args.dirty_above,
        clean_below=args.clean_below,
        key_tokens=None if args.blocks else args.key_tokens,
    )
    pigeonhole_keys(cfg.n, cfg.max_mismatches, cfg.effective_key_tokens)  # refuse bad keys early
    if args.threads < 1:
        raise ValueError(f"--threads {args.threads}: must be at least 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder")
    if args.drop_dirty and (Path(args.drop_dirty) / KEPT_FILE).exists():
        raise ValueError(f"--drop-dirty {args.drop_dirty}: already holds {KEPT_FILE}")
    fields = [f.strip() for f in args.test_fields.split(",") if f.strip()]
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    items: list[TestItem] = []
    names: set[str] = set()
    for spec in args.test:
        name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
        bench = read_benchmark(path, fields, name=name or None, id_field=args.test_id_field)
        bname = name or Path(path).name.split(".")[0]
        if bname in names:
            raise ValueError(f"--test {spec}: a second benchmark named {bname!r}; use NAME=PATH")
        names.add(bname)
        items += bench
    report = find_contamination(
        read_training(args.inputs, roles),
        items,
        tokenizer_by_name(args.tokenizer),
        cfg,
        threads=args.threads,
    )
    written = write_report(report, out)
    print(summary_markdown(report).split("\n## ")[0].rstrip())
    print(f"\nwritten: {', '.join(str(p) for p in written)}")
    if args.drop_dirty:
        kept, dropped = drop_dirty(args.inputs, report, args.drop_dirty)
        print(f"kept {kept} rows, dropped {dropped}: {Path(args.drop_dirty) / KEPT_FILE}")
    return 0


__all__ = [
    "BenchmarkSummary",
    "ContaminationConfig",
    "ContaminationReport",
    "ItemResult",
    "NgramIndex",
    "RowOverlap",
    "TestItem",
    "TrainingRow",
    "WordTokenizer",
    "add_arguments",
    "drop_dirty",
    "find_contamination",
    "message_text",
    "pigeonhole_keys",
    "read_benchmark",
    "read_training",
    "run",
    "summarize",
    "summary_markdown",
    "summary_table",
    "tokenizer_by_name",
    "write_report",
]
