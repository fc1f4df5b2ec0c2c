"""Loading seeds: a folder of text/code files, one file, or a JSONL file with a ``text``
field. Empty, binary and undecodable inputs are skipped and counted with their reason;
long documents are split into chunks on paragraph boundaries."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from genteach.records import Seed

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
#: File endings read as text seeds.
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


@dataclass
class SeedReport:
    """What loading found: seeds kept and inputs skipped, by reason."""

    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        parts = [f"{self.kept} seeds"]
        parts += [f"{n} skipped ({reason})" for reason, n in sorted(self.skipped.items())]
        return ", ".join(parts)


def load_seeds(
    path: str | Path,
    *,
    max_words: int = 1500,
    min_words: int = 30,
    report: SeedReport | None = None,
) -> list[Seed]:
    """Load seeds from ``path`` (folder, file, or ``.jsonl``); see the module docstring.

    Args:
        max_words: documents longer than this are split into chunks of about this size.
        min_words: shorter inputs are skipped ("too short").
        report: filled with counts of what was kept and skipped.
    """
    rep = report if report is not None else SeedReport()
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"seeds: {p} does not exist")
    seeds: list[Seed] = []
    for source, raw, suffix in _inputs(p, rep):
        text = _decode(raw, rep)
        if text is None:
            continue
        kind: Literal["text", "code"] = "code" if suffix in CODE_SUFFIXES else "text"
        language = CODE_SUFFIXES.get(suffix, "")
        chunks = _chunks(text, max_words) if kind == "text" else [text]
        for i, chunk in enumerate(chunks):
            if len(chunk.split()) < min_words:
                rep.skipped["too short"] += 1
                continue
            name = source if len(chunks) == 1 else f"{source}#{i + 1}"
            seeds.append(Seed.from_text(chunk, source=name, kind=kind, language=language))
    unique = list({s.id: s for s in seeds}.values())
    rep.skipped["duplicate"] += len(seeds) - len(unique)
    if rep.skipped["duplicate"] == 0:
        del rep.skipped["duplicate"]
    rep.kept = len(unique)
    return unique


def _inputs(p: Path, rep: SeedReport) -> Iterator[tuple[str, bytes, str]]:
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            if any(part.startswith(".") for part in f.relative_to(p).parts):
                continue
            suffix = f.suffix.lower()
            if suffix == ".jsonl":
                yield from _jsonl(f, rep)
            elif suffix in CODE_SUFFIXES or suffix in TEXT_SUFFIXES:
                yield str(f.relative_to(p)), f.read_bytes(), suffix
            else:
                rep.skipped[f"unsupported file type {suffix}"] += 1
    elif p.suffix.lower() == ".jsonl":
        yield from _jsonl(p, rep)
    else:
        yield p.name, p.read_bytes(), p.suffix.lower()


def _jsonl(f: Path, rep: SeedReport) -> Iterator[tuple[str, bytes, str]]:
    with f.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                rep.skipped["malformed JSON line"] += 1
                continue
            text = obj.get("text") if isinstance(obj, dict) else None
            if not isinstance(text, str):
                rep.skipped["JSON line without a text field"] += 1
                continue
            yield f"{f.name}:{n}", text.encode("utf-8"), str(obj.get("suffix", ""))


def _decode(raw: bytes, rep: SeedReport) -> str | None:
    if not raw.strip():
        rep.skipped["empty"] += 1
        return None
    if b"\x00" in raw[:8192]:
        rep.skipped["binary"] += 1
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        rep.skipped["not UTF-8"] += 1
        return None
    return text.replace("\r\n", "\n").strip()


def _chunks(text: str, max_words: int) -> list[str]:
    if len(text.split()) <= max_words:
        return [text]
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    for para in (p for p in text.split("\n\n") if p.strip()):
        words = len(para.split())
        if current and count + words > max_words:
            chunks.append("\n\n".join(current))
            current, count = [], 0
        if words > max_words:
            tokens = para.split()
            for i in range(0, len(tokens), max_words):
                chunks.append(" ".join(tokens[i : i + max_words]))
            continue
        current.append(para)
        count += words
    if current:
        chunks.append("\n\n".join(current))
    return chunks


__all__ = ["CODE_SUFFIXES", "SeedReport", "load_seeds"]
