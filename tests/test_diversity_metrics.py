"""The metric functions of benchmarks/diversity_bench.py on small hand-made inputs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from genteach.cache import ResponseCache
from genteach.models.base import Completion

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "diversity_bench.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("diversity_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_words_lowercase_drop_punctuation_and_split_cjk() -> None:
    assert bench.words("The cat's HAT, (2 items)!") == ["the", "cat", "s", "hat", "2", "items"]
    assert bench.words("以下是 a_b test") == ["以", "下", "是", "a", "b", "test"]


def test_distinct_n_counts_within_each_text() -> None:
    texts = ["The cat sat", "the cat ran!", "A dog"]
    assert bench.distinct_n(texts, 1) == 6 / 8
    assert bench.distinct_n(texts, 2) == 4 / 5
    # n-grams do not run from one text into the next: only two trigrams exist.
    assert bench.distinct_n(texts, 3) == 1.0
    assert bench.distinct_n(["one two"], 3) is None
    assert bench.distinct_n([], 1) is None


def test_stem_stats_shares_and_top_five() -> None:
    texts = [
        "What is X?",
        "what is, X too",
        "What is Y",
        "How do I",
        "Name three things",
        "",
        "Why? Because. Yes!",
        "Zebra crossing rules",
        "Apple pie recipe",
    ]
    stats = bench.stem_stats(texts)
    assert stats == {
        "n": 8,
        "distinct": 7,
        "distinct_ratio": 7 / 8,
        "top1_share": 2 / 8,
        "top5_share": 6 / 8,
        "top": [
            ["what is x", 2],
            ["apple pie recipe", 1],
            ["how do i", 1],
            ["name three things", 1],
            ["what is y", 1],
        ],
    }
    assert bench.stem_stats([])["top1_share"] is None


def test_instruction_strings_any_key_at_any_depth() -> None:
    answer = {
        "tasks": [{"instruction": "A", "answer": "x"}, {"request": " B "}],
        "meta": {"stem": "C", "question": "", "other": "D"},
        "question": {"stem": "E"},
        "instruction": 3,
    }
    assert list(bench.instruction_strings(answer)) == ["A", "B", "C", "E"]


def _write_run(out: Path) -> None:
    out.mkdir()
    records = [
        ("rc", None, "Passage.\n\nQuestion: Which claim is weakest?"),
        ("rc", "", "Which claim is weakest? Read: passage."),
        ("tool_use", "You call APIs.", "Book a table for two"),
        ("tool_use", "You call APIs.", "Book a table for three"),
    ]
    with (out / "records.jsonl").open("w") as fh:
        for skill, system, user in records:
            msgs = [] if system is None else [{"role": "system", "content": system}]
            msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": "ok"}]
            fh.write(json.dumps({"id": user, "messages": msgs, "meta": {"skill": skill}}) + "\n")
    (out / "rejects.jsonl").write_text(json.dumps({"skill": "rc", "unit": "rc/x"}) + "\n")
    cache = ResponseCache(out / "cache.sqlite")
    answers = [
        {"tasks": [{"instruction": "Which claim is weakest?"}]},
        {"tasks": [{"request": "Book a table for two"}, {"request": "Book a table for three"}]},
        {"edits": [{"instruction": "Never shown to the student"}]},
        "not JSON at all",
    ]
    for i, a in enumerate(answers):
        cache.put(f"k{i}", Completion(text=a if isinstance(a, str) else json.dumps(a)))
    cache.close()


def test_measure_a_run_folder(tmp_path: Path) -> None:
    _write_run(tmp_path / "run")
    result = bench.measure([tmp_path / "run"])
    assert (result["records"], result["rejects"]) == (4, 1)
    assert result["cache"] == {
        "files": 1,
        "answers": 4,
        "json_objects": 3,
        "instructions": 4,
        "instructions_not_in_a_record": 1,
    }
    overall, rc, tool = (result["scopes"][k] for k in ("overall", "rc", "tool_use"))
    assert overall["instructions"]["n"] == 4
    assert rc["instructions"]["n"] == 1
    assert tool["instructions"]["stems"]["top"] == [["book a table", 2]]
    assert tool["instructions"]["distinct_1"] == 6 / 10
    assert rc["system"] == {"empty_or_absent_share": 1.0, "distinct": 0, "top1_share": None}
    assert tool["system"] == {"empty_or_absent_share": 0.0, "distinct": 1, "top1_share": 1.0}
    assert overall["system"]["empty_or_absent_share"] == 0.5
    assert rc["student"]["stems"]["top1_share"] == 0.5
    table = bench.markdown(result)
    assert "| tool_use | 2 | 0.600 |" in table
    assert "- tool_use, instructions: `book a table` 2" in table


def test_measure_refuses_a_folder_without_run_files(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not a run folder"):
        bench.measure([tmp_path])


def test_sampled_stats_compare_sets_at_one_size() -> None:
    texts = ["what is the toll", "what is the date", "name the river", "list the bridges"]
    whole = bench.sampled_stats(texts, 4)  # the whole set: one draw, the plain figures
    assert whole["draws"] == 1
    assert whole["distinct_1"] == bench.distinct_n(texts, 1)
    assert whole["stems_distinct_ratio"] == bench.stem_stats(texts)["distinct_ratio"]
    pairs = bench.sampled_stats(texts, 2, draws=300)
    assert pairs == bench.sampled_stats(texts, 2, draws=300)  # seeded
    # two texts repeat fewer words than four: distinct-1 rises as the set shrinks
    assert pairs["distinct_1"] > whole["distinct_1"]
    # both "what is the ..." in a pair (1 pair in 6) share a stem: 1 - 0.5/6 distinct
    assert pairs["stems_distinct_ratio"] == pytest.approx(1 - 0.5 / 6, abs=0.03)
    assert "at_sample" in bench.text_stats(texts, 2) and "at_sample" not in bench.text_stats(texts)
