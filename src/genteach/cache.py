"""A response cache, so that redoing a step after a crash costs no model call.

Answers are keyed by everything that determines them: the model, the messages, the
requested schema or grammar, and the sampling parameters (temperature, max_tokens, seed).
Runs use per-unit call seeds, so a resumed unit sends the same requests again and gets
every answer it already paid for from the cache, up to the point where it was killed.

Only whole answers are kept: an empty answer or one cut off at the token limit is never
stored (and one stored by an older version is not served), so a redone call asks again.

The store is SQLite in WAL mode, one committed row per answer: a killed process loses at
most the answer it was writing, and lookups stay cheap at millions of rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from genteach.models.base import Choice, Completion, ModelClient, ModelRequest, ToolCall, Usage

CACHE_FILE = "cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL,
    extra TEXT
)
"""


class ResponseCache:
    """The SQLite store behind :class:`CachedModel`.

    Args:
        path: the database file (created with its folder if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the thread that runs the event loop; autocommit mode.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed process
        self._db.execute(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
        if "extra" not in columns:  # a cache made before tool calls and samples were kept
            self._db.execute("ALTER TABLE responses ADD COLUMN extra TEXT")

    def get(self, key: str) -> Completion | None:
        """The stored answer of ``key``, or None (also for an incomplete stored answer)."""
        row = self._db.execute(
            "SELECT text, finish_reason, model, prompt_tokens, completion_tokens, extra "
            "FROM responses WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        text, finish, model, pt, ct, extra = row
        more: dict[str, Any] = json.loads(extra) if extra else {}
        completion = Completion(
            text=text,
            usage=Usage(pt, ct, 1),
            model=model,
            finish_reason=finish,
            cached=True,
            tool_calls=_calls(more.get("tool_calls", [])),
            choices=tuple(
                Choice(c["text"], c["finish_reason"], _calls(c.get("tool_calls", [])))
                for c in more.get("choices", [])
            ),
        )
        return completion if completion.complete_answer else None

    def put(self, key: str, completion: Completion) -> None:
        """Store ``completion`` under ``key``, unless it is empty or cut off."""
        if not completion.complete_answer:
            return
        u = completion.usage
        more: dict[str, Any] = {}
        if completion.tool_calls:
            more["tool_calls"] = list(completion.tool_calls)
        if completion.choices:
            more["choices"] = [
                {"text": c.text, "finish_reason": c.finish_reason, "tool_calls": list(c.tool_calls)}
                for c in completion.choices
            ]
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, text, finish_reason, model, prompt_tokens, "
            "completion_tokens, created, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                completion.text,
                completion.finish_reason,
                completion.model,
                u.prompt_tokens,
                u.completion_tokens,
                time.time(),
                json.dumps(more, ensure_ascii=False) if more else None,
            ),
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class CachedModel:
    """A :class:`ModelClient` that answers repeated requests from a :class:`ResponseCache`.

    Only whole answers are stored: errors, empty answers and answers cut off at the token
    limit never are. ``hits`` and ``misses``
    count lookups; a hit's :class:`~genteach.models.Completion` has ``cached=True`` and the
    usage of the original call (what the answer cost when it was bought).
    """

    def __init__(self, client: ModelClient, cache: ResponseCache) -> None:
        self.client = client
        self.cache = cache
        self.hits = 0
        self.misses = 0

    @property
    def model_name(self) -> str:
        return self.client.model_name

    async def complete(self, request: ModelRequest) -> Completion:
        key = request.key(self.client.model_name)
        hit = self.cache.get(key)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        result = await self.client.complete(request)
        self.cache.put(key, result)
        return result

    async def close(self) -> None:
        await self.client.close()


def _calls(rows: list[dict[str, str]]) -> tuple[ToolCall, ...]:
    return tuple({"id": r["id"], "name": r["name"], "arguments": r["arguments"]} for r in rows)


__all__ = ["CACHE_FILE", "CachedModel", "ResponseCache"]
