"""The run's BM25 seed index is built only when a unit to run needs it, and quietly.

Only the RAG skill's documents stage reads the index (:mod:`genteach.retrieval`): a run
whose units are all of other skills, or whose ``limit`` leaves out every RAG unit, builds
none (no ``OUT/index`` folder). bm25s logs nothing below WARNING while it builds one.
What this does not show: how long an index takes (benchmarks measure that).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel
from genteach.pipeline import INDEX_DIR
from genteach.records import Seed
from genteach.retrieval import SeedIndex
from scripted_teacher import PASSAGE, Teacher

OVERRIDES = {"suggestions": 1, "tasks_per_type": 1}


def seeds() -> list[Seed]:
    return [
        Seed.from_text(f"{PASSAGE}\n\nNote {i}: the {topic} counts were taken again.")
        for i, topic in enumerate(["harbour", "orchard", "glacier"])
    ]


def pipeline(skills: list[str], limit: int | None = None) -> Pipeline:
    settings = RunSettings(seed=1, limit=limit, overrides=dict(OVERRIDES))
    return Pipeline(ScriptedModel(Teacher(), name="scripted"), skills=skills, settings=settings)


def test_a_run_of_skills_that_need_no_index_builds_none(tmp_path: Path) -> None:
    pipe = pipeline(["rc"])
    assert pipe.index_skills() == set() and not pipe.needs_index()
    summary = pipe.run(seeds(), tmp_path / "out")
    assert summary.units_done == 3
    assert not (tmp_path / "out" / INDEX_DIR).exists()


def test_a_selected_rag_skill_without_a_unit_in_the_run_builds_none(tmp_path: Path) -> None:
    pipe = pipeline(["rc", "rag"], limit=1)  # the first unit is rc's
    assert pipe.index_skills() == {"rag"}
    assert [s.id for s, _ in pipe.units(seeds())] == ["rc"]
    pipe.run(seeds(), tmp_path / "out")
    assert not (tmp_path / "out" / INDEX_DIR).exists()


def test_a_rag_unit_gets_the_index(tmp_path: Path) -> None:
    pipe = pipeline(["rc", "rag"], limit=2)  # rc, then rag on the first seed
    assert [s.id for s, _ in pipe.units(seeds())] == ["rc", "rag"]
    pipe.run(seeds(), tmp_path / "out")
    assert (tmp_path / "out" / INDEX_DIR / "index.json").is_file()


def test_bm25s_says_nothing_below_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    index = SeedIndex.build(seeds())
    assert index.chunks
    assert [r.getMessage() for r in caplog.records if r.name.startswith("bm25s")] == []
