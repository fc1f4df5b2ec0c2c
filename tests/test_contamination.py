"""`genteach contamination`: Llama-2's n-gram contamination check, through an index."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pytest

from genteach.contamination import (
    ContaminationConfig,
    NgramIndex,
    TestItem,
    TrainingRow,
    WordTokenizer,
    add_arguments,
    drop_dirty,
    find_contamination,
    message_text,
    pigeonhole_keys,
    read_benchmark,
    read_training,
    run,
    tokenizer_by_name,
    write_report,
)
from genteach.records import JsonlWriter, Record, RecordMeta

VOCAB = [f"w{i}" for i in range(5000)]


def words(rng: random.Random, k: int) -> list[str]:
    return [rng.choice(VOCAB) for _ in range(k)]


def substitute(tokens: list[str], positions: list[int]) -> list[str]:
    out = list(tokens)
    for p in positions:
        out[p] = f"x{p}"  # never in VOCAB: a real mismatch
    return out


def planted() -> tuple[list[TrainingRow], list[TestItem], dict[str, str]]:
    """Test items, training rows with planted overlaps, and the expected verdicts."""
    rng = random.Random(7)
    base = {name: words(rng, 40) for name in ("exact", "s1", "s2", "s3", "s4", "s5", "near4")}
    long = {name: words(rng, 100) for name in ("partial", "between", "untouched")}
    rows = [
        TrainingRow("r-exact", " ".join(base["exact"])),
        TrainingRow("r-s1", " ".join(substitute(base["s1"], [20]))),
        TrainingRow("r-s2", " ".join(substitute(base["s2"], [5, 25]))),
        TrainingRow("r-s3", " ".join(substitute(base["s3"], [3, 17, 33]))),
        TrainingRow("r-s4", " ".join(substitute(base["s4"], [2, 12, 22, 32]))),
        # 4 substitutions inside one gram: that gram (and its neighbours) still match.
        TrainingRow("r-near4", " ".join(substitute(base["near4"], [10, 12, 14, 16]))),
        # Every other token substituted: every 10-gram has 5 mismatches.
        TrainingRow("r-s5", " ".join(substitute(base["s5"], list(range(0, 40, 2))))),
        # 10 of 100 tokens copied inside other text: grams overlapping the copy by 6 or more
        # tokens match too (4 mismatches allowed), so 4 tokens each side are covered: 18%.
        TrainingRow("r-partial", " ".join(words(rng, 30) + long["partial"][40:50] + words(rng, 9))),
        # 50 of 100 tokens, at the item's start: 50 + 4 covered, in-between.
        TrainingRow("r-between", " ".join(long["between"][:50] + words(rng, 20))),
        TrainingRow("r-short", "tiny item here"),
    ]
    rows += [TrainingRow(f"filler{i}", " ".join(words(rng, 60))) for i in range(50)]
    items = [TestItem("bench", k, " ".join(v)) for k, v in (base | long).items()]
    items.append(TestItem("bench", "short", "tiny item here"))
    expected = {
        "exact": "dirty",
        "s1": "dirty",
        "s2": "dirty",
        "s3": "dirty",
        "s4": "dirty",
        "near4": "dirty",
        "s5": "clean",
        "partial": "clean",
        "between": "in-between",
        "untouched": "clean",
        "short": "too short",
    }
    return rows, items, expected


@pytest.mark.parametrize("key_tokens", [None, 3, 4])
def test_planted_overlaps_are_found(key_tokens: int | None) -> None:
    rows, items, expected = planted()
    report = find_contamination(
        rows, items, WordTokenizer(), ContaminationConfig(key_tokens=key_tokens)
    )
    got = {r.id: r for r in report.items}
    assert {k: r.verdict for k, r in got.items()} == expected
    for name in ("exact", "s1", "s2", "s3", "s4", "near4"):
        assert got[name].rate == 1.0 and got[name].rows == [f"r-{name}"]
    assert got["s5"].rate == 0.0 and got["s5"].rows == []
    assert got["partial"].rate == 0.18 and got["partial"].rows == ["r-partial"]
    assert got["between"].rate == 0.54 and got["between"].rows == ["r-between"]
    assert got["untouched"].rate == 0.0
    assert got["short"].rate is None and got["short"].tokens == 3
    [b] = report.benchmarks
    assert (b.items, b.scored, b.too_short, b.dirty, b.in_between, b.clean) == (11, 10, 1, 6, 1, 3)
    assert b.mean_rate == pytest.approx((6 * 1.0 + 0.18 + 0.54) / 10)
    assert {r.id for r in report.rows} == {
        f"r-{k}" for k in expected if k not in ("s5", "short", "untouched")
    }
    assert {rows[i].id for i in report.culprits} == {
        "r-exact",
        "r-s1",
        "r-s2",
        "r-s3",
        "r-s4",
        "r-near4",
    }


def test_five_mismatches_in_a_row_fail_only_the_grams_holding_all_five() -> None:
    # Tokens 10..14 substituted: only the grams starting at 5..10 hold all five; grams 0..4
    # (covering 0..13) and 11..30 (covering 11..39) match, so every token is covered.
    rng = random.Random(3)
    item = words(rng, 40)
    row = substitute(item, [10, 11, 12, 13, 14])
    report = find_contamination(
        [TrainingRow("r", " ".join(row))], [TestItem("b", "i", " ".join(item))], WordTokenizer()
    )
    [r] = report.items
    assert r.covered == 40 and r.rows == ["r"]
    # Ten in a row leave a hole: a gram starting at s holds s of tokens 10..19 for s <= 10
    # and 20 - s for s >= 10, so grams 0..4 (covering 0..13) and 16..30 (16..39) match:
    # tokens 14 and 15 are not covered.
    row = substitute(item, list(range(10, 20)))
    report = find_contamination(
        [TrainingRow("r", " ".join(row))], [TestItem("b", "i", " ".join(item))], WordTokenizer()
    )
    assert report.items[0].covered == 38


def brute_force(
    train: list[list[int]], test: list[list[int]], n: int, k: int
) -> tuple[list[int], set[tuple[int, int]]]:
    covered = []
    pairs = set()
    for i, t in enumerate(test):
        cov = [False] * len(t)
        for q in range(len(t) - n + 1):
            for r, s in enumerate(train):
                for p in range(len(s) - n + 1):
                    if sum(a != b for a, b in zip(s[p : p + n], t[q : q + n], strict=True)) <= k:
                        cov[q : q + n] = [True] * n
                        pairs.add((r, i))
                        break
        covered.append(sum(cov))
    return covered, pairs


@pytest.mark.parametrize(
    ("n", "k", "key_tokens"),
    [(10, 4, None), (10, 4, 3), (10, 4, 4), (6, 2, None), (5, 0, None), (8, 3, 2)],
)
def test_index_agrees_with_a_pairwise_scan(n: int, k: int, key_tokens: int | None) -> None:
    # Three symbols: many near matches, repeated grams, rows shorter than n.
    rng = random.Random(n * 100 + k)
    train = [[rng.randrange(3) for _ in range(rng.randrange(3, 30))] for _ in range(25)]
    test = [[rng.randrange(3) for _ in range(rng.randrange(3, 25))] for _ in range(12)]
    test.append(list(train[0][:20]))
    index = NgramIndex(test, n=n, max_mismatches=k, key_tokens=key_tokens)
    rows, grams = index.match(train)
    covered, pairs = brute_force(train, test, n, k)
    got_pairs = set()
    for r, g in zip(rows.tolist(), grams.tolist(), strict=True):
        for pos in (index.gram_id == g).nonzero()[0].tolist():
            got_pairs.add((r, int(index.gram_item[pos])))
    assert got_pairs == pairs
    items = [TestItem("b", str(i), " ".join(map(str, t))) for i, t in enumerate(test)]
    tr = [TrainingRow(str(i), " ".join(map(str, t))) for i, t in enumerate(train)]
    report = find_contamination(
        tr,
        items,
        WordTokenizer(),
        ContaminationConfig(n=n, max_mismatches=k, key_tokens=key_tokens, chunk_tokens=50),
    )
    assert [r.covered for r in report.items] == covered


@pytest.mark.parametrize(
    ("n", "k", "s"), [(10, 4, 2), (10, 4, 3), (10, 4, 4), (13, 3, 5), (10, 2, 4)]
)
def test_key_coverings_are_checked(n: int, k: int, s: int) -> None:
    import itertools

    keys = pigeonhole_keys(n, k, s)
    assert all(len(key) == s for key in keys)
    for agree in itertools.combinations(range(n), n - k):
        assert any(set(key) <= set(agree) for key in keys)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_mismatches must be from 0 to n - 1"):
        ContaminationConfig(n=10, max_mismatches=10)
    with pytest.raises(ValueError, match="clean_below <= dirty_above"):
        ContaminationConfig(dirty_above=0.1, clean_below=0.5)
    with pytest.raises(ValueError, match="key tokens must be from 1 to"):
        pigeonhole_keys(10, 4, 7)


def test_default_tokenizer_is_cl100k_offline() -> None:
    tok = tokenizer_by_name(None)
    assert tok.name == "cl100k_base" and not tok.approximate
    text = (
        "The committee met on Tuesday to discuss the new rules for the city's parks and libraries."
    )
    report = find_contamination(
        [TrainingRow("r", "Intro.\n" + text)], [TestItem("b", "i", text)], tok
    )
    assert report.items[0].verdict == "dirty" and report.tokenizer == "cl100k_base"


def test_drop_dirty_removes_exactly_the_culprits(tmp_path: Path) -> None:
    rows, items, _ = planted()
    src = tmp_path / "train.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": r.id, "messages": [{"role": "user", "content": r.text}]}) + "\n"
            for r in rows
        )
    )
    report = find_contamination(read_training([src]), items, WordTokenizer())
    kept, dropped = drop_dirty([src], report, tmp_path / "clean")
    culprits = {"r-exact", "r-s1", "r-s2", "r-s3", "r-s4", "r-near4"}
    assert (kept, dropped) == (len(rows) - 6, 6)
    kept_ids = [
        json.loads(x)["id"] for x in (tmp_path / "clean/records.jsonl").read_text().splitlines()
    ]
    assert kept_ids == [r.id for r in rows if r.id not in culprits]
    gone = [json.loads(x) for x in (tmp_path / "clean/dropped.jsonl").read_text().splitlines()]
    assert {d["id"] for d in gone} == culprits
    assert gone[0]["dirty_items"] == [{"benchmark": "bench", "id": "exact"}]
    # The cleaned set is clean.
    again = find_contamination(read_training([tmp_path / "clean"]), items, WordTokenizer())
    assert not again.culprits
    with pytest.raises(ValueError, match="exists"):
        drop_dirty([src], report, tmp_path / "clean")


def genteach_folder(folder: Path, texts: list[tuple[str, str]]) -> Path:
    with JsonlWriter(folder / "records.jsonl") as w:
        for q, a in texts:
            messages = [
                {"role": "system", "content": "You are helpful and precise in every answer."},
                {"role": "user", "content": q},
                {"role": "assistant", "content": a},
            ]
            meta = RecordMeta(
                skill="rc",
                sub_category="x",
                seed_id="s",
                unit="u",
                agents=["a"],
                teacher="t",
                usage={},
                task_id="t",
            )
            w.write(Record(id=Record.make_id(messages), messages=messages, meta=meta))  # type: ignore[arg-type]
    return folder


QA = [
    ("What river runs through the old city of Prague and under its bridges?", "The Vltava river."),
    ("Which gas do plants take in from the air to make sugar in sunlight?", "Carbon dioxide, CO2."),
]


def test_reads_every_training_format(tmp_path: Path) -> None:
    import datasets

    folder = genteach_folder(tmp_path / "run", QA)
    [first, _] = list(read_training([folder]))
    assert first.text == QA[0][0] + "\n" + QA[0][1] and first.source.endswith("records.jsonl")
    assert next(r.text for r in read_training([folder], roles=["system"])).startswith("You are")
    rows = [
        {
            "messages": json.dumps(
                [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            )
        }
        for q, a in QA
    ]
    jl = tmp_path / "plain.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [r.id for r in read_training([jl])] == [f"{jl}:1", f"{jl}:2"]
    listed = [
        {
            "id": f"p{i}",
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
        }
        for i, (q, a) in enumerate(QA)
    ]
    ds = datasets.Dataset.from_list(listed)
    ds.to_parquet(str(tmp_path / "t.parquet"))
    (tmp_path / "export/data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "export/data/train-00000-of-00001.parquet"))
    ds.save_to_disk(str(tmp_path / "ds"))
    datasets.DatasetDict({"a": ds, "b": ds}).save_to_disk(str(tmp_path / "dsd"))
    want = [QA[0][0] + "\n" + QA[0][1], QA[1][0] + "\n" + QA[1][1]]
    for path in ("t.parquet", "export", "ds"):
        got = list(read_training([tmp_path / path]))
        assert [r.text for r in got] == want and [r.id for r in got] == ["p0", "p1"]
    assert len(list(read_training([tmp_path / "dsd"]))) == 4
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no messages"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: no 'messages' column"):
        list(read_training([bad]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(read_training([tmp_path / "missing"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a genteach output folder"):
        list(read_training([tmp_path / "empty"]))


def test_message_text_takes_roles_and_json() -> None:
    turns = [
        {"role": "user", "content": "a"},
        {"role": "tool", "content": "b"},
        {"role": "assistant", "content": None},
    ]
    assert message_text(turns) == "a\n"
    assert message_text(json.dumps(turns), roles=["tool"]) == "b"
    with pytest.raises(ValueError, match="not a list of turns"):
        message_text({"role": "user"})


def test_reads_every_benchmark_format(tmp_path: Path) -> None:
    import datasets

    rows = [
        {
            "id": 11,
            "question": "Q one",
            "answer": "A one",
            "meta": {"hint": "h1"},
            "choices": ["x", "y"],
        },
        {
            "id": 12,
            "question": "Q two",
            "answer": "A two",
            "meta": {"hint": "h2"},
            "choices": ["z"],
        },
    ]
    jl = tmp_path / "quiz.test.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = datasets.Dataset.from_list(rows)
    ds.to_parquet(str(tmp_path / "quiz.parquet"))
    ds.save_to_disk(str(tmp_path / "quizds"))
    for path in (jl, tmp_path / "quiz.parquet", tmp_path / "quizds"):
        items = read_benchmark(path, ["question", "answer", "meta.hint", "choices"], name="quiz")
        assert [(i.benchmark, i.id, i.text) for i in items] == [
            ("quiz", "11", "Q one\nA one\nh1\nx\ny"),
            ("quiz", "12", "Q two\nA two\nh2\nz"),
        ]
    assert read_benchmark(jl, ["question"])[0].benchmark == "quiz"
    assert [i.id for i in read_benchmark(jl, ["question"], id_field="nope")] == ["0", "1"]
    with pytest.raises(ValueError, match=r"quiz.test.jsonl:1: no field 'query'"):
        read_benchmark(jl, ["query"])


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="genteach contamination")
    add_arguments(p)
    return p.parse_args(argv)


def test_command_writes_the_report_and_the_clean_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = genteach_folder(tmp_path / "run", QA)
    bench = tmp_path / "geo.jsonl"
    bench.write_text(
        json.dumps({"id": "g1", "question": QA[0][0], "answer": QA[0][1]})
        + "\n"
        + json.dumps(
            {
                "id": "g2",
                "question": "How many moons does Mars have, and what are they called?",
                "answer": "Two: Phobos and Deimos.",
            }
        )
        + "\n"
    )
    args = parse(
        [
            str(folder),
            "--test",
            f"geography={bench}",
            "--test-fields",
            "question,answer",
            "--out",
            str(tmp_path / "rep"),
            "--drop-dirty",
            str(tmp_path / "clean"),
        ]
    )
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "| geography | 50.00% | 1/2 | 0 | 1 | 0 |" in out
    assert "kept 1 rows, dropped 1" in out
    items = [json.loads(x) for x in (tmp_path / "rep/items.jsonl").read_text().splitlines()]
    assert [(i["id"], i["verdict"], i["rate"]) for i in items] == [
        ("g1", "dirty", 1.0),
        ("g2", "clean", 0.0),
    ]
    [row] = [json.loads(x) for x in (tmp_path / "rep/rows.jsonl").read_text().splitlines()]
    assert row["dirty_items"] == [{"benchmark": "geography", "id": "g1"}]
    assert items[0]["rows"] == [row["id"]]
    summary = json.loads((tmp_path / "rep/summary.json").read_text())
    assert summary["culprit_rows"] == 1 and summary["benchmarks"][0]["dirty"] == 1
    assert "# Test-set contamination" in (tmp_path / "rep/summary.md").read_text()
    kept = [json.loads(x) for x in (tmp_path / "clean/records.jsonl").read_text().splitlines()]
    assert [Record.model_validate(k).messages[1]["content"] for k in kept] == [QA[1][0]]
    args = parse(
        [
            str(folder),
            "--test",
            str(bench),
            "--test",
            f"{bench}",
            "--test-fields",
            "question",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    with pytest.raises(ValueError, match="a second benchmark named 'geo'"):
        run(args)


def test_report_files_refuse_a_file_as_folder(tmp_path: Path) -> None:
    rows, items, _ = planted()
    report = find_contamination(rows[:2], items[:2], WordTokenizer())
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        write_report(report, tmp_path / "f")


def synthetic(n_rows: int, n_items: int, seed: int = 1) -> tuple[list[TrainingRow], list[TestItem]]:
    rng = random.Random(seed)
    rows = [TrainingRow(f"r{i}", " ".join(words(rng, 60))) for i in range(n_rows)]
    items = [TestItem("syn", f"t{i}", " ".join(words(rng, 40))) for i in range(n_items)]
    for j in range(5):  # plant item j in row 1000 * j, with j substitutions
        t = items[j].text.split()
        rows[1000 * j] = TrainingRow(
            rows[1000 * j].id, " ".join(substitute(t, [4 + 8 * x for x in range(j)]))
        )
    return rows, items


def test_ten_thousand_rows() -> None:
    rows, items = synthetic(10_000, 200)
    report = find_contamination(
        rows, items, WordTokenizer(), ContaminationConfig(chunk_tokens=100_000)
    )
    assert report.training_rows == 10_000
    dirty = [(r.id, r.rows) for r in report.items if r.verdict == "dirty"]
    assert dirty == [(f"t{j}", [f"r{1000 * j}"]) for j in range(5)]


def test_genteach_contamination_runs_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from genteach.cli import main

    folder = genteach_folder(tmp_path / "run", QA)
    bench = tmp_path / "geo.jsonl"
    bench.write_text(json.dumps({"id": "g1", "question": QA[0][0], "answer": QA[0][1]}) + "\n")
    argv = ["contamination", str(folder), "--test", f"geo={bench}", "--test-fields"]
    assert main([*argv, "question,answer", "--out", str(tmp_path / "rep")]) == 0
    assert "geo" in capsys.readouterr().out
    assert (tmp_path / "rep" / "summary.json").exists()
    assert main([*argv, "nope", "--out", str(tmp_path / "rep2")]) == 2
