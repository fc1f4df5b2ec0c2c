"""Seeds from anywhere: folders, files, JSON Lines, parquet, Hugging Face datasets.

:func:`iter_seeds` reads lazily (one document, line, batch or streamed row at a time),
splits long documents into chunks of at most ``chunk_tokens`` tokens, and counts what it
skips, by reason and by file, in a :class:`SeedReport` that also names each skip (file,
and line or row). :func:`load_seeds` is its deduplicated list. See docs/seeds.md for the
sources and the skip reasons.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genteach.records import Seed, SeedKind
from genteach.tokens import Tokenizer, tokenizer_for

#: File endings read as code seeds (language name for the prompts).
CODE_SUFFIXES = {
    ".py": "Python",
    ".js": "JavaScript",
    ".ts": "TypeScript",
    ".java": "Java",
    ".go": "Go",
    ".rs": "Rust",
    ".c": "C",
    ".h": "C",
    ".cpp": "C++",
    ".cc": "C++",
    ".hpp": "C++",
    ".cs": "C#",
    ".rb": "Ruby",
    ".php": "PHP",
    ".kt": "Kotlin",
    ".swift": "Swift",
    ".scala": "Scala",
    ".sh": "Shell",
    ".sql": "SQL",
    ".r": "R",
    ".jl": "Julia",
    ".lua": "Lua",
    ".pl": "Perl",
    ".proto": "Protocol Buffers",
    ".graphql": "GraphQL",
}
#: File endings read as text seeds (a whole file is one document).
TEXT_SUFFIXES = {
    ".txt",
    ".md",
    ".rst",
    ".html",
    ".htm",
    ".tex",
    ".csv",
    ".yaml",
    ".yml",
    ".json",
    ".xml",
    ".org",
    ".adoc",
    "",
}
#: File endings read as rows, one seed (or more, when chunked) per row.
ROW_SUFFIXES = {".jsonl", ".ndjson", ".parquet"}
#: File endings looked at as SQLite databases (one ``database`` seed per file, never
#: chunked); a file is read as one only when it starts with SQLite's header.
DATABASE_SUFFIXES = {".sqlite", ".sqlite3", ".db", ".db3"}
_SQLITE_HEADER = b"SQLite format 3\x00"
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
_BATCH_ROWS = 1024
_NUL_WINDOW = 8192
_MIN_CHUNK = 8  # a single character can take 4 tokens


class SeedSourceError(ValueError):
    """A seed source could not be opened or read through (e.g. a dataset offline)."""


#: Skips a :class:`SeedReport` holds for a sink that is not attached yet; more are counted.
MAX_PENDING_SKIPS = 100_000


@dataclass(frozen=True)
class Skip:
    """One skipped input: the file (or dataset) it is in, the line of a JSON Lines file or
    the row of a parquet file or dataset, the chunk of a chunked document, and why.
    ``count`` is more than 1 for a whole file of rows skipped at once."""

    file: str
    reason: str
    line: int | None = None
    chunk: int | None = None
    count: int = 1

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"file": self.file, "reason": self.reason}
        if self.line is not None:
            out["line"] = self.line
        if self.chunk is not None:
            out["chunk"] = self.chunk
        if self.count != 1:
            out["count"] = self.count
        return out


@dataclass
class SeedReport:
    """What loading found: seeds kept (and their tokens) and inputs skipped, by reason and
    by file. Each skip is also passed to a sink (:meth:`attach`; the pipeline writes them
    to ``skips.jsonl``), or held until one is attached (at most
    :data:`MAX_PENDING_SKIPS`)."""

    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    by_file: Counter[tuple[str, str]] = field(default_factory=Counter)
    pending: list[Skip] = field(default_factory=list, repr=False)
    unlisted: int = 0
    _sink: Callable[[Skip], None] | None = field(default=None, repr=False)

    def skip(
        self,
        reason: str,
        file: str,
        line: int | None = None,
        *,
        chunk: int | None = None,
        count: int = 1,
    ) -> None:
        """Count a skip and name it (see :class:`Skip`)."""
        self.skipped[reason] += count
        self.by_file[(file, reason)] += count
        item = Skip(file, reason, line, chunk, count)
        if self._sink is not None:
            self._sink(item)
        elif len(self.pending) < MAX_PENDING_SKIPS:
            self.pending.append(item)
        else:
            self.unlisted += 1

    def attach(self, sink: Callable[[Skip], None] | None) -> None:
        """Send every skip to ``sink`` from now on, the ones held so far first
        (``None`` detaches it)."""
        self._sink = sink
        if sink is not None:
            for item in self.pending:
                sink(item)
            self.pending.clear()

    def summary(self) -> str:
        """``3 seeds, 1 skipped (binary), 2 skipped (too short)``: kept, then skips by reason."""
        parts = [f"{self.kept} seeds"]
        parts += [f"{n} skipped ({reason})" for reason, n in sorted(self.skipped.items())]
        return ", ".join(parts)

    def files(self, limit: int = 10) -> list[str]:
        """The skip reasons by file, one line per file (``a.jsonl: malformed JSON line (2),
        not UTF-8``), at most ``limit`` lines and a last one counting the other files."""
        reasons: dict[str, list[str]] = {}
        for (file, reason), n in sorted(self.by_file.items()):
            reasons.setdefault(file, []).append(reason if n == 1 else f"{reason} ({n})")
        lines = [f"{file}: {', '.join(rs)}" for file, rs in reasons.items()]
        if len(lines) > limit:
            lines = [*lines[:limit], f"... and {len(lines) - limit} more files"]
        return lines


def require_seeds(seeds: Iterator[Seed], report: SeedReport, source: str) -> Iterator[Seed]:
    """``seeds``, after checking that there is at least one (the first is read now).

    Raises:
        SeedSourceError: no usable seed; one line naming the source and, by file, why
            each input was skipped.
    """
    first = next(seeds, None)
    if first is None:
        why = "; ".join(report.files(limit=5)) or "nothing to read"
        raise SeedSourceError(f"seeds: no usable seed in {source} ({why})")
    return _chain(first, seeds)


def _chain(first: Seed, rest: Iterator[Seed]) -> Iterator[Seed]:
    yield first
    yield from rest


@dataclass
class _Doc:
    source: str
    data: str | bytes
    kind: SeedKind
    language: str
    file: str = ""
    line: int | None = None


def iter_seeds(
    source: str | Path | Iterable[Mapping[str, Any] | str],
    *,
    text_field: str = "text",
    split: str = "train",
    config: str | None = None,
    data_files: str | Sequence[str] | None = None,
    streaming: bool = True,
    chunk_tokens: int = 2048,
    overlap_tokens: int = 0,
    min_tokens: int = 32,
    tokenizer: Tokenizer | str | None = None,
    dedupe: bool = False,
    report: SeedReport | None = None,
) -> Iterator[Seed]:
    """Yield seeds from ``source`` lazily, in a stable order.

    The source is opened now (so a missing path or dataset fails here); reading happens
    as the iterator is consumed.

    Args:
        source: a folder, a file (``.jsonl``/``.json``/``.parquet`` are rows, others one
            document), a saved dataset folder (``Dataset.save_to_disk``), a Hugging Face
            dataset (``"user/corpus"``; ``"hf:name"`` forces a dataset), or an iterable of
            rows (mappings) or texts, e.g. a ``datasets.IterableDataset`` (a ``DatasetDict``
            gives its ``split``).
        text_field: the row field holding the text. Rows may also carry ``kind``
            ("text"/"code"), ``language``, ``source`` and ``id`` (used for provenance).
        split / config / data_files / streaming: passed to ``datasets.load_dataset`` for
            dataset names (``config`` is its ``name``); ``split`` also picks a split of a
            saved ``DatasetDict``.
        chunk_tokens: longer documents are split into chunks of at most this many tokens,
            on paragraph boundaries when possible (code: top-level blocks, then lines).
        overlap_tokens: about this many tokens repeated between consecutive chunks.
        min_tokens: chunks with fewer tokens are skipped ("too short").
        tokenizer: a :class:`~genteach.tokens.Tokenizer` or a model name for
            :func:`~genteach.tokens.tokenizer_for`; default cl100k_base.
        dedupe: skip seeds already yielded ("duplicate"); keeps every id seen in memory.
        report: counts what was kept and skipped.

    Raises:
        FileNotFoundError: ``source`` is neither a path nor a plausible dataset name.
        SeedSourceError: a dataset could not be loaded or read.
    """
    if chunk_tokens < _MIN_CHUNK:
        raise ValueError(f"seeds: chunk_tokens must be at least {_MIN_CHUNK}, got {chunk_tokens}")
    if not 0 <= overlap_tokens <= chunk_tokens // 2:
        raise ValueError(
            f"seeds: overlap_tokens must be between 0 and chunk_tokens / 2, got {overlap_tokens}"
        )
    rep = report if report is not None else SeedReport()
    tok = tokenizer_for(tokenizer) if tokenizer is None or isinstance(tokenizer, str) else tokenizer
    docs = _open(source, rep, text_field, split, config, data_files, streaming)
    return _seeds(docs, rep, tok, chunk_tokens, overlap_tokens, min_tokens, dedupe)


def load_seeds(
    source: str | Path | Iterable[Mapping[str, Any] | str],
    *,
    text_field: str = "text",
    split: str = "train",
    config: str | None = None,
    data_files: str | Sequence[str] | None = None,
    streaming: bool = True,
    chunk_tokens: int = 2048,
    overlap_tokens: int = 0,
    min_tokens: int = 32,
    tokenizer: Tokenizer | str | None = None,
    report: SeedReport | None = None,
) -> list[Seed]:
    """All seeds of ``source``, duplicates skipped; the arguments are :func:`iter_seeds`'s.

    Example:
        >>> report = SeedReport()
        >>> seeds = load_seeds("examples/seeds", report=report)  # doctest: +SKIP
        >>> report.summary()  # doctest: +SKIP
        '4 seeds'
    """
    return list(
        iter_seeds(
            source,
            text_field=text_field,
            split=split,
            config=config,
            data_files=data_files,
            streaming=streaming,
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
            min_tokens=min_tokens,
            tokenizer=tokenizer,
            dedupe=True,
            report=report,
        )
    )


def chunk_text(
    text: str,
    tokenizer: Tokenizer,
    chunk_tokens: int,
    *,
    overlap_tokens: int = 0,
    code: bool = False,
) -> list[str]:
    """Split ``text`` into stripped chunks of at most ``chunk_tokens`` tokens.

    Text is cut at blank lines, then line ends, sentence ends and spaces; code at blank
    lines before an unindented line (top-level definitions), then blank lines, then line
    ends. Whatever still is too long (CJK without punctuation, one huge line) is cut
    between characters, sized by token count. Neighbouring pieces are packed back together
    up to the limit, so text without overlap reassembles up to whitespace.

    Args:
        tokenizer: counts the tokens.
        chunk_tokens: the most tokens in one chunk.
        overlap_tokens: about this many tokens of a chunk's end start the next one.
        code: use code boundaries.
    """
    return [c for c, _ in _chunk(text, tokenizer, chunk_tokens, overlap_tokens, code)]


# --- reading -----------------------------------------------------------------------------


def _open(
    source: str | Path | Iterable[Mapping[str, Any] | str],
    rep: SeedReport,
    text_field: str,
    split: str,
    config: str | None,
    data_files: str | Sequence[str] | None,
    streaming: bool,
) -> Iterator[_Doc]:
    if isinstance(source, Mapping):  # a DatasetDict: its split
        if split not in source:
            raise SeedSourceError(f"seeds: no split {split!r} (there are {sorted(source)})")
        return _rows(source[split], f"rows[{split}]", text_field, rep)
    if not isinstance(source, str | Path):
        return _rows(source, "rows", text_field, rep)
    name = str(source)
    if name.startswith("hf:"):
        return _hub(name[3:], text_field, split, config, data_files, streaming, rep)
    p = Path(name).expanduser()
    if p.is_dir():
        if _is_saved_dataset(p):
            return _saved(p, text_field, split, rep)
        return _folder(p, text_field, rep)
    if p.exists():
        return _file(p, p.name, text_field, rep, single=True)
    if data_files is not None or _HUB_ID.fullmatch(name):
        return _hub(name, text_field, split, config, data_files, streaming, rep)
    raise FileNotFoundError(f"seeds: {p} does not exist (write hf:{name} for a dataset)")


def _folder(root: Path, text_field: str, rep: SeedReport) -> Iterator[_Doc]:
    for f in _walk(root):
        yield from _file(f, f.relative_to(root).as_posix(), text_field, rep, single=False)


def _walk(d: Path) -> Iterator[Path]:
    """Files under ``d`` in name order, hidden files and folders left out, links not followed."""
    with os.scandir(d) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            yield from _walk(Path(e.path))
        elif e.is_file():
            yield Path(e.path)


def _file(p: Path, label: str, text_field: str, rep: SeedReport, *, single: bool) -> Iterator[_Doc]:
    suffix = p.suffix.lower()
    if (single or suffix in DATABASE_SUFFIXES) and _is_sqlite(p):
        yield from _database(p, label, rep)
    elif suffix in (".jsonl", ".ndjson") or (single and suffix == ".json"):
        yield from _json_rows(p, label, text_field, rep)
    elif suffix == ".parquet":
        yield from _parquet(p, label, text_field, rep)
    elif single or suffix in CODE_SUFFIXES or suffix in TEXT_SUFFIXES:
        try:
            raw = p.read_bytes()
        except OSError:
            rep.skip("unreadable file", label)
            return
        kind: SeedKind = "code" if suffix in CODE_SUFFIXES else "text"
        yield _Doc(label, raw, kind, CODE_SUFFIXES.get(suffix, ""), label)
    else:
        rep.skip(f"unsupported file type {suffix}", label)


def _is_sqlite(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            return f.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False


def _database(p: Path, label: str, rep: SeedReport) -> Iterator[_Doc]:
    """A user's SQLite file as one ``database`` seed: its tables, read without changing the
    file, as the JSON of :class:`~genteach.runtime.db.Database` (so the seed, its id and a
    resumed run do not depend on the file staying where it was)."""
    from genteach.runtime.db import Database

    try:
        database = Database.from_sqlite(p)
    except ValueError as exc:
        rep.skip(f"unreadable database: {exc}", label)
        return
    yield _Doc(label, database.model_dump_json(), "database", "", label)


def _json_rows(p: Path, label: str, text_field: str, rep: SeedReport) -> Iterator[_Doc]:
    """JSON Lines, or (a ``.json`` file starting with ``[``) one array of rows."""
    try:
        fh = p.open("rb")
    except OSError:
        rep.skip("unreadable file", label)
        return
    with fh:
        head = fh.read(_NUL_WINDOW).lstrip()
        fh.seek(0)
        if p.suffix.lower() == ".json" and head.startswith(b"["):
            try:
                rows = json.loads(fh.read().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                rep.skip("malformed JSON file", label)
                return
            yield from _rows(rows, label, text_field, rep)
            return
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                rep.skip("not UTF-8", label, n)
                continue
            except json.JSONDecodeError:
                rep.skip("malformed JSON line", label, n)
                continue
            doc = _row_doc(row, n, label, text_field, rep)
            if doc is not None:
                yield doc


def _parquet(p: Path, label: str, text_field: str, rep: SeedReport) -> Iterator[_Doc]:
    """Rows of a parquet file, read a batch at a time and only the columns used."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(p)
    except (OSError, pa.ArrowException):
        rep.skip("unreadable file", label)
        return
    names = set(pf.schema_arrow.names)
    if text_field not in names:
        rep.skip("row without text field", label, count=pf.metadata.num_rows)
        return
    columns = [c for c in (text_field, "kind", "language", "source", "id") if c in names]
    n = 0
    for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
        for row in batch.to_pylist():
            n += 1
            doc = _row_doc(row, n, label, text_field, rep)
            if doc is not None:
                yield doc


def _is_saved_dataset(p: Path) -> bool:
    return (p / "dataset_dict.json").is_file() or (
        (p / "state.json").is_file() and (p / "dataset_info.json").is_file()
    )


def _saved(p: Path, text_field: str, split: str, rep: SeedReport) -> Iterator[_Doc]:
    """A folder written by ``Dataset.save_to_disk`` (memory-mapped, read row by row)."""
    import datasets

    try:
        ds = datasets.load_from_disk(str(p))
    except Exception as exc:  # datasets raises many kinds for a folder it cannot read
        raise SeedSourceError(f"seeds: cannot load the dataset in {p}: {_one_line(exc)}") from exc
    label = p.name
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise SeedSourceError(f"seeds: {p} has no split {split!r} (it has {sorted(ds)})")
        ds, label = ds[split], f"{p.name}[{split}]"
    if text_field not in ds.column_names:
        rep.skip("row without text field", label, count=len(ds))
        return iter(())
    columns = [c for c in (text_field, "kind", "language", "source", "id") if c in ds.column_names]
    return _rows(ds.select_columns(columns), label, text_field, rep)


def _hub(
    name: str,
    text_field: str,
    split: str,
    config: str | None,
    data_files: str | Sequence[str] | None,
    streaming: bool,
    rep: SeedReport,
) -> Iterator[_Doc]:
    """A dataset through ``datasets.load_dataset`` (streamed by default)."""
    import datasets

    files = data_files if data_files is None or isinstance(data_files, str) else list(data_files)
    try:
        ds = datasets.load_dataset(name, config, split=split, data_files=files, streaming=streaming)
    except Exception as exc:  # offline, not found, gated, bad config: all one line
        raise SeedSourceError(f"seeds: cannot load dataset {name!r}: {_one_line(exc)}") from exc
    label = Path(data_files).name if isinstance(data_files, str) else f"{name}[{split}]"
    return _guarded(_rows(ds, label, text_field, rep), name)


def _guarded(docs: Iterator[_Doc], name: str) -> Iterator[_Doc]:
    """Turn an error while streaming a dataset into a one-line SeedSourceError."""
    try:
        yield from docs
    except Exception as exc:  # a streamed dataset fails on iteration (network, bad file)
        raise SeedSourceError(f"seeds: reading dataset {name!r} failed: {_one_line(exc)}") from exc


def _rows(rows: Iterable[Any], label: str, text_field: str, rep: SeedReport) -> Iterator[_Doc]:
    for n, row in enumerate(rows, 1):
        doc = _row_doc(row, n, label, text_field, rep)
        if doc is not None:
            yield doc


def _row_doc(row: Any, n: int, label: str, text_field: str, rep: SeedReport) -> _Doc | None:
    if isinstance(row, str):
        return _Doc(f"{label}:{n}", row, "text", "", label, n)
    value = row.get(text_field) if isinstance(row, Mapping) else None
    if not isinstance(row, Mapping) or not isinstance(value, str | bytes):
        rep.skip("row without text field", label, n)
        return None
    source, row_id = row.get("source"), row.get("id")
    if isinstance(source, str) and source:
        name = source
    elif isinstance(row_id, str | int) and not isinstance(row_id, bool):
        name = f"{label}:{row_id}"
    else:
        name = f"{label}:{n}"
    suffix = Path(source).suffix.lower() if isinstance(source, str) else ""
    kind_field = row.get("kind")
    kind: SeedKind
    if kind_field in ("text", "code", "database"):
        kind = kind_field
    else:
        kind = "code" if suffix in CODE_SUFFIXES else "text"
    language = row.get("language")
    if not isinstance(language, str):
        language = CODE_SUFFIXES.get(suffix, "") if kind == "code" else ""
    return _Doc(name, value, kind, language, label, n)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --- checking and chunking ---------------------------------------------------------------


def _seeds(
    docs: Iterator[_Doc],
    rep: SeedReport,
    tok: Tokenizer,
    chunk_tokens: int,
    overlap_tokens: int,
    min_tokens: int,
    dedupe: bool,
) -> Iterator[Seed]:
    seen: set[str] = set()
    for doc in docs:
        problem, text = _checked_text(doc.data)
        if text is None:
            rep.skip(problem, doc.file or doc.source, doc.line)
            continue
        chunks = (
            [(text, tok.count(text))]  # a database is whole or nothing
            if doc.kind == "database"
            else _chunk(text, tok, chunk_tokens, overlap_tokens, doc.kind == "code")
        )
        for i, (chunk, n_tokens) in enumerate(chunks, 1):
            part = i if len(chunks) > 1 else None
            if n_tokens < min_tokens:
                rep.skip("too short", doc.file or doc.source, doc.line, chunk=part)
                continue
            name = doc.source if len(chunks) == 1 else f"{doc.source}#{i}"
            seed = Seed.from_text(chunk, source=name, kind=doc.kind, language=doc.language)
            if dedupe:
                if seed.id in seen:
                    rep.skip("duplicate", doc.file or doc.source, doc.line, chunk=part)
                    continue
                seen.add(seed.id)
            rep.kept += 1
            rep.tokens += n_tokens
            yield seed


def _checked_text(data: str | bytes) -> tuple[str, str | None]:
    """The text of a document, or (why, None) when it is empty, binary or not UTF-8."""
    if isinstance(data, bytes):
        if not data.strip():
            return "empty", None
        if b"\x00" in data[:_NUL_WINDOW]:
            return "binary", None
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return "not UTF-8", None
    elif "\x00" in data[:_NUL_WINDOW]:
        return "binary", None
    text = data.replace("\r\n", "\n").strip()
    if not text:
        return "empty", None
    return "", text


# Each level's pattern matches a separator; a piece ends after its separator, so the pieces
# concatenate back to the text.
_TEXT_LEVELS = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraphs
    re.compile(r"\n"),  # lines
    re.compile(r"[.!?。！？]+[\"'”’)\]]*\s*"),  # sentences
    re.compile(r"\s+"),  # words
)
_CODE_LEVELS = (
    re.compile(r"\n[ \t]*\n(?=\S)"),  # blank line before an unindented line: top-level blocks
    re.compile(r"\n[ \t]*\n"),  # blank lines
    re.compile(r"\n"),  # lines
)


def _chunk(
    text: str, tok: Tokenizer, limit: int, overlap: int, code: bool
) -> list[tuple[str, int]]:
    levels = _CODE_LEVELS if code else _TEXT_LEVELS
    out = []
    for piece, n in _split(text, tok.count(text), levels, tok, limit, overlap):
        stripped = piece.strip()
        if stripped:
            out.append((stripped, n if stripped == piece else tok.count(stripped)))
    return out


def _split(
    text: str,
    n: int,
    levels: Sequence[re.Pattern[str]],
    tok: Tokenizer,
    limit: int,
    overlap: int,
) -> list[tuple[str, int]]:
    if n <= limit:
        return [(text, n)]
    if not levels:
        return _windows(text, n, tok, limit, overlap)
    parts = _pieces(text, levels[0])
    if len(parts) == 1:
        return _split(text, n, levels[1:], tok, limit, overlap)
    items: list[tuple[str, int]] = []
    for part in parts:
        items += _split(part, tok.count(part), levels[1:], tok, limit, overlap)
    return _pack(items, tok, limit, overlap)


def _pieces(text: str, sep: re.Pattern[str]) -> list[str]:
    out, start = [], 0
    for m in sep.finditer(text):
        if m.end() > start and m.end() < len(text):
            out.append(text[start : m.end()])
            start = m.end()
    out.append(text[start:])
    return out


def _pack(
    items: list[tuple[str, int]], tok: Tokenizer, limit: int, overlap: int
) -> list[tuple[str, int]]:
    """Join neighbouring pieces greedily up to ``limit`` tokens (counts checked on the join)."""
    groups: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    total = 0
    for item in items:
        if current and total + item[1] > limit:
            groups.append(current)
            carried: list[tuple[str, int]] = []
            kept = 0
            for prev in reversed(current):
                if kept + prev[1] > overlap or kept + prev[1] + item[1] > limit:
                    break
                carried.insert(0, prev)
                kept += prev[1]
            current, total = carried, kept
        current.append(item)
        total += item[1]
    if current:
        groups.append(current)
    out: list[tuple[str, int]] = []
    for group in groups:
        text = "".join(t for t, _ in group)
        n = group[0][1] if len(group) == 1 else tok.count(text)
        out += [(text, n)] if n <= limit else _windows(text, n, tok, limit, overlap)
    return out


def _windows(text: str, n: int, tok: Tokenizer, limit: int, overlap: int) -> list[tuple[str, int]]:
    """Cut ``text`` between characters into pieces of at most ``limit`` tokens."""
    out: list[tuple[str, int]] = []
    chars_per_token = len(text) / max(n, 1)
    start = 0
    while start < len(text):
        end = min(len(text), start + max(1, int(limit * chars_per_token * 0.95)))
        piece = text[start:end]
        count = tok.count(piece)
        while count > limit and end - start > 1:
            end = start + max(1, int((end - start) * limit / count * 0.95))
            piece = text[start:end]
            count = tok.count(piece)
        if end < len(text) and count < 0.9 * limit:  # one try to fill the window up
            longer = min(len(text), start + int((end - start) * limit / max(count, 1) * 0.98))
            n_longer = tok.count(text[start:longer])
            if longer > end and n_longer <= limit:
                end, piece, count = longer, text[start:longer], n_longer
        out.append((piece, count))
        if end >= len(text):
            break
        chars_per_token = (end - start) / max(count, 1)
        back = min(int(overlap * chars_per_token), (end - start) // 2)
        start = end - back
    return out


__all__ = [
    "CODE_SUFFIXES",
    "MAX_PENDING_SKIPS",
    "ROW_SUFFIXES",
    "TEXT_SUFFIXES",
    "SeedReport",
    "SeedSourceError",
    "Skip",
    "chunk_text",
    "iter_seeds",
    "load_seeds",
    "require_seeds",
]
