"""genteach.diversity on synthetic runs built here: distinct-n, stems, spread, refinement
deltas, letter balance, shards, and the `genteach diversity` command."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genteach import diversity as div
from genteach.cli import main


def record(
    skill: str,
    sub: str,
    instruction: str,
    response: str | Sequence[str],
    *,
    task: str = "",
    parent: str | None = None,
    round_: int = 0,
    status: str | None = "passed",
    key: dict[str, Any] | None = None,
    order: Sequence[int] = (),
    teacher: str = "gpt-4o-mini",
    usage: tuple[int, int, int] = (100, 20, 1),
    created: str = "2026-01-01T00:00:00+00:00",
) -> dict[str, Any]:
    """One record line as genteach writes it (key as a JSON string)."""
    answers = [response] if isinstance(response, str) else list(response)
    messages = [{"role": "system", "content": ""}, {"role": "user", "content": instruction}]
    for a in answers:
        messages.append({"role": "assistant", "content": a})
    return {
        "id": f"{skill}-{task or instruction[:20]}",
        "messages": messages,
        "meta": {
            "skill": skill,
            "sub_category": sub,
            "unit": f"{skill}/seed{task}",
            "teacher": teacher,
            "task_id": task,
            "parent_task_id": parent,
            "refinement_round": round_,
            "instruction": instruction,
            "key": None if key is None else json.dumps(key),
            "view": {"layout": {"order": list(order), "labels": "upper_paren"}},
            "verification": None if status is None else {"kind": "x", "status": status},
            "usage": dict(zip(("prompt_tokens", "completion_tokens", "calls"), usage, strict=True)),
            "created_at": created,
        },
    }


CHOICE = {"kind": "choice", "correct": ["right"], "distractors": ["w1", "w2", "w3"]}


def sample_records() -> list[dict[str, Any]]:
    """Two skills, three sub-categories, a refinement pair, four MCQs."""
    rows = [
        record("rc", "main_idea", "What is the main idea?", "The idea is X.", task="t1"),
        record(
            "rc", "main_idea", "What is the point?", "1. Read.\n2. Think.\n3. Answer.", task="t2"
        ),
        record("rc", "main_idea", "What is the theme?", "A theme.", task="t3", status="failed"),
        record(
            "rc",
            "refine",
            "What is the theme, in steps?",
            "- one\n- two\n- three\n- four",
            task="t4",
            parent="t3",
            round_=1,
        ),
        record("rc", "refine", "Orphan refinement", "ok", task="t5", parent="gone", round_=1),
        record(
            "tool_use",
            "call_api",
            "Book a table for two",
            ["Calling.", "Done."],
            task="u1",
            status="unchecked",
        ),
    ]
    # MCQs in rc/mcq: correct option (key index 0) shown at positions A, A, C, B.
    for i, order in enumerate(([0, 1, 2, 3], [0, 3, 2, 1], [1, 2, 0, 3], [2, 0, 1, 3])):
        rows.append(
            record(
                "rc",
                "mcq",
                f"Pick one option number {i}",
                "Final answer: (A)",
                task=f"m{i}",
                key=CHOICE,
                order=order,
            )
        )
    return rows


def write_run(
    folder: Path,
    rows: Sequence[dict[str, Any]],
    rejects: Sequence[dict[str, Any]] = (),
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "records.jsonl").open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    with (folder / "rejects.jsonl").open("w", encoding="utf-8") as fh:
        for r in rejects:
            fh.write(json.dumps(r) + "\n")
    return folder


class HashEmbedder:
    """A deterministic fake: a text's vector from its words' hashes (8 dims)."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in div.words(t):
                out[i, sum(map(ord, w)) % 8] += 1.0
        return out


def test_accumulator_matches_the_list_functions() -> None:
    texts = ["The cat sat on the mat", "the cat ran!", "A dog", "", "the cat sat again"]
    acc = div.TextAccumulator()
    for t in texts:
        acc.add(t)
    got = acc.result()
    assert got.texts == 5
    assert (got.distinct_1, got.distinct_2, got.distinct_3) == tuple(
        div.distinct_n(texts, n) for n in (1, 2, 3)
    )
    assert got.stems == div.stem_stats(texts)


def test_steps_counts_listed_lines_else_sentences() -> None:
    assert div.steps("1. Read.\n2) Think.\n(3) Answer.") == 3
    assert div.steps("Intro.\n- one\n* two\n• three\nStep 4: done") == 4
    assert div.steps("First this. Then that! Why? Because.") == 4
    assert div.steps("One line\nanother line") == 2
    assert div.steps("Version 1.5 is out. It is fast.") == 2  # 1.5 is no sentence end
    assert div.steps("") == 0


@pytest.mark.parametrize(
    ("x", "df", "p"),
    [(3.841, 1, 0.05), (5.991, 2, 0.05), (7.815, 3, 0.05), (9.488, 4, 0.05), (0.0, 3, 1.0)],
)
def test_chi2_sf_known_values(x: float, df: int, p: float) -> None:
    assert div.chi2_sf(x, df) == pytest.approx(p, abs=5e-4)


def test_chi2_sf_refuses_df_zero() -> None:
    with pytest.raises(ValueError, match="df must be at least 1"):
        div.chi2_sf(1.0, 0)


def test_spread_of_orthogonal_and_identical_vectors() -> None:
    assert div.spread(np.eye(3)) == pytest.approx(1.0)
    assert div.spread(np.ones((4, 5))) == pytest.approx(0.0)
    assert div.spread(np.ones((1, 5))) is None


def test_measure_scopes_refinement_and_letters(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", sample_records())
    rep = div.measure([run])
    assert rep.records == 10
    names = [s.name for s in rep.scopes]
    assert names == [
        "overall",
        "rc",
        "rc/main_idea",
        "rc/mcq",
        "rc/refine",
        "tool_use",
        "tool_use/call_api",
    ]
    scope = {s.name: s for s in rep.scopes}
    main_idea = scope["rc/main_idea"]
    texts = ["What is the main idea?", "What is the point?", "What is the theme?"]
    assert main_idea.instructions.distinct_1 == div.distinct_n(texts, 1)
    assert main_idea.instructions.stems["top"] == [["what is the", 3]]
    assert main_idea.instructions.stems["top1_share"] == 1.0
    # A multi-turn response: each assistant turn a text, the first one gives the stem.
    tool = scope["tool_use"].responses
    assert tool.texts == 1 and tool.stems["top"] == [["calling", 1]]
    assert tool.distinct_1 == 1.0
    assert scope["overall"].embedding_spread is None and rep.embedder is None

    rc = {d.skill: d for d in rep.refinement}["rc"]
    assert (rc.originals, rc.refined, rc.pairs) == (7, 2, 1)
    assert (rc.words_original, rc.words_refined) == (2.0, 4.0)
    assert (rc.steps_original, rc.steps_refined) == (1.0, 4.0)
    assert (rc.verified_original, rc.verified_refined) == (0.0, 1.0)

    (bal,) = rep.letters
    assert bal.skill == "rc" and bal.questions == 4
    assert bal.counts == {"A": 2, "B": 1, "C": 1, "D": 0}
    assert bal.expected == {"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0}
    assert bal.chi2 == pytest.approx(2.0) and bal.df == 3
    assert bal.p_value == pytest.approx(div.chi2_sf(2.0, 3))
    assert bal.max_deviation == pytest.approx(0.25)
    md = div.markdown(rep)
    assert "| rc/mcq | 4 |" in md and "A:2/1.00" in md


def test_correct_positions_reads_key_and_layout() -> None:
    meta = {"key": json.dumps(CHOICE), "view": {"layout": {"order": [3, 2, 0, 1]}}}
    assert div.correct_positions(meta) == ([2], 4)
    two = {**CHOICE, "correct": ["r1", "r2"]}
    meta = {"key": two, "view": {"layout": {"order": [4, 1, 2, 0, 3]}}}
    assert div.correct_positions(meta) == ([1, 3], 5)
    assert div.correct_positions({"key": json.dumps({"kind": "exact"})}) is None
    assert div.correct_positions({"key": None}) is None
    bad = {"key": CHOICE, "view": {"layout": {"order": [0, 0, 1, 2]}}}
    assert div.correct_positions(bad) is None


def test_embedding_spread_is_capped_and_seeded(tmp_path: Path) -> None:
    rows = [
        record("rc", "a", f"question {i} about topic {i % 7}", "x", task=f"t{i}") for i in range(40)
    ]
    run = write_run(tmp_path / "run", rows)
    emb = HashEmbedder()
    rep = div.measure([run], embedder=emb, embed_cap=10)
    again = div.measure([run], embedder=HashEmbedder(), embed_cap=10)
    overall = rep.scopes[0]
    assert overall.embedded == 10 and overall.embedding_spread is not None
    assert 0.0 <= overall.embedding_spread <= 1.0
    assert [s.embedding_spread for s in rep.scopes] == [s.embedding_spread for s in again.scopes]
    assert rep.embedder == "fake" and len(emb.calls) == 1 and emb.calls[0] <= 30


def test_an_embedder_without_its_package_leaves_a_note(tmp_path: Path) -> None:
    class Missing:
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            raise ImportError("needs sentence-transformers")

    run = write_run(tmp_path / "run", sample_records())
    rep = div.measure([run], embedder=Missing())
    assert rep.embedder is None
    assert rep.embedding_note == "embedding spread not measured: needs sentence-transformers"


def test_shards_are_read_and_non_runs_refused(tmp_path: Path) -> None:
    rows = sample_records()
    write_run(tmp_path / "run" / "shards" / "shard-00000", rows[:4])
    write_run(tmp_path / "run" / "shards" / "shard-00001", rows[4:])
    assert div.measure([tmp_path / "run"]).records == 10
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        div.measure([tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        div.measure([tmp_path / "nowhere"])


def test_the_command_pools_runs_and_writes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", sample_records()[:5])
    b = write_run(tmp_path / "b", sample_records()[5:])
    out_json, out_md = tmp_path / "d.json", tmp_path / "d.md"
    code = main(
        ["diversity", str(a), str(b), "--no-embed", "--json", str(out_json), "--md", str(out_md)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "10 records in" in printed and "--no-embed" in printed
    data = json.loads(out_json.read_text())
    assert data["records"] == 10 and data["scopes"][0]["skill"] == "overall"
    assert out_md.read_text() == printed
