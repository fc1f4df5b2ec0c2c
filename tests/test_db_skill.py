"""The database-agent skill (taxonomies/agenttuning.yaml) end to end with a scripted
teacher: tables built from each seed, questions and changes whose reference SQL runs when
they are written, and the teacher's episodes on a fresh SQLite database kept only when
their reward is 1 (AgentTuning's filter)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel, load_taxonomy, read_records
from genteach.models.base import Message, is_trained
from genteach.records import Seed

ROOT = Path(__file__).resolve().parent.parent
TAXONOMY = ROOT / "taxonomies" / "agenttuning.yaml"
SEEDS_DIR = ROOT / "examples" / "seeds"

TABLES = {
    "title": "Harbour bakery orders, spring 2025",
    "tables": [
        {
            "name": "customers",
            "columns": [
                {"name": "id", "type": "INTEGER"},
                {"name": "name", "type": "TEXT"},
                {"name": "city", "type": "TEXT"},
                {"name": "tier", "type": "TEXT"},
            ],
            "rows": [
                [1, "Nordlys Cafe", "Bergen", "gold"],
                [2, "Fjord Deli", "Oslo", "silver"],
                [3, "Kaia Bar", "Bergen", "silver"],
                [4, "Molla", "Tromso", "bronze"],
                [5, "Havn Kitchen", "Oslo", "gold"],
                [6, "Sjo Bistro", "Bergen", "bronze"],
            ],
        },
        {
            "name": "orders",
            "columns": [
                {"name": "id", "type": "INTEGER"},
                {"name": "customer_id", "type": "INTEGER"},
                {"name": "ordered_on", "type": "DATE"},
                {"name": "amount_eur", "type": "REAL"},
                {"name": "status", "type": "TEXT"},
            ],
            "rows": [
                [1, 1, "2025-03-02", 120.5, "paid"],
                [2, 1, "2025-03-30", 80.0, "refunded"],
                [3, 2, "2025-04-01", 99.9, "paid"],
                [4, 3, "2025-03-15", 45.25, "pending"],
                [5, 2, "2025-02-11", 310.0, "paid"],
                [6, 5, "2025-03-31", 150.75, "paid"],
                [7, 3, "2025-03-01", 60.0, "paid"],
                [8, 5, "2025-04-12", 22.4, "pending"],
            ],
        },
    ],
}
# task type name -> (instruction, operation, reference sql, [acting statements...], final answer)
TASKS = {
    "Counting": (
        "How many orders from customers in Bergen were paid in March 2025 (1 to 31 March, both included)?",
        "select",
        "SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.city = 'Bergen' AND o.status = 'paid' AND o.ordered_on BETWEEN '2025-03-01' AND '2025-03-31'",
        [
            "SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.city = 'Bergen' AND o.status = 'paid' AND o.ordered_on BETWEEN '2025-03-01' AND '2025-03-31'"
        ],
        "[2]",
    ),
    "Comparison": (
        "Did Nordlys Cafe or Havn Kitchen pay us more in total for their paid orders? Give the customer's name.",
        "select",
        "SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.status = 'paid' AND c.name IN ('Nordlys Cafe', 'Havn Kitchen') GROUP BY c.name ORDER BY SUM(o.amount_eur) DESC LIMIT 1",
        [
            "SELECT c.name, SUM(o.amount_eur) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.status = 'paid' AND c.name IN ('Nordlys Cafe', 'Havn Kitchen') GROUP BY c.name"
        ],
        '["Havn Kitchen"]',
    ),
    "Ranking": (
        "Which customer has the second-highest total of paid orders?",
        "select",
        "SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.status = 'paid' GROUP BY c.id ORDER BY SUM(o.amount_eur) DESC LIMIT 1 OFFSET 1",
        [
            "SELECT c.name, SUM(o.amount_eur) AS t FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.status = 'paid' GROUP BY c.id ORDER BY t DESC LIMIT 3"
        ],
        '["Havn Kitchen"]',
    ),
    "Aggregation": (
        "What was the average amount of the paid orders placed in March 2025, rounded to two decimal places?",
        "select",
        "SELECT ROUND(AVG(amount_eur), 2) FROM orders WHERE status = 'paid' AND ordered_on BETWEEN '2025-03-01' AND '2025-03-31'",
        [
            "SELECT ROUND(AVG(amount_eur), 2) FROM orders WHERE status = 'paid' AND ordered_on BETWEEN '2025-03-01' AND '2025-03-31'"
        ],
        "[110.42]",
    ),
    "Other Question": (
        "Which customers have never placed an order? Give their names.",
        "select",
        "SELECT name FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)",
        ["SELECT name FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)"],
        '["Molla", "Sjo Bistro"]',
    ),
    "Insert": (
        'Please add the new customer Lysverket from Bergen, tier "silver", with id 7.',
        "insert",
        "INSERT INTO customers (id, name, city, tier) VALUES (7, 'Lysverket', 'Bergen', 'silver')",
        [
            "INSERT INTO customers (id, name, city, tier) VALUES (7, 'Lysverket', 'Bergen', 'silver')"
        ],
        '["done"]',
    ),
    "Update": (
        'Mark as "paid" every pending order placed in March 2025.',
        "update",
        "UPDATE orders SET status = 'paid' WHERE status = 'pending' AND ordered_on BETWEEN '2025-03-01' AND '2025-03-31'",
        [
            "UPDATE orders SET status = 'paid' WHERE status = 'pending' AND ordered_on BETWEEN '2025-03-01' AND '2025-03-31'"
        ],
        '["done"]',
    ),
    "Delete": (
        "Remove the refunded orders placed before 1 April 2025.",
        "delete",
        "DELETE FROM orders WHERE status = 'refunded' AND ordered_on < '2025-04-01'",
        ["DELETE FROM orders WHERE status = 'refunded' AND ordered_on < '2025-04-01'"],
        '["done"]',
    ),
}


class DbTeacher:
    """A perfect database teacher by agent role (``wrong``: the acting teacher answers
    without doing the work, which no reward accepts)."""

    def __init__(self, *, wrong: bool = False) -> None:
        self.calls: Counter[str] = Counter()
        self.wrong = wrong

    def __call__(self, messages: Sequence[Message]) -> str:
        system = messages[0]["content"]
        user = messages[1]["content"] if len(messages) > 1 else ""
        if "You are a database designer" in system:
            self.calls["tables"] += 1
            return json.dumps(TABLES)
        if "task-writing agent" in system:
            self.calls["instruct"] += 1
            name = re.search(r'of the type "([^"]+)"', user).group(1)
            n = int(re.search(r"Write (\d+) task", user).group(1))
            q, op, sql, _, _ = TASKS[name]
            return json.dumps(
                {
                    "tasks": [
                        {
                            "instruction": q,
                            "key": {"kind": "db_reference", "operation": op, "sql": sql},
                        }
                    ]
                    * n
                }
            )
        if "expert database agent" in system:
            self.calls["act"] += 1
            task = next(
                m["content"]
                for m in messages
                if m["role"] == "user" and "The name of this table is" in m["content"]
            )
            done = sum(1 for m in messages if m["role"] == "assistant" and m["content"] != "Ok.")
            for q, op, _sql, steps, answer in TASKS.values():
                if task.startswith(q):
                    if self.wrong:
                        steps, answer = (
                            (["SELECT 1"], "[0]") if op == "select" else (["SELECT 1"], '["done"]')
                        )
                    if done < len(steps):
                        return f"I run the query that computes it.\nAction: Operation\n```sql\n{steps[done]}\n```"
                    return (
                        f"The result answers the request.\nAction: Answer\nFinal Answer: {answer}"
                    )
            raise AssertionError("unknown task " + task[:200])
        raise AssertionError("unknown agent " + system[:200])


def text_seeds() -> list[Seed]:
    return [
        Seed.from_text(p.read_text(), source=p.name)
        for p in sorted(SEEDS_DIR.iterdir())
        if p.suffix in (".txt", ".md")
    ]


def run(tmp: Path, *, wrong: bool, run_seed: int) -> tuple[object, Path]:
    pipe = Pipeline(
        ScriptedModel(DbTeacher(wrong=wrong), name="scripted-db"),
        taxonomy=TAXONOMY,
        skills=["db"],
        settings=RunSettings(seed=run_seed),
    )
    return pipe.run(text_seeds(), tmp), tmp


@pytest.mark.slow
def test_the_db_skill_keeps_the_episodes_that_reach_the_reference(tmp_path: Path) -> None:
    skill = load_taxonomy(TAXONOMY).skills["db"]
    types: Counter[str] = Counter()
    for run_seed in range(6):
        summary, out = run(tmp_path / str(run_seed), wrong=False, run_seed=run_seed)
        assert summary.rejects == 0, (out / "rejects.jsonl").read_text()  # type: ignore[attr-defined]
        for r in read_records(out / "records.jsonl"):
            types[r.meta.sub_category] += 1
            assert r.meta.verification is not None and r.meta.verification.status == "passed"
            flags = [(m["role"], is_trained(m)) for m in r.messages]
            # the format's instructions and "Ok." are untrained; every action is trained
            assert flags[0] == ("user", False) and flags[1] == ("assistant", False)
            assert r.messages[1]["content"] == "Ok."
            assert all(t == (role == "assistant") for role, t in flags[2:])
    assert set(types) == {t.id for t in skill.task_types}


def test_a_wrong_episode_is_filtered_with_the_rewards_reason(tmp_path: Path) -> None:
    summary, out = run(tmp_path, wrong=True, run_seed=0)
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    episodes = [r for r in rejects if r["stage"] == "db_episode"]
    assert summary.records == 0 and episodes  # type: ignore[attr-defined]
    assert all(r["reason"].startswith("reward 0") for r in episodes)
    report = json.loads((out / "trajectories.json").read_text())["db"]
    assert report["kept"] == 0 and report["failures"] == {"wrong answer": len(episodes)}


def test_a_change_task_must_name_its_operation(tmp_path: Path) -> None:
    from genteach.agents.db import DbTaskAgent
    from genteach.agents.instruct import InstructInput
    from genteach.agents.parsing import ParseError
    from genteach.agents.views import CategoryView, SkillView
    from genteach.keys import DbReferenceKey
    from genteach.prompts import PromptLibrary

    agent = DbTaskAgent("instruct/update", prompts=PromptLibrary(), key_kinds=[DbReferenceKey])
    inputs = InstructInput(
        skill=SkillView(id="db", name="Database", description=""),
        category=CategoryView(id="update", name="Update"),
        material=None,
        material_text="",
        count=1,
    )
    answer = json.dumps(
        {
            "tasks": [
                {
                    "instruction": "Mark every pending order as paid, please.",
                    "key": {"kind": "db_reference", "operation": "select", "sql": "SELECT 1 AS x"},
                }
            ]
        }
    )
    with pytest.raises(ParseError, match='needs operation "update", not "select"'):
        agent.parse(answer, inputs)
    # The embedded model once wrote only the asker, "The owner of a small business ... asks:".
    cut = answer.replace("Mark every pending order as paid, please.", "A clerk asks:")
    cut = cut.replace('"select", "sql": "SELECT 1 AS x"', '"update", "sql": "UPDATE t SET a = 1"')
    with pytest.raises(ParseError, match="task 1: the instruction ends with a colon and nothing"):
        agent.parse(cut, inputs)


def write_sqlite(path: Path, tables: dict[str, object]) -> Path:
    """The test's tables as a user's SQLite file."""
    import sqlite3

    conn = sqlite3.connect(path)
    for t in tables["tables"]:  # type: ignore[attr-defined]
        cols = ", ".join(f"{c['name']} {c['type']}" for c in t["columns"])
        conn.execute(f"CREATE TABLE {t['name']} ({cols})")
        marks = ", ".join("?" for _ in t["columns"])
        conn.executemany(f"INSERT INTO {t['name']} VALUES ({marks})", t["rows"])
    conn.commit()
    conn.close()
    return path


def test_a_users_sqlite_file_is_the_units_material(tmp_path: Path) -> None:
    """A SQLite file among the seeds becomes one database seed; the db skill uses its tables
    as they are (no table-building call), and the other skills never draw it."""
    from genteach.seeds import SeedReport, iter_seeds

    seeds_dir = tmp_path / "seeds"
    seeds_dir.mkdir()
    write_sqlite(seeds_dir / "bakery.sqlite", TABLES)
    (seeds_dir / "broken.db").write_bytes(b"SQLite format 3\x00" + b"\x01" * 200)
    (seeds_dir / "notes.db").write_bytes(b"not a database at all, just a file called .db\n" * 3)
    report = SeedReport()
    seeds = list(iter_seeds(seeds_dir, report=report))
    assert [(s.kind, s.source) for s in seeds] == [("database", "bakery.sqlite")]
    skipped = {s.file: s.reason for s in report.pending}
    assert skipped["broken.db"].startswith("unreadable database: broken.db cannot be read")
    assert skipped["notes.db"] == "unsupported file type .db"

    teacher = DbTeacher()
    pipe = Pipeline(
        ScriptedModel(teacher, name="scripted-db"),
        taxonomy=TAXONOMY,
        skills=["db"],
        settings=RunSettings(seed=1),
    )
    summary = pipe.run(seeds, tmp_path / "out")
    records = read_records(tmp_path / "out" / "records.jsonl")
    assert summary.records == len(records) > 0 and summary.rejects == 0  # type: ignore[attr-defined]
    assert teacher.calls["tables"] == 0 and teacher.calls["act"] > 0
    assert {r.meta.transformer for r in records} == {"database_file"}
    assert all(r.meta.verification.status == "passed" for r in records)  # type: ignore[union-attr]

    # an AgentInstruct skill takes text and code seeds only: nothing to do for a database
    rc = Pipeline(ScriptedModel([], name="unused"), skills=["rc"])
    assert rc.run(seeds, tmp_path / "rc").units_total == 0  # type: ignore[attr-defined]


def test_writers_see_the_first_rows_of_a_long_table() -> None:
    from genteach.agents.db import SHOWN_ROWS, DatabaseMaterial
    from genteach.prompts import PromptLibrary
    from genteach.runtime.db import Database

    long = {
        "name": "readings",
        "columns": [{"name": "id", "type": "INTEGER"}, {"name": "value", "type": "REAL"}],
        "rows": [[i, i / 2] for i in range(1, 101)],
    }
    material = DatabaseMaterial(database=Database.model_validate({"tables": [long]}))
    text = material.render(PromptLibrary(), "writer")
    assert "Table readings (100 rows)" in text and f"Rows (the first {SHOWN_ROWS}):" in text
    assert "[40, 20.0]" in text and "[41, 20.5]" not in text
