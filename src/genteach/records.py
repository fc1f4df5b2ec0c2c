"""The data that crosses boundaries: seeds in, chat-pair records and rejects out.

Records are written to JSONL one line at a time and flushed, so a crash loses at most the
line being written (an unterminated last line is dropped on resume). They load with
``datasets.load_dataset("json", data_files=...)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, Field, field_serializer, field_validator

from genteach.keys import Verification
from genteach.models.base import Message


def content_id(*parts: Any, length: int = 16) -> str:
    """A stable id: the sha256 of the parts' canonical JSON, hex, ``length`` chars."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


#: What a seed holds: prose, source code, or a database (a user's SQLite file, its tables
#: as the JSON of :class:`~genteach.runtime.db.Database`).
SeedKind = Literal["text", "code", "database"]


class Seed(BaseModel):
    """A raw input document, code file or database."""

    id: str
    text: str
    source: str = ""
    kind: SeedKind = "text"
    language: str = ""

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        source: str = "",
        kind: SeedKind = "text",
        language: str = "",
    ) -> Seed:
        """Make a seed whose id is derived from its content."""
        return cls(id=content_id(text), text=text, source=source, kind=kind, language=language)


class RecordMeta(BaseModel):
    """Where a record came from and what checked it. Every field is always present, for a
    stable schema.

    ``instruction`` is the task as its agent wrote it; ``key`` its typed answer key (see
    :mod:`genteach.keys`; in JSON a string of JSON, since keys of different kinds give a
    field different types and ``datasets`` needs one schema); ``view`` how it was shown
    (system prompt variant, framing, delimiters, option order and labels); ``slot`` the
    values drawn in code for the agent that wrote it; ``verification`` how the response
    was checked against the key; ``prompts_sha256`` a hash of every template its chain of
    agents rendered (with what they include), so records made with other prompts can be
    told apart.
    """

    skill: str
    sub_category: str
    seed_id: str
    unit: str
    agents: list[str]
    teacher: str
    usage: dict[str, int]
    task_id: str
    parent_task_id: str | None = None
    refinement_round: int = 0
    refinement_goal: str | None = None
    refinement_suggestion: str | None = None
    transformer: str | None = None
    instruction: str = ""
    key: dict[str, Any] | None = None
    view: dict[str, Any] | None = None
    slot: dict[str, str] = Field(default_factory=dict)
    verification: Verification | None = None
    outcome: str | None = None
    prompts_sha256: str = ""
    genteach_version: str = ""
    created_at: str = Field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )

    @field_serializer("key", when_used="json")
    def _key_as_text(self, key: dict[str, Any] | None) -> str | None:
        return None if key is None else json.dumps(key, ensure_ascii=False, sort_keys=True)

    @field_validator("key", mode="before")
    @classmethod
    def _key_from_text(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class Record(BaseModel):
    """One chat pair (possibly multi-turn) and its provenance."""

    id: str
    messages: list[Message]
    meta: RecordMeta

    @staticmethod
    def make_id(messages: Sequence[Message]) -> str:
        """The content-derived id of a conversation."""
        return content_id([[m["role"], m["content"]] for m in messages])


class Reject(BaseModel):
    """An item or task that produced no record, and why.

    ``raw`` is the model's last answer (cut to 4000 characters). ``messages`` is the whole
    transcript of a filtered episode (an acting flow's), each turn with the ``trained`` flag
    a kept record would give it, so a reader can see where the episode went wrong; ``None``
    for a reject that ran no episode (and in files written before the field existed).
    """

    unit: str
    seed_id: str
    skill: str
    stage: str
    agent: str
    reason: str
    raw: str = ""
    messages: list[Message] | None = None
    created_at: str = Field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )


class JsonlWriter:
    """Appends JSON lines, flushing (and fsyncing, if asked) after each one.

    On open, an unterminated last line left by a crash is cut off, so every line in the
    file is a whole JSON document.
    """

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.path)
        self._fh: IO[str] = self.path.open("a", encoding="utf-8")
        self._fsync = fsync

    def write(self, obj: BaseModel | dict[str, Any]) -> None:
        data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
        self._fh.write(json.dumps(data, ensure_ascii=False) + "\n")
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drop_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the whole JSON lines of ``path`` (a torn last line is ignored)."""
    p = Path(path)
    if not p.exists():
        return
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.endswith("\n"):
                return
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{p}:{lineno}: not a JSON line ({exc.msg})") from exc


def read_records(path: str | Path) -> list[Record]:
    """Load the records of a genteach JSONL file."""
    return [Record.model_validate(obj) for obj in read_jsonl(path)]


__all__ = [
    "JsonlWriter",
    "Record",
    "RecordMeta",
    "Reject",
    "Seed",
    "SeedKind",
    "content_id",
    "read_jsonl",
    "read_records",
]
