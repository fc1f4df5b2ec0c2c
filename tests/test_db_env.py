"""The SQLite database environment: table validation, reading a user's file, task
derivation and each of its drop reasons, the guard (authorizer, runaway statements, one
statement per action), raw-row observations and their truncation, each reward rule, and
whole episodes with the ReAct DB format and a scripted model."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from genteach import ScriptedModel
from genteach.prompts import PromptLibrary
from genteach.runtime import Action, EpisodeSettings, ReactDbFormat, run_episode
from genteach.runtime.db import (
    Column,
    Database,
    DbEnvironment,
    DbLimits,
    DbTask,
    Table,
    check_select,
    derive,
    split_statements,
    state_hash,
)

PROMPTS = PromptLibrary()
FMT = ReactDbFormat()

EMPLOYEES = Table(
    name="employees",
    columns=(
        Column(name="id", type="INTEGER"),
        Column(name="name", type="TEXT"),
        Column(name="salary", type="REAL"),
        Column(name="hired", type="DATE"),
    ),
    rows=(
        (1, "Ada", 1200, "2020-01-05"),
        (2, "Bob", 900.5, "2021-03-01"),
        (3, "Cy", None, "2019-07-30"),
        (4, "Di", 1500.25, "2022-11-12 09:30"),
    ),
)
DEPTS = Table(
    name="depts",
    columns=(Column(name="name", type="TEXT"), Column(name="head", type="INTEGER")),
    rows=(("Sales", 1), ("Research", 4)),
)
DB = Database(tables=(EMPLOYEES, DEPTS))


def task(kind: str, sql: str, question: str = "q?", **kw: Any) -> DbTask:
    return DbTask(question=question, database=DB, kind=kind, reference_sql=sql, **kw)  # type: ignore[arg-type]


def derived(kind: str, sql: str, question: str = "q?", **kw: Any) -> DbTask:
    out = derive(task(kind, sql, question, **kw))
    assert isinstance(out, DbTask), out
    return out


def sql(statement: str) -> Action:
    return Action(kind="call", name="sql", text=statement)


def answer(text: str) -> Action:
    return Action(kind="answer", text=text)


# -- tables ---------------------------------------------------------------------------------
def table(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "columns": [{"name": "a", "type": "INTEGER"}, {"name": "b", "type": "TEXT"}],
        "rows": [[1, "x"]],
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (table(name="my`table"), "table name 'my`table' holds '`'"),
        (table(name=" t"), "starts or ends with a blank"),
        (table(name="sqlite_stat"), "starts with sqlite_, which SQLite reserves"),
        (
            table(columns=[{"name": "a", "type": "INTEGER"}, {"name": "A", "type": "TEXT"}]),
            "column 'A' occurs twice",
        ),
        (table(columns=[{"name": "a,b", "type": "TEXT"}], rows=[]), "column name 'a,b' holds ','"),
        (table(columns=[{"name": "a", "type": "BLOB"}], rows=[]), "Input should be 'INTEGER'"),
        (table(columns=[]), "at least 1 item"),
        (table(rows=[[1]]), "table t, row 1: 1 values for 2 columns"),
        (
            table(rows=[[1, "x"], [1.5, "y"]]),
            "table t, row 2: column a (INTEGER) holds 1.5; INTEGER takes whole numbers",
        ),
        (table(rows=[["one", "x"]]), "INTEGER takes whole numbers"),
        (table(rows=[["1.5", "x"]]), "INTEGER takes whole numbers"),
        (table(rows=[[True, "x"]]), "row 1 holds true or false: write 1 or 0"),
        (
            table(columns=[{"name": "d", "type": "DATE"}], rows=[[2024]]),
            "column d (DATE) holds 2024; DATE takes strings",
        ),
        (table(rows=[[2**70, "x"]]), "SQLite holds whole numbers of 64 bits"),
        (table(columns=[{"name": "p", "type": "REAL"}], rows=[["9,5"]]), "REAL takes numbers"),
        (
            table(columns=[{"name": "p", "type": "REAL"}], rows=[[float("inf")]]),
            "REAL takes finite numbers",
        ),
        (
            table(columns=[{"name": "d", "type": "DATE"}], rows=[["03/01/2024"]]),
            "DATE takes ISO dates",
        ),
        (
            table(columns=[{"name": "d", "type": "DATE"}], rows=[["2024-02-30"]]),
            "DATE takes ISO dates",
        ),
    ],
)
def test_a_table_that_is_not_valid_is_refused(data: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(error)):
        Table.model_validate(data)


def test_valid_tables_allow_nulls_ints_as_reals_and_names_with_spaces() -> None:
    t = Table.model_validate(
        table(
            name="Order lines",
            columns=[{"name": "unit price", "type": "REAL"}, {"name": "day", "type": "DATE"}],
            rows=[[3, "2024-03-01"], [None, None], [2.5, "2024-03-01T10:00:00"]],
        )
    )
    assert t.headers == ["unit price", "day"]


def test_numbers_written_as_strings_are_numbers_in_number_columns() -> None:
    """As SQLite's type affinity stores them: "2" in an INTEGER column is 2, "2000" in a REAL
    column 2000.0, 120 in a TEXT column "120" (the embedded model writes all three)."""
    t = Table.model_validate(
        table(
            columns=[
                {"name": "id", "type": "INTEGER"},
                {"name": "fee", "type": "REAL"},
                {"name": "code", "type": "TEXT"},
            ],
            rows=[["2", "2000", "7"], [" -3 ", "1.5e3", 120], [4, ".5", 2.5]],
        )
    )
    assert t.rows == ((2, 2000.0, "7"), (-3, 1500.0, "120"), (4, 0.5, "2.5"))


def test_a_database_refuses_two_tables_of_one_name_and_none_at_all() -> None:
    with pytest.raises(ValidationError, match="table 'T' occurs twice"):
        Database.model_validate({"tables": [table(), table(name="T")]})
    with pytest.raises(ValidationError, match="at least 1 item"):
        Database.model_validate({"tables": []})
    assert DB.table("EMPLOYEES") is EMPLOYEES and DB.table("x") is None


def test_create_builds_a_fresh_copy_each_time() -> None:
    first, second = DB.create(), DB.create()
    first.execute("DELETE FROM employees")
    assert second.execute("SELECT count(*) FROM employees").fetchall() == [(4,)]
    # DATE is stored as TEXT: no value is converted, SQLite's date functions work on it
    assert second.execute(
        "SELECT typeof(hired), strftime('%Y', hired) FROM employees"
    ).fetchone() == (
        "text",
        "2020",
    )
    assert second.execute("SELECT salary FROM employees WHERE id = 1").fetchone() == (1200.0,)
    first.close()
    second.close()


def test_from_sqlite_reads_a_users_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE "order lines" (id INT PRIMARY KEY, item VARCHAR(20), price DOUBLE,
                                    day DATE, qty, note NUMERIC);
        INSERT INTO "order lines" VALUES (1, 'pen', 2.5, '2024-03-01', 3, 1.5);
        INSERT INTO "order lines" VALUES (2, 'ink', 4, '2024-03-02', NULL, 2);
        CREATE TABLE stock (item TEXT, n INTEGER);
        INSERT INTO stock VALUES ('pen', 10);
        CREATE VIEW cheap AS SELECT * FROM "order lines" WHERE price < 3;
        CREATE INDEX by_item ON stock (item);
        """
    )
    conn.commit()
    conn.close()
    db = Database.from_sqlite(path)
    assert db.names == ["order lines", "stock"]
    lines = db.tables[0]
    assert [(c.name, c.type) for c in lines.columns] == [
        ("id", "INTEGER"),
        ("item", "TEXT"),
        ("price", "REAL"),
        ("day", "DATE"),
        ("qty", "INTEGER"),
        ("note", "REAL"),
    ]
    assert lines.rows == (
        (1, "pen", 2.5, "2024-03-01", 3, 1.5),
        (2, "ink", 4.0, "2024-03-02", None, 2),
    )
    assert Database.from_sqlite(path, tables=["STOCK"]).names == ["stock"]
    with pytest.raises(
        ValueError, match=re.escape("shop.db has no table 'nope'; its tables: order lines, stock")
    ):
        Database.from_sqlite(path, tables=["nope"])
    with pytest.raises(
        ValueError, match="table order lines has more than 1 rows; pass a larger max_rows"
    ):
        Database.from_sqlite(path, max_rows=1)
    # the file is read, never written
    assert sqlite3.connect(path).execute("SELECT count(*) FROM stock").fetchone() == (1,)


def test_from_sqlite_refuses_blobs_mixed_values_and_files_that_are_not_sqlite(
    tmp_path: Path,
) -> None:
    blob = tmp_path / "blob.db"
    conn = sqlite3.connect(blob)
    conn.execute("CREATE TABLE t (a BLOB)")
    conn.execute("INSERT INTO t VALUES (x'00ff')")
    conn.execute("CREATE TABLE u (n INTEGER)")
    conn.execute("INSERT INTO u VALUES ('n/a')")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="table t, row 1: column a holds a BLOB"):
        Database.from_sqlite(blob, tables=["t"])
    with pytest.raises(ValueError, match=r"column n \(INTEGER\) holds 'n/a'"):
        Database.from_sqlite(blob, tables=["u"])
    text = tmp_path / "notes.db"
    text.write_text("not a database at all, just some text " * 20)
    with pytest.raises(ValueError, match=re.escape("notes.db cannot be read as SQLite")):
        Database.from_sqlite(text)
    with pytest.raises(ValueError, match="is not a file"):
        Database.from_sqlite(tmp_path / "missing.db")


# -- statements and tasks --------------------------------------------------------------------
def test_split_statements_respects_quotes_comments_and_triggers() -> None:
    assert split_statements("SELECT 1;") == ["SELECT 1"]
    assert split_statements("SELECT ';' ; -- note\n; SELECT 2") == ["SELECT ';'", "SELECT 2"]
    assert split_statements("  -- only a comment\n/* and another */ ;; ") == []
    trigger = "CREATE TRIGGER x AFTER INSERT ON t BEGIN UPDATE t SET a = 1; END"
    assert split_statements(f"{trigger}; SELECT 3") == [trigger, "SELECT 3"]


def test_a_task_checks_its_kind_and_subkind() -> None:
    assert task("select", "SELECT 1").subkind == "other"
    with pytest.raises(
        ValueError, match=re.escape("DbTask.kind 'merge' is not one of select, insert")
    ):
        task("merge", "SELECT 1")
    with pytest.raises(
        ValueError, match=re.escape("DbTask.subkind 'sorting' is not one of counting")
    ):
        task("select", "SELECT 1", subkind="sorting")
    with pytest.raises(
        ValueError, match=re.escape("DbTask.subkind is for select tasks; an update has none")
    ):
        task("update", "UPDATE depts SET head = 2", subkind="counting")
    with pytest.raises(ValueError, match=re.escape("DbTask.question is empty")):
        task("select", "SELECT 1", question=" ")


def test_derive_fills_in_a_selects_rows_and_a_changes_hash() -> None:
    t = derived("select", "SELECT name FROM employees WHERE salary > 1000 ORDER BY name;")
    assert t.expected == (("Ada",), ("Di",))
    # several statements: the last SELECT's rows are the answer
    t = derived("select", "SELECT 1; SELECT count(*) FROM depts", subkind="counting")
    assert t.expected == ((2,),)
    change = derived("update", "UPDATE employees SET salary = salary * 1.1 WHERE id = 1")
    conn = DB.create()
    conn.execute("UPDATE employees SET salary = 1320 WHERE id = 1")
    assert change.expected == state_hash(conn, DB.names)
    conn.close()


@pytest.mark.parametrize(
    ("kind", "reference", "reason"),
    [
        ("select", "  -- nothing\n", "the reference SQL holds no statement"),
        ("select", "SELECT salry FROM employees", "the reference SQL fails: no such column: salry"),
        (
            "select",
            "SELECT 1; SELEC 2",
            'statement 2 of the reference SQL fails: near "SELEC": syntax error',
        ),
        (
            "select",
            "SELECT name FROM employees WHERE id > 10",
            "the reference SELECT returns no row",
        ),
        (
            "select",
            "SELECT salary FROM employees WHERE id = 3",
            "the reference SELECT returns only NULLs",
        ),
        (
            "select",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 51) "
            "SELECT x FROM c",
            "the reference SELECT returns 51 rows (more than 50)",
        ),
        (
            "select",
            "DELETE FROM depts WHERE head = 1; SELECT count(*) FROM depts",
            "a select task's reference modifies data (DELETE on depts)",
        ),
        ("select", "UPDATE depts SET head = 2", "a select task's reference modifies data"),
        ("select", "SELECT x'00'", "the reference SELECT returns a BLOB"),
        ("select", "SELECT random()", "the reference gives a different answer on each run"),
        (
            "insert",
            "SELECT count(*) FROM employees",
            "an insert task's reference is a SELECT: it changes nothing",
        ),
        ("delete", "DELETE FROM employees WHERE id = 99", "the reference changes no row"),
        (
            "update",
            "UPDATE depts SET head = head WHERE name = 'Sales'",
            "the reference leaves every table as it was",
        ),
        (
            "delete",
            "UPDATE depts SET head = 2",
            "a delete task's reference makes no DELETE (it makes UPDATE)",
        ),
        (
            "insert",
            "CREATE TABLE x (a INTEGER); INSERT INTO x VALUES (1)",
            "the reference changes the schema (CREATE TABLE)",
        ),
        (
            "select",
            "ATTACH ':memory:' AS other",
            "the reference SQL fails: not authorized: ATTACH and VACUUM are not allowed",
        ),
    ],
)
def test_derive_drops_a_task_with_a_one_line_reason(kind: str, reference: str, reason: str) -> None:
    out = derive(task(kind, reference))
    assert isinstance(out, str) and out.startswith(reason), out
    assert "\n" not in out


def test_a_runaway_reference_is_stopped() -> None:
    forever = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    )
    out = derive(task("select", forever), limits=DbLimits(steps=200_000))
    assert out == (
        "the reference SQL fails: interrupted: the statement ran more than 200,000 steps and "
        "was stopped"
    )
    out = derive(task("select", forever), limits=DbLimits(seconds=0.05))
    assert out == (
        "the reference SQL fails: interrupted: the statement ran longer than 0.05 s and was stopped"
    )


# -- the hash and the answer rules -----------------------------------------------------------
def test_the_state_hash_ignores_row_order_and_sees_every_change() -> None:
    shuffled = Database(tables=(EMPLOYEES.model_copy(update={"rows": EMPLOYEES.rows[::-1]}), DEPTS))
    a, b = DB.create(), shuffled.create()
    assert state_hash(a, ["employees", "depts"]) == state_hash(b, ["depts", "EMPLOYEES"])
    before = state_hash(a, DB.names)
    a.execute("UPDATE employees SET salary = 1200.0000001 WHERE id = 1")  # rounded: no change
    assert state_hash(a, DB.names) == before
    a.execute("UPDATE employees SET name = 'ada' WHERE id = 1")
    assert state_hash(a, DB.names) != before
    b.execute("DROP TABLE depts")
    assert state_hash(b, DB.names) != state_hash(DB.create(), DB.names)
    # text '1' and number 1 differ; NULL is neither
    c = sqlite3.connect(":memory:")
    c.execute("CREATE TABLE t (v)")
    c.execute("INSERT INTO t VALUES (1)")
    one = state_hash(c, ["t"])
    c.execute("UPDATE t SET v = '1'")
    text = state_hash(c, ["t"])
    c.execute("UPDATE t SET v = NULL")
    assert len({one, text, state_hash(c, ["t"])}) == 3


@pytest.mark.parametrize(
    ("expected", "given", "passed", "detail"),
    [
        ([(28,)], [28], True, "the answer 28 equals the expected 28"),
        ([(28,)], ["28.0"], True, "equals"),
        ([(1 / 3,)], [0.3333333], True, "equals"),
        ([(1 / 3,)], [0.333], False, "the answer 0.333 differs from the expected"),
        ([(28,)], ["twenty-eight"], False, "the answer 'twenty-eight' is not a number"),
        ([(28,)], [28, 1], False, "expected one number (28), the answer has 2 values"),
        ([("Oslo",), ("Bergen",)], ["Bergen", "Oslo"], True, "holds the 2 expected values"),
        ([("Oslo", 4)], [["Oslo", 4.0]], True, "holds"),
        ([("Oslo", 4)], ["Oslo", " 4 "], True, "holds"),
        ([(2.5000001,), ("a",)], [2.5, "a"], True, "holds"),
        ([("Oslo",), ("Oslo",)], ["Oslo"], False, "missing 'Oslo'"),
        ([("Oslo",)], ["oslo"], False, "missing 'Oslo'; unexpected 'oslo'"),
        ([("Oslo",), (None,)], ["Oslo", None], True, "holds"),
        ([("x",)], [], False, "missing 'x'"),
    ],
)
def test_select_answers_are_numbers_or_multisets(
    expected: list[tuple[Any, ...]], given: list[Any], passed: bool, detail: str
) -> None:
    ok, why = check_select(expected, given)
    assert ok is passed and detail in why, why


# -- the environment, step by step -------------------------------------------------------------
async def started(t: DbTask, **kw: Any) -> DbEnvironment:
    env = DbEnvironment(PROMPTS, **kw)
    await env.reset(t)
    return env


async def test_reset_names_the_tables_and_their_headers() -> None:
    env = DbEnvironment(PROMPTS)
    first = await env.reset(derived("select", "SELECT count(*) FROM depts", "How many depts?"))
    assert first.text == (
        "How many depts?\n"
        "The name of this table is employees, and the headers of this table are id, name, "
        "salary, hired.\n"
        "The name of this table is depts, and the headers of this table are name, head."
    )
    assert first.system == "" and first.tools == ()
    for name in env.templates():
        PROMPTS.check(name)
    with pytest.raises(ValueError, match="pass it through derive"):
        await env.reset(task("select", "SELECT 1"))
    await env.close()


async def test_rows_come_back_raw_and_errors_as_sqlites_message() -> None:
    env = await started(derived("update", "UPDATE depts SET head = 2 WHERE name = 'Sales'"))
    r = await env.step(sql("SELECT count(*) FROM employees"))
    assert (r.observation, r.error, r.done) == ("[(4,)]", False, False)
    r = await env.step(sql("SELECT name, salary FROM employees WHERE id < 3 ORDER BY id;"))
    assert r.observation == "[('Ada', 1200.0), ('Bob', 900.5)]"
    r = await env.step(sql("UPDATE depts SET head = 2 WHERE name = 'Sales'"))
    assert (r.observation, r.info["changes"]) == ("[]", 1)
    r = await env.step(sql("SELECT nope FROM depts"))
    assert (r.observation, r.error, r.done) == ("no such column: nope", True, False)
    r = await env.step(sql("SELECT `name` FROM `depts` WHERE head IN (2, 4) ORDER BY 1"))
    assert r.observation == "[('Research',), ('Sales',)]"
    r = await env.step(Action(kind="call", name="bash", text="ls"))
    assert r.error and r.observation == "'bash' is not an operation; run SQL or give the answer"
    await env.close()
    assert env.connection is None


async def test_one_statement_per_action() -> None:
    env = await started(derived("select", "SELECT 1"))
    r = await env.step(sql("DELETE FROM depts; SELECT 1"))
    assert r.error and r.observation == (
        "one SQL statement per operation (2 given): run the next one in the next turn"
    )
    assert env.connection is not None
    assert env.connection.execute("SELECT count(*) FROM depts").fetchone() == (2,)
    r = await env.step(sql("SELECT ';' AS semi;"))
    assert r.observation == "[(';',)]"
    r = await env.step(sql("-- nothing to run"))
    assert r.error and r.observation == "the operation holds no SQL statement"
    await env.close()


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            "ATTACH DATABASE ':memory:' AS other",
            "not authorized: ATTACH and VACUUM are not allowed: work in this database only",
        ),
        ("VACUUM INTO 'copy.db'", "not authorized: ATTACH and VACUUM are not allowed"),
        ("PRAGMA user_version = 3", "not authorized: PRAGMA user_version is not allowed"),
        ("PRAGMA writable_schema = ON", "not authorized: PRAGMA writable_schema is not allowed"),
        ("SELECT load_extension('x')", "not authorized: load_extension is not allowed"),
        ("SELECT length(zeroblob(2000000))", "string or blob too big"),
    ],
)
async def test_the_guard_refuses_what_is_not_sql_on_this_database(
    statement: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = await started(derived("select", "SELECT 1"))
    r = await env.step(sql(statement))
    assert r.error and r.observation.startswith(message), r.observation
    assert list(tmp_path.iterdir()) == []
    # schema reads are allowed
    r = await env.step(sql("PRAGMA table_info(depts)"))
    assert r.observation == "[(0, 'name', 'TEXT', 0, None, 0), (1, 'head', 'INTEGER', 0, None, 0)]"
    await env.close()


async def test_a_runaway_statement_is_stopped_and_the_episode_goes_on() -> None:
    env = await started(derived("select", "SELECT 1"), limits=DbLimits(steps=100_000))
    r = await env.step(
        sql("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c")
    )
    assert r.error and r.observation == (
        "interrupted: the statement ran more than 100,000 steps and was stopped"
    )
    r = await env.step(sql("SELECT count(*) FROM employees"))
    assert (r.observation, r.error) == ("[(4,)]", False)
    await env.close()


async def test_long_output_is_cut_at_a_row_with_a_marker() -> None:
    env = await started(derived("select", "SELECT 1"), output_limit=60)
    r = await env.step(
        sql(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "LIMIT 30) SELECT x, 'row' FROM c"
        )
    )
    shown, note = r.observation.split("\n")
    assert shown == "[(1, 'row'), (2, 'row'), (3, 'row'), (4, 'row'), ...]"
    assert note == "(output truncated: 30 rows, 4 shown)"
    r = await env.step(sql("SELECT printf('%.100c', 'z')"))
    assert r.observation.endswith("...\n(output truncated: 1 row, the first 60 characters shown)")
    await env.close()
    env = await started(derived("select", "SELECT 1"), limits=DbLimits(fetch_rows=5))
    r = await env.step(
        sql(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "LIMIT 9) SELECT x FROM c"
        )
    )
    assert (
        r.observation
        == "[(1,), (2,), (3,), (4,), (5,)]\n(output truncated: more than 5 rows, 5 shown)"
    )
    await env.close()


async def test_every_episode_starts_from_a_fresh_database() -> None:
    t = derived("delete", "DELETE FROM depts WHERE name = 'Sales'")
    env = await started(t)
    await env.step(sql("DELETE FROM depts"))
    r = await env.step(answer("[]"))
    assert r.reward == 0.0
    await env.reset(t)
    r = await env.step(sql("SELECT count(*) FROM depts"))
    assert r.observation == "[(2,)]"
    await env.close()


async def test_select_answers_are_scored_against_the_expected_rows() -> None:
    t = derived("select", "SELECT name FROM employees WHERE salary > 1000", subkind="comparison")
    env = await started(t)
    r = await env.step(answer('["Di", "Ada"]'))
    assert (r.reward, r.done) == (1.0, True)
    assert r.info == {
        "kind": "select",
        "passed": True,
        "detail": "the answer holds the 2 expected values",
    }
    r = await env.step(answer('["Ada"]'))
    assert (r.reward, r.info["detail"]) == (0.0, "missing 'Di'")
    r = await env.step(answer("Ada"))
    assert r.reward == 0.0 and r.info["detail"].startswith("the answer is not a list")
    r = await env.step(Action(kind="finish"))
    assert r.reward == 0.0 and r.info["detail"].startswith("a question needs a final answer")
    r = await env.step(Action(kind="fail", text="cannot"))
    assert r.reward == 0.0 and r.info["detail"] == "the episode ended with fail"
    await env.close()


@pytest.mark.parametrize(
    ("kind", "reference", "statements", "passed"),
    [
        (
            "insert",
            "INSERT INTO depts VALUES ('Legal', 2)",
            ["INSERT INTO depts (head, name) VALUES (2, 'Legal')"],
            True,
        ),
        (
            "insert",
            "INSERT INTO depts VALUES ('Legal', 2)",
            ["INSERT INTO depts VALUES ('Legal', 3)"],
            False,
        ),
        (
            "update",
            "UPDATE employees SET salary = salary * 1.1 WHERE name = 'Bob'",
            ["UPDATE employees SET salary = 990.55 WHERE id = 2"],
            True,
        ),
        (
            "update",
            "UPDATE employees SET salary = salary * 1.1 WHERE name = 'Bob'",
            ["UPDATE employees SET salary = salary * 1.1"],
            False,
        ),
        (
            "delete",
            "DELETE FROM employees WHERE hired < '2020-06-01'",
            ["DELETE FROM employees WHERE id IN (1, 3)"],
            True,
        ),
        (
            "delete",
            "DELETE FROM employees WHERE hired < '2020-06-01'",
            ["DELETE FROM employees WHERE id IN (1, 3)", "DELETE FROM depts"],
            False,
        ),
        # the same rows, written in another order, have the same hash
        (
            "delete",
            "DELETE FROM depts",
            [
                "DELETE FROM depts",
                "INSERT INTO depts VALUES ('Research', 4), ('Sales', 1)",
                "DELETE FROM depts",
            ],
            True,
        ),
        ("insert", "INSERT INTO depts VALUES ('Legal', 2)", [], False),
    ],
)
async def test_changes_are_scored_by_the_hash_of_every_table(
    kind: str, reference: str, statements: list[str], passed: bool
) -> None:
    env = await started(derived(kind, reference))
    for s in statements:
        r = await env.step(sql(s))
        assert not r.error, r.observation
    r = await env.step(answer('["anything"]'))  # the answer's content is not checked
    assert (r.reward, r.done, r.info["passed"]) == (float(passed), True, passed)
    if passed:
        assert r.info["detail"] == "every table equals the reference's end state"
    else:
        assert r.info["detail"].startswith("the tables differ from the reference's end state: ")
    await env.close()


async def test_a_failed_change_says_which_rows_differ() -> None:
    env = await started(derived("update", "UPDATE depts SET head = 2 WHERE name = 'Sales'"))
    await env.step(sql("UPDATE depts SET head = 3 WHERE name = 'Sales'"))
    r = await env.step(Action(kind="finish"))
    assert r.info["detail"] == (
        "the tables differ from the reference's end state: depts: 1 row(s) missing, e.g. "
        "('Sales', 2); depts: 1 unexpected row(s), e.g. ('Sales', 3)"
    )
    await env.close()
    env = await started(derived("delete", "DELETE FROM depts WHERE head = 1"))
    await env.step(sql("DROP TABLE depts"))
    r = await env.step(answer("[]"))
    assert r.info["detail"].endswith("table depts no longer exists")
    await env.close()


# -- whole episodes ----------------------------------------------------------------------------
def turn(thought: str, statement: str) -> str:
    return f"{thought}\nAction: Operation\n```sql\n{statement}\n```"


def final(thought: str, value: str) -> str:
    return f"{thought}\nAction: Answer\nFinal Answer: {value}"


COUNT = "How many employees earn more than 1000?"


async def test_an_episode_answers_a_select_right() -> None:
    model = ScriptedModel(
        [
            turn(
                "I count the employees above 1000.",
                "SELECT COUNT(*) FROM employees\nWHERE salary > 1000;",
            ),
            final("The count is 2.", "[2]"),
        ]
    )
    env = DbEnvironment(PROMPTS)
    t = derived(
        "select", "SELECT count(*) FROM employees WHERE salary > 1000", COUNT, subkind="counting"
    )
    episode = await run_episode(model, env, t, FMT, prompts=PROMPTS)
    await env.close()
    assert (episode.end, episode.reward, episode.format) == ("finished", 1.0, "react_db")
    assert [(m["role"], m["trained"]) for m in episode.messages] == [
        ("user", False),  # the instructions
        ("assistant", False),  # "Ok."
        ("user", False),  # the question and the tables
        ("assistant", True),
        ("user", False),
        ("assistant", True),
    ]
    assert episode.messages[2]["content"].startswith(
        f"{COUNT}\nThe name of this table is employees"
    )
    assert episode.messages[4]["content"] == "[(2,)]"
    assert episode.turns[0].action.text == "SELECT COUNT(*) FROM employees WHERE salary > 1000;"
    assert episode.turns[-1].steps[-1].result.info["detail"] == "the answer 2 equals the expected 2"


async def test_an_episode_answers_a_select_wrong_after_an_error() -> None:
    model = ScriptedModel(
        [
            turn("I count them.", "SELECT COUNT(*) FROM employee WHERE salary > 1000"),
            turn("The table is employees.", "SELECT COUNT(*) FROM employees WHERE salary >= 900"),
            final("The count is 3.", "[3]"),
        ]
    )
    t = derived(
        "select", "SELECT count(*) FROM employees WHERE salary > 1000", COUNT, subkind="counting"
    )
    env = DbEnvironment(PROMPTS)
    episode = await run_episode(
        model, env, t, FMT, prompts=PROMPTS, settings=EpisodeSettings(max_turns=5)
    )
    await env.close()
    assert (episode.end, episode.reward) == ("finished", 0.0)
    assert episode.messages[4]["content"] == "no such table: employee"
    assert episode.turns[0].steps[0].result.error
    assert (
        episode.turns[-1].steps[-1].result.info["detail"]
        == "the answer 3 differs from the expected 2"
    )


RAISE = "Raise Bob's salary by 10 percent."


async def test_an_episode_makes_an_update_whose_hash_matches() -> None:
    model = ScriptedModel(
        [
            turn("Bob's row first.", "SELECT id, salary FROM employees WHERE name = 'Bob'"),
            turn("Now the raise.", "UPDATE employees SET salary = salary * 1.1 WHERE id = 2"),
            final("Done.", '["none"]'),
        ]
    )
    t = derived("update", "UPDATE employees SET salary = salary * 1.1 WHERE name = 'Bob'", RAISE)
    env = DbEnvironment(PROMPTS)
    episode = await run_episode(model, env, t, FMT, prompts=PROMPTS)
    await env.close()
    assert (episode.end, episode.reward) == ("finished", 1.0)
    assert [m["content"] for m in episode.messages[4::2]] == ["[(2, 900.5)]", "[]"]
    assert episode.turns[-1].steps[-1].result.info["hash"] == t.expected


async def test_an_episode_makes_an_update_whose_hash_differs() -> None:
    model = ScriptedModel(
        [
            turn("A raise for everyone.", "UPDATE employees SET salary = salary * 1.1"),
            final("Done.", "[]"),
        ]
    )
    t = derived("update", "UPDATE employees SET salary = salary * 1.1 WHERE name = 'Bob'", RAISE)
    env = DbEnvironment(PROMPTS)
    episode = await run_episode(model, env, t, FMT, prompts=PROMPTS)
    await env.close()
    assert (episode.end, episode.reward) == ("finished", 0.0)
    detail = episode.turns[-1].steps[-1].result.info["detail"]
    assert detail.startswith(
        "the tables differ from the reference's end state: employees: 2 row(s)"
    )
