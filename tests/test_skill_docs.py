"""docs/skills/ is written by ``genteach taxonomy docs`` from the taxonomy and example
records: one example per ready skill made here by the scripted teacher, and the embedded
model's records kept in docs/skills/examples/embedded.jsonl (from real runs, see
docs/benchmarks/embedded_default.md). The pages must be what the generator writes today, so
they never drift from the taxonomy; after a change, rewrite them with

    python -m pytest tests/test_skill_docs.py --update-golden
"""

from __future__ import annotations

import shutil
from pathlib import Path

from genteach import Pipeline, RunSettings, ScriptedModel, load_seeds, load_taxonomy, read_records
from genteach.cli import main
from genteach.records import Record
from genteach.skill_docs import pick_examples, render_skill_page, write_skill_docs
from scripted_teacher import Teacher

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "skills"
EMBEDDED = DOCS / "examples" / "embedded.jsonl"


def scripted_examples(tmp: Path) -> list[Record]:
    """The first record of each ready skill from the scripted teacher (deterministic)."""
    seeds = load_seeds(ROOT / "examples" / "seeds")
    records: list[Record] = []
    for sid in load_taxonomy().ready_skills():
        teacher = ScriptedModel(Teacher(rotate_kinds=True), name="scripted-teacher (tests)")
        pipe = Pipeline(teacher, skills=[sid], settings=RunSettings(seed=0, limit=1))
        pipe.run(seeds, tmp / sid)
        records += read_records(tmp / sid / "records.jsonl")[:1]
    return records


def test_skill_pages_are_what_the_generator_writes(tmp_path: Path, update_golden: bool) -> None:
    records = scripted_examples(tmp_path / "runs")
    assert {r.meta.skill for r in records} == set(load_taxonomy().ready_skills())
    if EMBEDDED.exists():
        records += read_records(EMBEDDED)
    written = write_skill_docs(load_taxonomy(), tmp_path / "pages", records)
    if update_golden:
        for path in written:
            shutil.copy(path, DOCS / path.name)
    stale = [p.name for p in written if not (DOCS / p.name).exists()]
    stale += [p.name for p in written if (DOCS / p.name).read_text() != p.read_text()]
    assert not stale, f"{stale}: rerun with --update-golden (see the module docstring)"


def test_a_page_shows_the_skill_and_labelled_examples(tmp_path: Path) -> None:
    tax = load_taxonomy()
    (record,) = scripted_examples(tmp_path)[:1]
    page = render_skill_page(tax.skills[record.meta.skill], [record])
    assert page.startswith(f"# {tax.skills[record.meta.skill].name}")
    assert "## Task types" in page and "## Examples" in page
    assert "Teacher **scripted-teacher (tests)**" in page and "answer checked: passed" in page
    # every skill is ready now: a copy marked planned shows how a planned one reads
    planned = tax.skills["rag"].model_copy(update={"status": "planned"})
    assert "**Planned**" in render_skill_page(planned) and "## Examples" not in render_skill_page(
        planned
    )
    # one example per skill and teacher
    assert pick_examples([record, record]) == {record.meta.skill: [record]}


def test_the_docs_command(tmp_path: Path, capsys: object) -> None:
    assert main(["taxonomy", "docs", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "README.md").exists() and (tmp_path / "mcq.md").exists()
    assert main(["taxonomy", "docs", "--out", str(tmp_path), "--examples", "nope.jsonl"]) == 2
