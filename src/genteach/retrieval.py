"""Lexical search over a run's seeds: a BM25 index (bm25s) over passages of the seeds.

The seeds are cut into passages of about ``chunk_words`` words (:func:`chunk_text`), each
passage is indexed once per run, and the index is saved in the run's folder and reused on
resume while the seeds and settings are the same (:meth:`SeedIndex.load_or_build`).
Agents search it through :class:`SearchTool`; the RAG skill draws its documents and
distractors from it. See docs/retrieval.md for the scoring and what a match proves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from genteach.models.base import ToolSpec
from genteach.records import Seed
from genteach.runtime.tools import ToolError

# bm25s sets its own logger to DEBUG when imported, so its "Building index from IDs" lines
# reach whatever handler the application set up: keep its warnings only.
logging.getLogger("bm25s").setLevel(logging.WARNING)

#: Bumped when chunking, titles or the saved layout change, so that old indexes rebuild.
INDEX_FORMAT = 1
#: BM25 variant and parameters (bm25s's defaults: Lucene's BM25, k1 1.5, b 0.75).
BM25_METHOD = "lucene"
BM25_K1 = 1.5
BM25_B = 0.75
#: Words: runs of two or more word characters, lower-cased; English stopwords dropped.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
STOPWORDS = "en"

_MIN_WORDS = 10
_TITLE_CHARS = 80
_META = "index.json"
_CHUNKS = "chunks.jsonl"
_BM25 = "bm25"

_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_HEADING = re.compile(r"^#{1,6}[ \t]+(\S.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Chunk:
    """One indexed passage.

    Attributes:
        id: ``<seed_id>#<n>``, ``n`` counting the seed's passages from 1.
        seed_id: the seed it comes from.
        title: the seed's first heading, or its first line (code: its source name), trimmed.
        text: the passage.
    """

    id: str
    seed_id: str
    title: str
    text: str


@dataclass(frozen=True)
class Hit:
    """A passage found by :meth:`SeedIndex.search` and its BM25 score (higher is better)."""

    chunk: Chunk
    score: float


class SeedIndex:
    """A BM25 index over passages of seeds.

    Build it with :meth:`build` (or :meth:`load_or_build` in a run), then :meth:`search`.
    Results are deterministic: equal scores are ordered by chunk id.

    Example:
        >>> index = SeedIndex.build(load_seeds("examples/seeds"))  # doctest: +SKIP
        >>> index.search("tidal barrage output", k=2)[0].chunk.title  # doctest: +SKIP
        'Tidal power and the Severn question'
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        retriever: bm25s.BM25,
        *,
        chunk_words: int,
        overlap_words: int,
    ) -> None:
        self.chunks: tuple[Chunk, ...] = tuple(chunks)
        self.chunk_words = chunk_words
        self.overlap_words = overlap_words
        self.fingerprint = fingerprint(self.chunks, chunk_words, overlap_words)
        self._bm25 = retriever
        seed_codes: dict[str, int] = {}
        self._seed_of = np.array(
            [seed_codes.setdefault(c.seed_id, len(seed_codes)) for c in self.chunks],
            dtype=np.int64,
        )
        self._seed_codes = seed_codes

    @classmethod
    def build(
        cls, seeds: Iterable[Seed], *, chunk_words: int = 160, overlap_words: int = 30
    ) -> SeedIndex:
        """Chunk ``seeds`` and index the passages (a seed seen twice is indexed once).

        Raises:
            ValueError: no seed, or no word to index in any of them; bad chunk sizes.
        """
        chunks = seed_chunks(seeds, chunk_words=chunk_words, overlap_words=overlap_words)
        return cls(chunks, _bm25(chunks), chunk_words=chunk_words, overlap_words=overlap_words)

    def __len__(self) -> int:
        return len(self.chunks)

    def search(self, query: str, k: int = 5, *, exclude_seed: str | None = None) -> list[Hit]:
        """The ``k`` passages that score best for ``query``, best first.

        Only passages sharing at least one word with the query are returned, so there may
        be fewer than ``k`` (none for a query of stopwords or unknown words).

        Args:
            query: free text; lower-cased and split into words as the passages were.
            k: the most passages to return.
            exclude_seed: leave out the passages of this seed.

        Raises:
            ValueError: an empty query, or ``k`` below 1.
        """
        if k < 1:
            raise ValueError(f"retrieval: k must be at least 1, got {k}")
        scores = self._scores(query)
        if exclude_seed is not None and exclude_seed in self._seed_codes:
            scores[self._seed_of == self._seed_codes[exclude_seed]] = 0.0
        return [Hit(self.chunks[i], float(scores[i])) for i in self._top(scores, k)]

    def distractors(
        self, query: str, k: int, *, avoid: Collection[str], rng: random.Random
    ) -> list[Chunk]:
        """``k`` passages from elsewhere in the corpus, as distractors for ``query``.

        About half are near misses (drawn from the best-scoring passages for the query),
        the rest are drawn from all other passages, so a reader must look at the content
        and not only at the topic. Fewer when the corpus is too small.

        Args:
            query: what the real documents answer.
            k: how many distractors.
            avoid: chunk ids and seed ids to leave out (the question's own passages and
                seed).
            rng: the only source of randomness (same state, same distractors).

        Raises:
            ValueError: an empty query, or ``k`` below 0.
        """
        if k < 0:
            raise ValueError(f"retrieval: k must be at least 0, got {k}")
        scores = self._scores(query)
        skip = set(avoid)
        allowed = [
            i for i, c in enumerate(self.chunks) if c.id not in skip and c.seed_id not in skip
        ]
        if k == 0 or not allowed:
            return []
        mask = np.zeros(len(self.chunks), dtype=bool)
        mask[allowed] = True
        scores[~mask] = 0.0
        near_pool = self._top(scores, 2 * k)
        near = rng.sample(near_pool, min(len(near_pool), math.ceil(k / 2)))
        taken = set(near)
        rest = [i for i in allowed if i not in taken]
        far = rng.sample(rest, min(len(rest), k - len(near)))
        return [self.chunks[i] for i in near + far]

    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` (created if needed): the passages, the bm25s
        arrays, and ``index.json`` (settings and fingerprint) last, so that a save cut
        short is not taken for a whole one."""
        folder.mkdir(parents=True, exist_ok=True)
        meta_path = folder / _META
        meta_path.unlink(missing_ok=True)
        with (folder / _CHUNKS).open("w", encoding="utf-8") as fh:
            for chunk in self.chunks:
                fh.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
        self._bm25.save(str(folder / _BM25))
        meta = {
            "format": INDEX_FORMAT,
            "chunks": len(self.chunks),
            "chunk_words": self.chunk_words,
            "overlap_words": self.overlap_words,
            "fingerprint": self.fingerprint,
            "bm25s": bm25s.__version__,
        }
        meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> SeedIndex:
        """Read an index written by :meth:`save`.

        Raises:
            FileNotFoundError: no index in ``folder``.
            ValueError: the index is damaged or in another format.
        """
        meta = _read_meta(folder)
        if meta is None:
            raise FileNotFoundError(f"retrieval: no index in {folder} ({_META} missing)")
        if meta.get("format") != INDEX_FORMAT:
            raise ValueError(
                f"retrieval: index in {folder} has format {meta.get('format')}, "
                f"expected {INDEX_FORMAT}"
            )
        try:
            with (folder / _CHUNKS).open(encoding="utf-8") as fh:
                chunks = [Chunk(**json.loads(line)) for line in fh if line.strip()]
            retriever = bm25s.BM25.load(str(folder / _BM25))
            words, overlap = int(meta["chunk_words"]), int(meta["overlap_words"])
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"retrieval: damaged index in {folder}: {exc}") from exc
        if len(chunks) != meta.get("chunks") or retriever.scores["num_docs"] != len(chunks):
            raise ValueError(f"retrieval: damaged index in {folder}: passage counts differ")
        index = cls(chunks, retriever, chunk_words=words, overlap_words=overlap)
        if index.fingerprint != meta.get("fingerprint"):
            raise ValueError(f"retrieval: damaged index in {folder}: fingerprint differs")
        return index

    @classmethod
    def load_or_build(
        cls,
        folder: Path,
        seeds: Iterable[Seed],
        *,
        chunk_words: int = 160,
        overlap_words: int = 30,
    ) -> SeedIndex:
        """The index saved in ``folder`` when it was built from the same passages with the
        same settings (same :func:`fingerprint`); otherwise a new one, saved there.

        Raises:
            ValueError: as :meth:`build`.
        """
        chunks = seed_chunks(seeds, chunk_words=chunk_words, overlap_words=overlap_words)
        meta = _read_meta(folder)
        if meta is not None and meta.get("fingerprint") == fingerprint(
            chunks, chunk_words, overlap_words
        ):
            try:
                return cls.load(folder)
            except (OSError, ValueError):
                pass  # damaged: build it again below
        index = cls(chunks, _bm25(chunks), chunk_words=chunk_words, overlap_words=overlap_words)
        index.save(folder)
        return index

    # -- scoring ------------------------------------------------------------------------

    def _scores(self, query: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        """BM25 scores of every passage for ``query`` (a fresh array, safe to edit)."""
        if not query.strip():
            raise ValueError("retrieval: the query is empty")
        words = _tokenize([query])[0]
        ids = self._bm25.get_tokens_ids(words)
        if not ids:
            return np.zeros(len(self.chunks), dtype=np.float32)
        scores = self._bm25.get_scores_from_ids(ids)
        return np.array(scores, dtype=np.float32)

    def _top(self, scores: np.ndarray[Any, np.dtype[np.float32]], k: int) -> list[int]:
        """Indices of the ``k`` best positive scores; equal scores by chunk id."""
        positive = np.flatnonzero(scores > 0)
        if len(positive) > k:
            kth = np.partition(scores[positive], len(positive) - k)[len(positive) - k]
            positive = positive[scores[positive] >= kth]
        ranked = sorted(positive.tolist(), key=lambda i: (-float(scores[i]), self.chunks[i].id))
        return ranked[:k]


class SearchTool:
    """The index as a teacher tool: ``{"query": ..., "k": ...}`` gives the best passages,
    numbered, each with its id and title, cut to a bounded length.

    Args:
        index: what to search.
        name: the tool's name.
        k: passages returned when the call does not say.
        max_k: the most passages a call may ask for.
        passage_chars: each passage is cut to about this many characters.
        exclude_seed: leave this seed's passages out (e.g. the seed the task was made from).
    """

    def __init__(
        self,
        index: SeedIndex,
        *,
        name: str = "search_documents",
        k: int = 5,
        max_k: int = 10,
        passage_chars: int = 700,
        exclude_seed: str | None = None,
    ) -> None:
        if not 1 <= k <= max_k:
            raise ValueError(f"retrieval: k must be between 1 and max_k ({max_k}), got {k}")
        self.index = index
        self.k = k
        self.max_k = max_k
        self.passage_chars = passage_chars
        self.exclude_seed = exclude_seed
        self._spec = ToolSpec(
            name=name,
            description=(
                "Keyword search (BM25) over the source documents. Returns the best-matching "
                "passages, numbered, each with its id and title."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Words to look for."},
                    "k": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": max_k,
                        "description": f"How many passages (default {k}).",
                    },
                },
                "required": ["query"],
            },
        )

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def __call__(self, arguments: Mapping[str, Any]) -> str:
        """The hits for ``arguments["query"]`` as text.

        Raises:
            ToolError: no query, an empty one, or a ``k`` that is not an integer in range.
        """
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError(f"{self._spec.name}: 'query' must be a non-empty string")
        k = arguments.get("k", self.k)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.max_k:
            raise ToolError(f"{self._spec.name}: 'k' must be an integer from 1 to {self.max_k}")
        hits = self.index.search(query, k, exclude_seed=self.exclude_seed)
        if not hits:
            return f"No passage matches {query.strip()!r}."
        return "\n\n".join(
            f"[{n}] id: {hit.chunk.id} | title: {hit.chunk.title}\n"
            f"{_cut(hit.chunk.text, self.passage_chars)}"
            for n, hit in enumerate(hits, 1)
        )


# -- chunking -------------------------------------------------------------------------------


def chunk_text(text: str, *, words: int = 160, overlap: int = 30, code: bool = False) -> list[str]:
    """Cut ``text`` into passages of at most ``words`` words.

    Paragraphs (code: blocks between blank lines) are kept whole and packed together up to
    ``words``; a longer one is cut between sentences (code: lines), and a sentence or line
    longer still between words. Each passage after the first starts with the last
    sentences (code: lines) of the one before, at most ``overlap`` words of them, so a
    fact on a boundary is whole in one passage.

    Args:
        text: the text to cut.
        words: the most words (whitespace-separated) in a passage; at least 10.
        overlap: at most this many words repeated from the previous passage; from 0 to
            ``words / 2``.
        code: cut as code (blank-line blocks, lines kept with their indentation).

    Raises:
        ValueError: ``words`` or ``overlap`` out of range.
    """
    if words < _MIN_WORDS:
        raise ValueError(f"retrieval: words must be at least {_MIN_WORDS}, got {words}")
    if not 0 <= overlap <= words // 2:
        raise ValueError(f"retrieval: overlap must be between 0 and words / 2, got {overlap}")
    blocks = [_clean(b, code) for b in _BLANK_LINE.split(text.replace("\r\n", "\n"))]
    units: list[tuple[int, str]] = []  # (paragraph number, whole paragraph or a piece of it)
    for n, block in enumerate(b for b in blocks if b):
        if _count(block) <= words:
            units.append((n, block))
        else:
            units += [(n, piece) for piece in _pieces(block, words, code)]
    chunks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    size = 0
    fresh = 0  # units of ``current`` not carried over from the previous passage
    for unit in units:
        n_words = _count(unit[1])
        if fresh and size + n_words > words:
            chunks.append(current)
            current = _tail(current, overlap, words - n_words, code)
            size = sum(_count(t) for _, t in current)
            fresh = 0
        current.append(unit)
        size += n_words
        fresh += 1
    if fresh:
        chunks.append(current)
    return [_join(chunk, code) for chunk in chunks]


def seed_chunks(
    seeds: Iterable[Seed], *, chunk_words: int = 160, overlap_words: int = 30
) -> list[Chunk]:
    """The passages of ``seeds``, in order; a seed id seen before is skipped.

    Raises:
        ValueError: no seed with text; bad chunk sizes.
    """
    out: list[Chunk] = []
    seen: set[str] = set()
    for seed in seeds:
        if seed.id in seen:
            continue
        seen.add(seed.id)
        title = _title(seed)
        texts = chunk_text(
            seed.text, words=chunk_words, overlap=overlap_words, code=seed.kind == "code"
        )
        out += [Chunk(f"{seed.id}#{n}", seed.id, title, t) for n, t in enumerate(texts, 1)]
    if not out:
        raise ValueError("retrieval: no seed text to index (the corpus is empty)")
    return out


def fingerprint(chunks: Iterable[Chunk], chunk_words: int, overlap_words: int) -> str:
    """sha256 of the settings (format, chunk sizes, BM25 variant and parameters,
    tokenizer, bm25s version) and of every passage's id, title and text."""
    h = hashlib.sha256()
    settings = [
        INDEX_FORMAT,
        chunk_words,
        overlap_words,
        BM25_METHOD,
        BM25_K1,
        BM25_B,
        TOKEN_PATTERN,
        STOPWORDS,
        bm25s.__version__,
    ]
    h.update(json.dumps(settings).encode("utf-8"))
    for c in chunks:
        h.update(json.dumps([c.id, c.title, c.text], ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


# -- helpers --------------------------------------------------------------------------------


def _tokenize(texts: list[str]) -> list[list[str]]:
    tokens: list[list[str]] = bm25s.tokenize(
        texts,
        token_pattern=TOKEN_PATTERN,
        stopwords=STOPWORDS,
        return_ids=False,
        show_progress=False,
    )
    return tokens


def _bm25(chunks: Sequence[Chunk]) -> bm25s.BM25:
    """A bm25s index over the passages (titles included in each passage's words)."""
    tokens = _tokenize([f"{c.title}\n{c.text}" for c in chunks])
    if not any(tokens):
        raise ValueError("retrieval: the seeds have no word to index")
    retriever = bm25s.BM25(method=BM25_METHOD, k1=BM25_K1, b=BM25_B)
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(word, len(vocab)) for word in doc] for doc in tokens]
    retriever.index((ids, vocab), show_progress=False)
    return retriever


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _count(text: str) -> int:
    return len(text.split())


def _clean(block: str, code: bool) -> str:
    return block.strip("\n").rstrip() if code else block.strip()


def _pieces(block: str, words: int, code: bool) -> list[str]:
    """A paragraph too long for one passage as sentences (code: lines), each of at most
    ``words`` words."""
    parts = block.split("\n") if code else _SENTENCE_END.split(block)
    out: list[str] = []
    for part in parts:
        part = part.rstrip() if code else part.strip()
        if not part.strip():
            continue
        tokens = part.split()
        if len(tokens) <= words:
            out.append(part)
        else:
            out += [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]
    return out


def _tail(
    units: list[tuple[int, str]], overlap: int, room: int, code: bool
) -> list[tuple[int, str]]:
    """The last sentences (code: lines) of ``units``: at most ``overlap`` words, and no
    more than ``room``."""
    budget = min(overlap, room)
    out: list[tuple[int, str]] = []
    for n, text in reversed(units):
        for piece in reversed(_pieces(text, len(text), code)):
            size = _count(piece)
            if size > budget:
                return out
            out.insert(0, (n, piece))
            budget -= size
    return out


def _join(units: list[tuple[int, str]], code: bool) -> str:
    paragraphs: list[list[str]] = []
    last = -1
    for n, text in units:
        if n != last:
            paragraphs.append([])
            last = n
        paragraphs[-1].append(text)
    inner = "\n" if code else " "
    return "\n\n".join(inner.join(p) for p in paragraphs)


def _title(seed: Seed) -> str:
    """A seed's first markdown heading, else its first line (code: its source name)."""
    if seed.kind == "code" and seed.source:
        return _cut(seed.source, _TITLE_CHARS)
    heading = _HEADING.search(seed.text)
    if heading is not None:
        return _cut(heading.group(1).strip(), _TITLE_CHARS)
    first = next((line.strip() for line in seed.text.splitlines() if line.strip()), "")
    return _cut(first.strip("#/*\"' \t") or first, _TITLE_CHARS)


def _cut(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters at a space, with ``...`` when cut."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip() + " ..."


__all__ = [
    "BM25_B",
    "BM25_K1",
    "BM25_METHOD",
    "INDEX_FORMAT",
    "STOPWORDS",
    "TOKEN_PATTERN",
    "Chunk",
    "Hit",
    "SearchTool",
    "SeedIndex",
    "chunk_text",
    "fingerprint",
    "seed_chunks",
]
