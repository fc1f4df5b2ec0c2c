"""A SQLite database as an environment: AgentBench's DB task, in process.

A :class:`Database` is a few typed tables (:class:`Table`, :class:`Column`), written by an
agent from a seed's facts or read from a user's file (:meth:`Database.from_sqlite`). A
:class:`DbTask` asks a question about it (a SELECT) or asks for a change (INSERT, UPDATE,
DELETE) and carries a reference SQL; :func:`derive` runs the reference on a fresh copy and
fills in the expected answer, or says in one line why the task must be dropped.
:class:`DbEnvironment` gives each episode a fresh in-memory database, runs one statement
per action and shows the raw rows (``[(28,)]``), and scores the final answer: a single
number as a float, other answers as a multiset of values, and a change by
:func:`state_hash` of the tables against the reference's. Everything runs in SQLite in
this process: no network, no model calls; an authorizer refuses ATTACH, VACUUM,
load_extension and PRAGMAs that are not schema reads, and a progress handler stops a
statement that runs too long. See docs/db_environment.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genteach.agents.parsing import ParseError
from genteach.prompts import PromptLibrary
from genteach.runtime.base import Action, Observation, StepResult
from genteach.runtime.formats.react import answer_list

#: A column's type. DATE holds ISO 8601 text (``2024-03-01``, ``2024-03-01 09:30``) and is
#: declared TEXT in SQLite, so SQLite's date functions work on it and no value is converted.
ColumnType = Literal["INTEGER", "REAL", "TEXT", "DATE"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
#: One cell: what SQLite returns for the four column types (``None`` is NULL).
Value = int | float | str | None
Row = tuple[Value, ...]

#: What a task asks: a question answered by a SELECT, or a change of the data.
DbKind = Literal["select", "insert", "update", "delete"]
DB_KINDS: tuple[str, ...] = get_args(DbKind)
#: AgentBench's kinds of SELECT questions.
SelectKind = Literal["counting", "comparison", "ranking", "aggregation", "other"]
SELECT_KINDS: tuple[str, ...] = get_args(SelectKind)

#: The first user turn of a task: the question, then each table's name and headers.
TASK_TEMPLATE = "runtime/db/task.j2"

#: PRAGMAs that only read the schema; every other PRAGMA is refused.
READ_PRAGMAS: frozenset[str] = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
     "foreign_key_list"}
)  # fmt: skip
#: The most rows a SELECT reference may return (a longer answer is not a question's).
MAX_ANSWER_ROWS = 50

_NAME_MAX = 64
_BAD_NAME_CHARS = set('"`[];,')
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_COMMENT = re.compile(r"\s*(--[^\n]*(\n|\Z)|/\*.*?(\*/|\Z))", re.DOTALL)


# -- the tables -------------------------------------------------------------------------------
def _check_name(name: str, what: str) -> str:
    """``name`` if it can name a table or column (quoted in SQL, listed in the first turn)."""
    if not name or name != name.strip():
        raise ValueError(f"{what} name {name!r} is empty or starts or ends with a blank")
    if len(name) > _NAME_MAX:
        raise ValueError(f"{what} name {name[:20]!r}... is longer than {_NAME_MAX} characters")
    bad = sorted({c for c in name if c in _BAD_NAME_CHARS or not c.isprintable()})
    if bad:
        raise ValueError(f"{what} name {name!r} holds {''.join(bad)!r}; use letters, digits, _")
    if name.lower().startswith("sqlite_"):
        raise ValueError(f"{what} name {name!r} starts with sqlite_, which SQLite reserves")
    return name


def _quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _type_error(value: Value, type_: str) -> str | None:
    """Why ``value`` does not fit a ``type_`` column, or ``None`` when it does."""
    if value is None:
        return None
    if type_ == "INTEGER" and not isinstance(value, int):
        return "INTEGER takes whole numbers"
    if type_ == "REAL":
        if not isinstance(value, int | float):
            return "REAL takes numbers"
        if not math.isfinite(value):
            return "REAL takes finite numbers"
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return "SQLite holds whole numbers of 64 bits"
    if type_ in ("TEXT", "DATE") and not isinstance(value, str):
        return f"{type_} takes strings"
    if type_ == "DATE" and isinstance(value, str):
        try:
            if not _DATE.fullmatch(value):
                raise ValueError(value)
            date.fromisoformat(value[:10])
        except ValueError:
            return "DATE takes ISO dates such as 2024-03-01 or 2024-03-01 09:30"
    return None


_INTEGER_TEXT = re.compile(r"[+-]?\d{1,18}")
_REAL_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _affinity(row: Any, types: Sequence[Any]) -> Any:
    """``row`` as SQLite's type affinity stores it: numbers written as strings in INTEGER
    and REAL columns are numbers, numbers in TEXT columns are text."""
    if not isinstance(row, list | tuple) or len(row) != len(types):
        return row  # the width check names the problem
    out = list(row)
    for i, (value, type_) in enumerate(zip(row, types, strict=True)):
        if type_ == "TEXT" and isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = str(value)
            continue
        if not isinstance(value, str):
            continue
        text = value.strip()
        if type_ == "INTEGER" and _INTEGER_TEXT.fullmatch(text):
            out[i] = int(text)
        elif type_ == "REAL" and _REAL_TEXT.fullmatch(text):
            out[i] = float(text)
    return out


class Column(BaseModel):
    """One column of a table: a name and a type (:data:`ColumnType`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(
        min_length=1,
        max_length=_NAME_MAX,
        description="the column's header, unique in its table (letters, digits, _ and spaces)",
    )
    type: ColumnType = Field(
        description="INTEGER (whole numbers), REAL (numbers), TEXT, or DATE (ISO text such as "
        "2024-03-01)"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "column")


class Table(BaseModel):
    """A table: its name, typed columns and rows (each row one value per column, in order;
    ``None`` for NULL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(
        min_length=1,
        max_length=_NAME_MAX,
        description="the table's name, unique in the database (letters, digits, _ and spaces)",
    )
    columns: tuple[Column, ...] = Field(
        min_length=1, max_length=64, description="the columns in order (1-64)"
    )
    rows: tuple[tuple[int | float | str | None, ...], ...] = Field(
        default=(),
        description="the rows: each a list with one value per column, in column order "
        "(whole numbers for INTEGER, numbers for REAL, strings for TEXT and DATE, null)",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "table")

    @model_validator(mode="before")
    @classmethod
    def _type_affinity(cls, data: Any) -> Any:
        # As SQLite's type affinity stores them: a number written as a string ("2", "19.50")
        # in an INTEGER or REAL column is that number, a number in a TEXT column is text. Any
        # other mismatch (a word in an INTEGER column, a number in a DATE one) is refused.
        if not isinstance(data, dict):
            return data
        columns, rows = data.get("columns"), data.get("rows")
        if not isinstance(columns, list | tuple) or not isinstance(rows, list | tuple):
            return data
        types = [
            c.get("type") if isinstance(c, dict) else getattr(c, "type", None) for c in columns
        ]
        return {**data, "rows": [_affinity(row, types) for row in rows]}

    @field_validator("rows", mode="before")
    @classmethod
    def _no_booleans(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            for i, row in enumerate(v, 1):
                if isinstance(row, list | tuple) and any(isinstance(x, bool) for x in row):
                    raise ValueError(f"row {i} holds true or false: write 1 or 0")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Table:
        seen: set[str] = set()
        for c in self.columns:
            if c.name.casefold() in seen:
                raise ValueError(f"table {self.name}: column {c.name!r} occurs twice")
            seen.add(c.name.casefold())
        width = len(self.columns)
        for i, row in enumerate(self.rows, 1):
            if len(row) != width:
                raise ValueError(
                    f"table {self.name}, row {i}: {len(row)} values for {width} columns"
                )
            for c, value in zip(self.columns, row, strict=True):
                why = _type_error(value, c.type)
                if why is not None:
                    raise ValueError(
                        f"table {self.name}, row {i}: column {c.name} ({c.type}) holds "
                        f"{value!r}; {why}"
                    )
        return self

    @property
    def headers(self) -> list[str]:
        """The column names, in order."""
        return [c.name for c in self.columns]


class Database(BaseModel):
    """The tables of one task's database (built afresh for every episode)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tables: tuple[Table, ...] = Field(min_length=1, description="the tables (1 or more)")

    @model_validator(mode="after")
    def _unique(self) -> Database:
        seen: set[str] = set()
        for t in self.tables:
            if t.name.casefold() in seen:
                raise ValueError(f"table {t.name!r} occurs twice")
            seen.add(t.name.casefold())
        return self

    @property
    def names(self) -> list[str]:
        """The table names, in order."""
        return [t.name for t in self.tables]

    def table(self, name: str) -> Table | None:
        """The table ``name`` (case-insensitive, as in SQL), or ``None``."""
        return next((t for t in self.tables if t.name.casefold() == name.casefold()), None)

    def create(self) -> sqlite3.Connection:
        """A fresh in-memory connection holding these tables and rows (autocommit, no
        statement cache; nothing is shared with any other connection)."""
        conn = sqlite3.connect(
            ":memory:", isolation_level=None, cached_statements=0, check_same_thread=False
        )
        try:
            for t in self.tables:
                cols = ", ".join(
                    f"{_quote(c.name)} {'TEXT' if c.type == 'DATE' else c.type}" for c in t.columns
                )
                conn.execute(f"CREATE TABLE {_quote(t.name)} ({cols})")
                marks = ", ".join("?" for _ in t.columns)
                conn.executemany(f"INSERT INTO {_quote(t.name)} VALUES ({marks})", t.rows)
        except BaseException:
            conn.close()
            raise
        return conn

    @classmethod
    def from_sqlite(
        cls, path: str | Path, *, tables: Sequence[str] | None = None, max_rows: int = 10_000
    ) -> Database:
        """The tables of a user's SQLite file, every row, read without changing the file.

        Column types follow SQLite's affinity rules on the declared type (``INT`` ->
        INTEGER; ``CHAR``, ``CLOB``, ``TEXT`` -> TEXT; ``REAL``, ``FLOA``, ``DOUB`` -> REAL;
        ``DATE``/``TIME`` -> DATE when every value is an ISO date, else TEXT); an undeclared
        or NUMERIC column takes INTEGER, REAL or TEXT from its values. Views, indexes,
        triggers and constraints are not read.

        Args:
            path: the file.
            tables: the tables to read (default: every table).
            max_rows: the most rows one table may have.

        Raises:
            ValueError: the file is missing or not SQLite, a table is missing or too long, or
                a value does not fit its column (a BLOB, text in an INTEGER column ...).
        """
        file = Path(path)
        if not file.is_file():
            raise ValueError(f"{file} is not a file")
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
        try:
            listed = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
                )
            ]
            wanted = list(tables) if tables is not None else listed
            found = {n.casefold(): n for n in listed}
            read = []
            for name in wanted:
                if name.casefold() not in found:
                    raise ValueError(
                        f"{file.name} has no table {name!r}; its tables: {', '.join(listed)}"
                    )
                read.append(_read_table(conn, found[name.casefold()], max_rows, file.name))
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{file.name} cannot be read as SQLite: {exc}") from exc
        finally:
            conn.close()
        if not read:
            raise ValueError(f"{file.name} holds no table")
        return cls(tables=tuple(read))


def _read_table(conn: sqlite3.Connection, name: str, max_rows: int, file: str) -> Table:
    info = conn.execute("SELECT name, type FROM pragma_table_info(?)", (name,)).fetchall()
    rows = conn.execute(f"SELECT * FROM {_quote(name)} LIMIT ?", (max_rows + 1,)).fetchall()
    if len(rows) > max_rows:
        raise ValueError(
            f"{file}: table {name} has more than {max_rows:,} rows; pass a larger max_rows"
        )
    for i, row in enumerate(rows, 1):
        for (col, _), v in zip(info, row, strict=True):
            if isinstance(v, bytes):
                raise ValueError(
                    f"{file}: table {name}, row {i}: column {col} holds a BLOB; "
                    "tables hold numbers and text only"
                )
    try:
        columns = []
        for j, (col, declared) in enumerate(info):
            values = [row[j] for row in rows if row[j] is not None]
            columns.append(Column(name=col, type=_column_type(str(declared or ""), values)))
        return Table(name=name, columns=tuple(columns), rows=tuple(rows))
    except ValueError as exc:
        raise ValueError(f"{file}: {_first_error(exc)}") from exc


def _column_type(declared: str, values: list[Any]) -> ColumnType:
    """A column's type from its declared type (SQLite's affinity rules) and its values."""
    d = declared.upper()
    if "INT" in d:
        return "INTEGER"
    if any(k in d for k in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if any(k in d for k in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    if ("DATE" in d or "TIME" in d) and values and all(isinstance(v, str) for v in values):
        return "DATE" if all(_type_error(v, "DATE") is None for v in values) else "TEXT"
    if values and all(isinstance(v, int) for v in values):
        return "INTEGER"
    if values and all(isinstance(v, int | float) for v in values):
        return "REAL"
    return "TEXT"


def _first_error(exc: ValueError) -> str:
    """The first message of a pydantic validation error (one line)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0].get("msg", exc)).removeprefix("Value error, ")
    return str(exc).splitlines()[0]


# -- statements and the guarded connection ---------------------------------------------------
def split_statements(sql: str) -> list[str]:
    """The statements of ``sql``, each without its final ``;``; empty statements and
    comments alone are dropped. A statement is complete where :func:`sqlite3.complete_statement`
    says so, so semicolons in strings, identifiers and trigger bodies do not split it."""
    out: list[str] = []
    buf = ""
    for ch in sql:
        buf += ch
        if ch == ";" and sqlite3.complete_statement(buf):
            out.append(buf)
            buf = ""
    out.append(buf)
    statements = []
    for piece in out:
        text = piece.strip()
        if text.endswith(";"):
            text = text[:-1].rstrip()
        if _strip_comments(text):
            statements.append(text)
    return statements


def _strip_comments(text: str) -> str:
    """``text`` without leading comments and blanks (empty when it is only comments)."""
    pos = 0
    while True:
        m = _COMMENT.match(text, pos)
        if m is None or m.end() == pos:
            return text[pos:].strip()
        pos = m.end()


@dataclass(frozen=True)
class DbLimits:
    """Bounds on every statement run in a task's database.

    Attributes:
        seconds: wall-clock seconds one statement may run (``None``: no limit).
        steps: SQLite virtual-machine instructions one statement may run, a bound that
            does not depend on the machine's speed (``None``: no limit).
        text_length: the longest string or blob a statement may build, in bytes.
        fetch_rows: the most rows read back from one statement (the rest are counted as
            "more").
    """

    seconds: float | None = 3.0
    steps: int | None = None
    text_length: int = 1_000_000
    fetch_rows: int = 10_000

    def __post_init__(self) -> None:
        for name in ("seconds", "steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"DbLimits.{name} must be positive or None, got {value}")
        for name in ("text_length", "fetch_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"DbLimits.{name} must be 1 or more, got {getattr(self, name)}")


class SqlError(Exception):
    """A statement failed: ``str(exc)`` is SQLite's message (or the guard's reason), one
    line."""


@dataclass
class _Outcome:
    """What one statement did."""

    rows: list[tuple[Any, ...]]
    more: bool
    returns_rows: bool
    writes: set[tuple[str, str]] = field(default_factory=set)  # (verb, table)
    schema: set[str] = field(default_factory=set)  # e.g. "CREATE TABLE"
    changes: int = 0


_PROGRESS_EVERY = 1000
_WRITES = {sqlite3.SQLITE_INSERT: "INSERT", sqlite3.SQLITE_UPDATE: "UPDATE",
           sqlite3.SQLITE_DELETE: "DELETE"}  # fmt: skip
_SCHEMA_NAMES = {
    "SQLITE_CREATE_INDEX": "CREATE INDEX", "SQLITE_CREATE_TABLE": "CREATE TABLE",
    "SQLITE_CREATE_TEMP_INDEX": "CREATE INDEX", "SQLITE_CREATE_TEMP_TABLE": "CREATE TABLE",
    "SQLITE_CREATE_TEMP_TRIGGER": "CREATE TRIGGER", "SQLITE_CREATE_TEMP_VIEW": "CREATE VIEW",
    "SQLITE_CREATE_TRIGGER": "CREATE TRIGGER", "SQLITE_CREATE_VIEW": "CREATE VIEW",
    "SQLITE_DROP_INDEX": "DROP INDEX", "SQLITE_DROP_TABLE": "DROP TABLE",
    "SQLITE_DROP_TEMP_INDEX": "DROP INDEX", "SQLITE_DROP_TEMP_TABLE": "DROP TABLE",
    "SQLITE_DROP_TEMP_TRIGGER": "DROP TRIGGER", "SQLITE_DROP_TEMP_VIEW": "DROP VIEW",
    "SQLITE_DROP_TRIGGER": "DROP TRIGGER", "SQLITE_DROP_VIEW": "DROP VIEW",
    "SQLITE_ALTER_TABLE": "ALTER TABLE", "SQLITE_CREATE_VTABLE": "CREATE VIRTUAL TABLE",
    "SQLITE_DROP_VTABLE": "DROP TABLE", "SQLITE_REINDEX": "REINDEX", "SQLITE_ANALYZE": "ANALYZE",
}  # fmt: skip
_SCHEMA = {getattr(sqlite3, k): v for k, v in _SCHEMA_NAMES.items() if hasattr(sqlite3, k)}


class _Session:
    """A task's connection with its guard: an authorizer that refuses what is not SQL on
    this database and records what each statement writes, a progress handler that stops
    a long statement, and SQLite's own limits."""

    def __init__(self, conn: sqlite3.Connection, limits: DbLimits) -> None:
        self.conn = conn
        self.limits = limits
        self.lock = threading.Lock()
        self._denied = ""
        self._outcome: _Outcome | None = None
        self._deadline: float | None = None
        self._ticks = 0
        self._stopped = ""
        self._active = False
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.text_length)
        conn.set_authorizer(self._authorize)
        conn.set_progress_handler(self._progress, _PROGRESS_EVERY)

    def _authorize(
        self, code: int, a1: str | None, a2: str | None, db: str | None, trigger: str | None
    ) -> int:
        if code == sqlite3.SQLITE_ATTACH:
            return self._deny("ATTACH and VACUUM are not allowed: work in this database only")
        if code == sqlite3.SQLITE_DETACH:
            return self._deny("DETACH is not allowed")
        if code == sqlite3.SQLITE_PRAGMA and (a1 or "").lower() not in READ_PRAGMAS:
            allowed = ", ".join(sorted(READ_PRAGMAS))
            return self._deny(f"PRAGMA {a1} is not allowed (these are: {allowed})")
        if code == sqlite3.SQLITE_FUNCTION and (a2 or "").lower() == "load_extension":
            return self._deny("load_extension is not allowed")
        out = self._outcome
        if out is not None:
            if code in _WRITES and a1 and not a1.lower().startswith("sqlite_"):
                out.writes.add((_WRITES[code], a1))
            elif code in _SCHEMA:
                out.schema.add(_SCHEMA[code])
        return sqlite3.SQLITE_OK

    def _deny(self, reason: str) -> int:
        self._denied = self._denied or reason
        return sqlite3.SQLITE_DENY

    def _progress(self) -> int:
        if not self._active:
            return 0
        self._ticks += 1
        steps = self.limits.steps
        if steps is not None and self._ticks * _PROGRESS_EVERY > steps:
            self._stopped = f"the statement ran more than {steps:,} steps and was stopped"
            return 1
        if self._deadline is not None and time.monotonic() > self._deadline:
            self._stopped = (
                f"the statement ran longer than {self.limits.seconds:g} s and was stopped"
            )
            return 1
        return 0

    def execute(self, sql: str) -> _Outcome:
        """Run one statement; raise :class:`SqlError` with a one-line message."""
        with self.lock:
            self._denied, self._stopped, self._ticks = "", "", 0
            seconds = self.limits.seconds
            self._deadline = None if seconds is None else time.monotonic() + seconds
            self._outcome = out = _Outcome(rows=[], more=False, returns_rows=False)
            before = self.conn.total_changes
            self._active = True
            try:
                cur = self.conn.execute(sql)
                out.returns_rows = cur.description is not None
                if out.returns_rows:
                    rows = cur.fetchmany(self.limits.fetch_rows + 1)
                    out.more = len(rows) > self.limits.fetch_rows
                    out.rows = rows[: self.limits.fetch_rows]
                cur.close()
            except sqlite3.Error as exc:
                raise SqlError(self._message(exc)) from exc
            finally:
                self._outcome, self._deadline, self._active = None, None, False
            out.changes = self.conn.total_changes - before
            return out

    def _message(self, exc: sqlite3.Error) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if self._denied:
            return f"not authorized: {self._denied}"
        if self._stopped:
            return f"interrupted: {self._stopped}"
        return text

    def unguarded(self) -> sqlite3.Connection:
        """The connection, for reads made by the environment itself (state hashes)."""
        return self.conn

    def close(self) -> None:
        self.conn.interrupt()
        with self.lock:
            self.conn.close()


def _session(database: Database, limits: DbLimits) -> _Session:
    return _Session(database.create(), limits)


# -- hashes and comparison -------------------------------------------------------------------
def _number_text(value: float) -> str:
    """A number as compared and hashed: rounded to 6 places, integral values without
    ``.0`` (3 and 3.0 are the same)."""
    r = round(float(value), 6)
    if r == 0:
        return "0"
    if r.is_integer() and abs(r) < 2**63:
        return str(int(r))
    return repr(r)


def _cell(value: Any) -> str:
    """One value in a row's canonical text (strings quoted, so '3' is not 3)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, bytes):
        return f"x'{value.hex()}'"
    return json.dumps(str(value), ensure_ascii=False)


def _row_text(row: Sequence[Any]) -> str:
    return ",".join(_cell(v) for v in row)


def _table_rows(conn: sqlite3.Connection, table: str) -> list[tuple[Any, ...]] | None:
    """Every row of ``table``, or ``None`` when it does not exist."""
    try:
        return conn.execute(f"SELECT * FROM {_quote(table)}").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise


def state_hash(conn: sqlite3.Connection, tables: Iterable[str]) -> str:
    """An MD5 of the rows of ``tables`` that ignores row order (AgentBench's check of a
    change): each row's canonical text (floats rounded to 6 places, NULL, strings quoted)
    is hashed, and the sorted row hashes of each table are hashed with its name. A
    missing table hashes as missing.

    Args:
        conn: the database.
        tables: the table names (their order does not matter).

    Returns:
        The hex digest.
    """
    parts = []
    for name in sorted(tables, key=str.casefold):
        rows = _table_rows(conn, name)
        if rows is None:
            parts.append(f"{name.casefold()}\tmissing")
            continue
        hashes = sorted(
            hashlib.md5(_row_text(r).encode(), usedforsecurity=False).hexdigest() for r in rows
        )
        parts.append(f"{name.casefold()}\t{len(rows)}\t{','.join(hashes)}")
    return hashlib.md5("\n".join(parts).encode(), usedforsecurity=False).hexdigest()


def _flatten(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, list | tuple):
            out.extend(_flatten(v))
        else:
            out.append(v)
    return out


def _as_number(value: Any) -> float | None:
    """``value`` as a number: ints and floats, and strings that spell one."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value.strip())
        return number if math.isfinite(number) else None
    return None


def _value_text(value: Any) -> str:
    """A value as answers are compared: numbers as :func:`_number_text`, text stripped,
    NULL as ``NULL``."""
    if value is None:
        return "NULL"
    number = _as_number(value)
    if number is not None:
        return _number_text(number)
    return str(value).strip()


def _listing(items: Iterable[str], most: int = 5) -> str:
    shown = list(items)
    text = ", ".join(repr(x) for x in shown[:most])
    return text + (f" and {len(shown) - most} more" if len(shown) > most else "")


def check_select(expected: Sequence[Sequence[Value]], answer: Sequence[Any]) -> tuple[bool, str]:
    """Whether a final answer list matches a SELECT's rows, and why not.

    When the rows hold one value and it is a number, the answer must be one number equal to
    it as a float (relative tolerance 1e-6). Otherwise the answer's values (nested lists
    flattened) must equal the rows' values as a multiset, each value stringified (numbers
    rounded to 6 places, so ``"28"``, ``28`` and ``28.0`` are equal; text stripped, case
    kept).

    Returns:
        ``(passed, detail)``.
    """
    want, got = _flatten(expected), _flatten(answer)
    if len(want) == 1 and _as_number(want[0]) is not None:
        target = _as_number(want[0])
        assert target is not None
        if len(got) != 1:
            return False, f"expected one number ({want[0]!r}), the answer has {len(got)} values"
        number = _as_number(got[0])
        if number is None:
            return False, f"the answer {got[0]!r} is not a number; expected {want[0]!r}"
        if math.isclose(number, target, rel_tol=1e-6, abs_tol=1e-9):
            return True, f"the answer {got[0]!r} equals the expected {want[0]!r}"
        return False, f"the answer {got[0]!r} differs from the expected {want[0]!r}"
    w, g = Counter(_value_text(v) for v in want), Counter(_value_text(v) for v in got)
    if w == g:
        return True, f"the answer holds the {len(want)} expected values"
    missing, extra = list((w - g).elements()), list((g - w).elements())
    problems = []
    if missing:
        problems.append(f"missing {_listing(missing)}")
    if extra:
        problems.append(f"unexpected {_listing(extra)}")
    return False, "; ".join(problems)


def _diff(want: sqlite3.Connection, got: sqlite3.Connection, tables: Sequence[str]) -> str:
    """What differs between two databases' ``tables``, row by row, in one line."""
    problems = []
    for name in tables:
        a, b = _table_rows(want, name), _table_rows(got, name)
        if b is None:
            problems.append(f"table {name} no longer exists")
            continue
        if a is None:
            continue
        wa = Counter(_row_text(r) for r in a)
        gb = Counter(_row_text(r) for r in b)
        shown = {_row_text(r): repr(r) for r in [*a, *b]}
        missing = list((wa - gb).elements())
        extra = list((gb - wa).elements())
        if missing:
            problems.append(f"{name}: {len(missing)} row(s) missing, e.g. {shown[missing[0]]}")
        if extra:
            problems.append(f"{name}: {len(extra)} unexpected row(s), e.g. {shown[extra[0]]}")
    return "; ".join(problems) or "the rows are equal but the hash differs"


# -- the task ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DbTask:
    """A database task.

    Attributes:
        question: the question or request, as the agent reads it.
        database: the tables the episode starts from.
        kind: ``select`` (a question) or a change: ``insert``, ``update``, ``delete``.
        reference_sql: one or more statements that answer it (``;``-separated): for a
            select, its last statement is the SELECT whose rows are the answer.
        subkind: a select's kind (:data:`SELECT_KINDS`; default ``other``); ``None`` for a
            change.
        expected: filled in by :func:`derive`: a select's rows, or a change's
            :func:`state_hash` of every table after the reference ran.
    """

    question: str
    database: Database
    kind: DbKind
    reference_sql: str
    subkind: SelectKind | None = None
    expected: tuple[Row, ...] | str | None = None

    def __post_init__(self) -> None:
        if not self.question.strip():
            raise ValueError("DbTask.question is empty")
        if self.kind not in DB_KINDS:
            raise ValueError(f"DbTask.kind {self.kind!r} is not one of {', '.join(DB_KINDS)}")
        if self.kind == "select":
            if self.subkind is None:
                object.__setattr__(self, "subkind", "other")
            elif self.subkind not in SELECT_KINDS:
                raise ValueError(
                    f"DbTask.subkind {self.subkind!r} is not one of {', '.join(SELECT_KINDS)}"
                )
            if self.expected is not None and isinstance(self.expected, str):
                raise ValueError("a select DbTask's expected answer is its rows, not a hash")
        else:
            if self.subkind is not None:
                raise ValueError(f"DbTask.subkind is for select tasks; {_a(self.kind)} has none")
            if self.expected is not None and not isinstance(self.expected, str):
                raise ValueError(f"{_a(self.kind)} DbTask's expected answer is a state hash")

    @property
    def statements(self) -> list[str]:
        """The reference's statements (:func:`split_statements`)."""
        return split_statements(self.reference_sql)


def _run_reference(task: DbTask, limits: DbLimits) -> tuple[Row, ...] | str:
    """The reference's answer on a fresh copy: a select's rows or a change's hash.

    Raises:
        _Drop: why the task has no usable answer.
    """
    statements = task.statements
    if not statements:
        raise _Drop("the reference SQL holds no statement")
    session = _session(task.database, limits)
    conn = session.unguarded()
    names = task.database.names
    try:
        before = state_hash(conn, names)
        outcomes = []
        for i, sql in enumerate(statements, 1):
            try:
                outcomes.append(session.execute(sql))
            except SqlError as exc:
                where = (
                    f"statement {i} of the reference SQL"
                    if len(statements) > 1
                    else ("the reference SQL")
                )
                raise _Drop(f"{where} fails: {exc}") from exc
        writes = {w for o in outcomes for w in o.writes}
        schema = sorted({s for o in outcomes for s in o.schema})
        if schema:
            raise _Drop(f"the reference changes the schema ({', '.join(schema)})")
        if task.kind == "select":
            if writes:
                verb, table = sorted(writes)[0]
                raise _Drop(f"a select task's reference modifies data ({verb} on {table})")
            last = outcomes[-1]
            if not last.returns_rows:
                raise _Drop("a select task's reference must end with a SELECT")
            rows = last.rows
            if not rows:
                raise _Drop("the reference SELECT returns no row")
            if last.more or len(rows) > MAX_ANSWER_ROWS:
                count = f"more than {len(rows)}" if last.more else str(len(rows))
                raise _Drop(
                    f"the reference SELECT returns {count} rows (more than {MAX_ANSWER_ROWS})"
                )
            if all(v is None for r in rows for v in r):
                raise _Drop("the reference SELECT returns only NULLs")
            if any(isinstance(v, bytes) for r in rows for v in r):
                raise _Drop("the reference SELECT returns a BLOB")
            return tuple(tuple(r) for r in rows)
        verb = task.kind.upper()
        if not writes:
            raise _Drop(f"{_a(task.kind)} task's reference is a SELECT: it changes nothing")
        if verb not in {v for v, _ in writes}:
            made = ", ".join(sorted({v for v, _ in writes}))
            raise _Drop(f"{_a(task.kind)} task's reference makes no {verb} (it makes {made})")
        if sum(o.changes for o in outcomes) == 0:
            raise _Drop("the reference changes no row")
        after = state_hash(conn, names)
        if after == before:
            raise _Drop("the reference leaves every table as it was")
        return after
    finally:
        session.close()


class _Drop(Exception):
    """Why a task is dropped (one line)."""


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def derive(task: DbTask, *, limits: DbLimits | None = None) -> DbTask | str:
    """``task`` with its expected answer, found by running its reference SQL on a fresh
    copy of its database (twice, so a reference that uses ``random()`` or the clock is
    caught), or a one-line reason to drop it.

    A task is dropped when: the reference holds no statement or a statement fails (SQLite's
    message is quoted), or changes the schema; for a select: a statement modifies data, the
    last one is not a SELECT, or the SELECT returns no row, only NULLs, a BLOB or more
    than :data:`MAX_ANSWER_ROWS` rows; for a change: the reference only reads (a SELECT),
    makes none of the task's kind of change, changes no row or leaves every table as it
    was; for both: two runs give different answers.

    Args:
        task: the task (``expected`` is ignored and recomputed).
        limits: bounds on each statement (:class:`DbLimits`).

    Returns:
        The task with ``expected`` set, or the reason to drop it.
    """
    limits = limits or DbLimits()
    try:
        first = _run_reference(task, limits)
        if _run_reference(task, limits) != first:
            return "the reference gives a different answer on each run (random() or the clock?)"
    except _Drop as exc:
        return str(exc)
    return replace(task, expected=first)


# -- the environment --------------------------------------------------------------------------
class DbEnvironment:
    """AgentBench's DB task on SQLite: each episode starts from a fresh in-memory copy of
    its task's database.

    An ``sql`` call (``Action(kind="call", name="sql", text=<one statement>)``) runs one
    statement and returns the rows as Python prints a list of tuples (``[(28,)]``;
    ``[]`` when nothing is returned, as after a change); an error returns SQLite's message
    with ``error=True`` and the episode goes on. Several statements in one action are
    refused. Output longer than ``output_limit`` characters is cut at a row with a marker
    line. The answer (``Action(kind="answer", text="[...]")``) ends the episode: a select
    is scored by :func:`check_select` against the task's expected rows, a change by
    :func:`state_hash` of every table against the reference's (the answer's content does
    not matter then). ``finish`` ends a change the same way; ``fail`` ends with reward 0.

    Args:
        prompts: renders the first turn.
        limits: bounds on each statement (:class:`DbLimits`).
        output_limit: the most characters of rows shown after one statement.
        task_template: the first user turn (``question``, ``tables``).
    """

    def __init__(
        self,
        prompts: PromptLibrary,
        *,
        limits: DbLimits | None = None,
        output_limit: int = 2000,
        task_template: str = TASK_TEMPLATE,
    ) -> None:
        if output_limit < 20:
            raise ValueError(f"output_limit must be 20 or more, got {output_limit}")
        self.prompts = prompts
        self.limits = limits or DbLimits()
        self.output_limit = output_limit
        self.task_template = task_template
        self._task: DbTask | None = None
        self._session: _Session | None = None

    def templates(self) -> list[str]:
        """Every template this environment renders."""
        return [self.task_template]

    @property
    def connection(self) -> sqlite3.Connection | None:
        """The episode's database (kept after the episode for inspection until
        :meth:`close` or the next :meth:`reset`)."""
        return None if self._session is None else self._session.unguarded()

    async def reset(self, task: DbTask, *, seed: int | None = None) -> Observation:
        if task.expected is None:
            raise ValueError("DbTask has no expected answer: pass it through derive() first")
        await self.close()
        self._task = task
        self._session = await asyncio.to_thread(_session, task.database, self.limits)
        tables = [{"name": t.name, "headers": t.headers, "columns": t.columns}
                  for t in task.database.tables]  # fmt: skip
        text = self.prompts.render(self.task_template, question=task.question, tables=tables)
        return Observation(text=text)

    async def step(self, action: Action) -> StepResult:
        task, session = self._task, self._session
        if task is None or session is None:
            raise RuntimeError("DbEnvironment.step before reset")
        if action.kind in ("answer", "finish", "fail"):
            return await asyncio.to_thread(self._score, task, session, action)
        if action.kind != "call":
            raise ValueError(f"DbEnvironment cannot step a {action.kind} action")
        if action.name != "sql":
            return _error(f"{action.name!r} is not an operation; run SQL or give the answer")
        statements = split_statements(action.text)
        if not statements:
            return _error("the operation holds no SQL statement")
        if len(statements) > 1:
            return _error(
                f"one SQL statement per operation ({len(statements)} given): run the next one "
                "in the next turn"
            )
        try:
            out = await asyncio.to_thread(session.execute, statements[0])
        except SqlError as exc:
            return _error(str(exc))
        return StepResult(
            observation=self._show(out),
            info={"rows": len(out.rows), "more": out.more, "changes": out.changes},
        )

    def admissible_actions(self) -> None:
        return None

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await asyncio.to_thread(session.close)

    def _show(self, out: _Outcome) -> str:
        """The rows as Python prints them, cut at a row when longer than the limit."""
        whole = str(out.rows)
        if len(whole) <= self.output_limit and not out.more:
            return whole
        n = len(out.rows)
        count = f"more than {n:,} rows" if out.more else f"{n:,} row{'' if n == 1 else 's'}"
        budget = self.output_limit - len("[, ...]")
        parts: list[str] = []
        used = 0
        for row in out.rows:
            text = repr(row)
            if used + len(text) + 2 > budget:
                break
            parts.append(text)
            used += len(text) + 2
        if parts:
            shown = f"[{', '.join(parts)}, ...]" if len(parts) < len(out.rows) else whole
            note = f"{len(parts):,} shown"
        else:
            shown = whole[: self.output_limit] + " ..."
            note = f"the first {self.output_limit:,} characters shown"
        return f"{shown}\n(output truncated: {count}, {note})"

    def _score(self, task: DbTask, session: _Session, action: Action) -> StepResult:
        info: dict[str, Any] = {"kind": task.kind}
        if action.kind == "fail":
            passed, detail = False, "the episode ended with fail"
        elif task.kind == "select":
            if action.kind != "answer":
                passed, detail = False, "a question needs a final answer; the episode finished"
            else:
                try:
                    answer = answer_list(action.text.strip())
                except ParseError as exc:
                    passed, detail = False, f"the answer is not a list: {exc}"
                else:
                    assert isinstance(task.expected, tuple)
                    passed, detail = check_select(task.expected, answer)
        else:
            with session.lock:
                got = state_hash(session.unguarded(), task.database.names)
            info["hash"] = got
            if got == task.expected:
                passed, detail = True, "every table equals the reference's end state"
            else:
                passed, detail = False, self._change_detail(task, session)
        info.update(passed=passed, detail=detail)
        return StepResult(reward=1.0 if passed else 0.0, done=True, info=info)

    def _change_detail(self, task: DbTask, session: _Session) -> str:
        """What differs from the reference's end state (the reference is run again on a
        fresh copy to show rows)."""
        reference = _session(task.database, self.limits)
        try:
            for sql in task.statements:
                reference.execute(sql)
            with session.lock:
                diff = _diff(reference.unguarded(), session.unguarded(), task.database.names)
        except SqlError as exc:
            diff = f"the reference failed when run again: {exc}"
        finally:
            reference.close()
        return f"the tables differ from the reference's end state: {diff}"


def _error(line: str) -> StepResult:
    return StepResult(observation=line, error=True, info={"error": line})


__all__ = [
    "COLUMN_TYPES",
    "DB_KINDS",
    "MAX_ANSWER_ROWS",
    "READ_PRAGMAS",
    "SELECT_KINDS",
    "TASK_TEMPLATE",
    "Column",
    "ColumnType",
    "Database",
    "DbEnvironment",
    "DbKind",
    "DbLimits",
    "DbTask",
    "Row",
    "SelectKind",
    "SqlError",
    "Table",
    "Value",
    "check_select",
    "derive",
    "split_statements",
    "state_hash",
]
