"""Seeds from folders, files, JSON Lines, parquet and datasets; chunking; the skip report."""

from __future__ import annotations

import itertools
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genteach.seeds import (
    SeedReport,
    SeedSourceError,
    Skip,
    chunk_text,
    iter_seeds,
    load_seeds,
    require_seeds,
)
from genteach.tokens import tokenizer_for

PROSE = "The harbour tunnel opened in May after six years of work under the bay. "
CODE = '''def add(a, b):
    """Add two numbers and return the sum of both of them."""
    return a + b


def sub(a, b):
    """Subtract b from a and return what is left over afterwards."""
    return a - b
'''
CJK = "人工知能は計算機科学の一分野であり人間の知的能力をコンピュータ上で実現する様々な技術を指す"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach a host other than this one fails the test."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo
    local = {"127.0.0.1", "::1", "localhost"}

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in local:
            raise AssertionError(f"test tried to reach {address}")
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in local and host is not None:
            raise AssertionError(f"test tried to resolve {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- folders and files -------------------------------------------------------------------


def test_folder_kinds_languages_and_every_file_skip_reason(tmp_path: Path) -> None:
    d = tmp_path / "seeds"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text(PROSE * 5)
    (d / "sub" / "tool.py").write_text(CODE)
    (d / "copy.md").write_text(PROSE * 5)  # same text as a.txt
    (d / "short.txt").write_text("Too short.")
    (d / "empty.txt").write_text("  \n")
    (d / "blob.txt").write_bytes(b"\x00\x01binary" * 20)
    (d / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 50)
    (d / "image.png").write_bytes(b"\x89PNG")
    (d / ".hidden.txt").write_text(PROSE * 5)
    (d / ".git").mkdir()
    (d / ".git" / "notes.txt").write_text(PROSE * 6)
    report = SeedReport()
    seeds = load_seeds(d, report=report)
    assert [(s.source, s.kind, s.language) for s in seeds] == [
        ("a.txt", "text", ""),
        ("sub/tool.py", "code", "Python"),
    ]
    assert report.summary() == (
        "2 seeds, 1 skipped (binary), 1 skipped (duplicate), 1 skipped (empty), "
        "1 skipped (not UTF-8), 1 skipped (too short), 1 skipped (unsupported file type .png)"
    )
    assert report.tokens == sum(tokenizer_for(None).count(s.text) for s in seeds)


def test_seed_ids_are_content_derived(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(PROSE * 5)
    (tmp_path / "b.txt").write_text(PROSE * 5)
    first, second = list(iter_seeds(tmp_path))  # iter_seeds keeps duplicates unless asked
    assert first.id == second.id
    assert [s.source for s in iter_seeds(tmp_path, dedupe=True)] == ["a.txt"]


def test_single_file_of_any_suffix_is_one_document(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(PROSE * 5)
    (seed,) = load_seeds(log)
    assert (seed.source, seed.kind, seed.text) == ("server.log", "text", (PROSE * 5).strip())
    (tmp_path / "tool.py").write_text(CODE)
    (code,) = load_seeds(tmp_path / "tool.py")
    assert (code.kind, code.language) == ("code", "Python")


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        iter_seeds(tmp_path / "nope")  # raised when called, not when iterated


def test_windows_line_ends_are_normalised(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes((PROSE * 3 + "\r\n\r\n" + PROSE * 3).encode())
    (seed,) = load_seeds(tmp_path)
    assert "\r" not in seed.text and "\n\n" in seed.text


# --- rows: JSON Lines, JSON, parquet -----------------------------------------------------


def test_jsonl_rows_fields_and_bad_lines(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"text": PROSE * 3},
            {"text": CODE, "source": "repo/math.py"},
            {"text": CODE.replace("add", "plus"), "kind": "code", "language": "Python", "id": 7},
            {"text": PROSE * 4, "language": "en", "id": "doc-9"},
            {"body": "no text field"},
            {"text": 42},
            ["not", "an", "object"],
            {"text": ""},
            {"text": "nul\x00" * 20},
        ],
    )
    with f.open("ab") as fh:
        fh.write(b"{not json\n\n")
        fh.write(b'{"text": "caf\xe9"}\n')
    report = SeedReport()
    seeds = load_seeds(f, report=report)
    assert [(s.source, s.kind, s.language) for s in seeds] == [
        ("corpus.jsonl:1", "text", ""),
        ("repo/math.py", "code", "Python"),
        ("corpus.jsonl:7", "code", "Python"),
        ("corpus.jsonl:doc-9", "text", "en"),
    ]
    assert report.skipped == {
        "row without text field": 3,
        "empty": 1,
        "binary": 1,
        "malformed JSON line": 1,
        "not UTF-8": 1,
    }


def test_json_file_is_rows_alone_and_a_document_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "array.json").write_text(json.dumps([{"text": PROSE * 3}, PROSE * 4]))
    assert [s.source for s in load_seeds(tmp_path / "array.json")] == [
        "array.json:1",
        "array.json:2",
    ]
    lines = write_jsonl(tmp_path / "lines.json", [{"text": PROSE * 5}])
    assert [s.source for s in load_seeds(lines)] == ["lines.json:1"]
    (tmp_path / "broken.json").write_text("[{")
    report = SeedReport()
    assert load_seeds(tmp_path / "broken.json", report=report) == []
    assert report.skipped == {"malformed JSON file": 1}
    # inside a folder a .json file is content (a config, a record), read whole
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"settings": PROSE * 3}, indent=2))
    (seed,) = load_seeds(folder)
    assert seed.source == "config.json" and seed.text.startswith("{")


def test_folder_expands_jsonl_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_jsonl(tmp_path / "a.jsonl", [{"text": PROSE * 3}])
    pq.write_table(pa.Table.from_pylist([{"text": PROSE * 4}]), tmp_path / "b.parquet")
    assert [s.source for s in load_seeds(tmp_path)] == ["a.jsonl:1", "b.parquet:1"]


def test_parquet_rows_missing_column_and_unreadable_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": f"{i}: {PROSE * 3}", "id": f"r{i}", "extra": i} for i in range(5)]
    rows.append({"text": None, "id": "none", "extra": 0})
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "c.parquet")
    report = SeedReport()
    seeds = load_seeds(tmp_path / "c.parquet", report=report)
    assert [s.source for s in seeds] == [f"c.parquet:r{i}" for i in range(5)]
    assert report.summary() == "5 seeds, 1 skipped (row without text field)"

    report = SeedReport()
    assert load_seeds(tmp_path / "c.parquet", text_field="body", report=report) == []
    assert report.skipped == {"row without text field": 6}

    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    report = SeedReport()
    assert load_seeds(tmp_path / "bad.parquet", report=report) == []
    assert report.skipped == {"unreadable file": 1}


def test_parquet_is_read_batch_by_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": f"Document {i}. {PROSE * 3}"} for i in range(5000)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "big.parquet", row_group_size=500)
    batches = 0
    real = pq.ParquetFile.iter_batches

    def counting(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Iterator[Any]:
        nonlocal batches
        for batch in real(self, *args, **kwargs):
            batches += 1
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counting)
    seeds = iter_seeds(tmp_path / "big.parquet")
    assert isinstance(seeds, Iterator)
    assert next(seeds).source == "big.parquet:1"
    assert batches == 1
    assert sum(1 for _ in seeds) == 4999 and batches > 1


def test_iterable_of_rows_is_consumed_lazily() -> None:
    pulled = 0

    def rows() -> Iterator[dict[str, str]]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield {"text": f"Row {i}. {PROSE * 3}"}

    seeds = iter_seeds(rows())
    assert pulled == 0
    assert next(seeds).source == "rows:1"
    assert pulled == 1
    assert [s.source for s in iter_seeds([PROSE * 3, {"text": PROSE * 4}])] == ["rows:1", "rows:2"]


# --- datasets ----------------------------------------------------------------------------


def test_saved_dataset_and_dataset_dict(tmp_path: Path) -> None:
    import datasets

    rows = [{"text": f"{i}: {PROSE * 3}", "id": f"r{i}", "kind": "text"} for i in range(3)]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    assert [s.source for s in load_seeds(tmp_path / "ds")] == ["ds:r0", "ds:r1", "ds:r2"]

    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:1])}
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    assert [s.source for s in load_seeds(tmp_path / "dd", split="test")] == ["dd[test]:r0"]
    with pytest.raises(SeedSourceError, match="no split 'validation'"):
        iter_seeds(tmp_path / "dd", split="validation")

    assert [s.source for s in load_seeds(dd)] == [
        "rows[train]:r0",
        "rows[train]:r1",
        "rows[train]:r2",
    ]
    with pytest.raises(SeedSourceError, match="no split 'dev'"):
        iter_seeds(dd, split="dev")

    report = SeedReport()
    assert load_seeds(tmp_path / "ds", text_field="content", report=report) == []
    assert report.skipped == {"row without text field": 3}


def test_dataset_builder_with_local_files_streams(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "train.jsonl", [{"text": f"{i}: {PROSE * 3}"} for i in range(4)])
    seeds = iter_seeds("hf:json", data_files=str(f))
    assert isinstance(seeds, Iterator)
    assert next(seeds).source == "train.jsonl:1"
    assert len(list(seeds)) == 3
    # a datasets object is an iterable of rows too
    import datasets

    streamed = datasets.load_dataset("json", data_files=str(f), split="train", streaming=True)
    assert len(load_seeds(streamed)) == 4


def test_hub_name_offline_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SeedSourceError) as exc:
        iter_seeds("someone/no-such-corpus")
    message = str(exc.value)
    assert "someone/no-such-corpus" in message and "\n" not in message
    with pytest.raises(SeedSourceError, match="'plain-name'"):
        iter_seeds("hf:plain-name")


# --- chunking ----------------------------------------------------------------------------


def test_long_text_is_chunked_by_tokens_on_paragraphs() -> None:
    tok = tokenizer_for(None)
    paragraphs = [f"Paragraph {i}. " + PROSE * (i % 5 + 1) for i in range(40)]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, tok, 200)
    assert len(chunks) > 1
    assert all(tok.count(c) <= 200 for c in chunks)
    assert squash("".join(chunks)) == squash(text)
    # every chunk starts at a paragraph start: no paragraph was cut
    assert all(c.startswith("Paragraph ") for c in chunks)


def test_paragraph_longer_than_the_limit_is_cut_and_reassembles() -> None:
    tok = tokenizer_for(None)
    text = " ".join(f"word{i}" for i in range(3000))  # no sentence or line breaks
    chunks = chunk_text(text, tok, 100)
    assert all(tok.count(c) <= 100 for c in chunks)
    assert " ".join(chunks) == text


def test_cjk_text_without_spaces_is_chunked() -> None:
    tok = tokenizer_for(None)
    text = CJK * 100
    chunks = chunk_text(text, tok, 64)
    assert len(chunks) > 5
    assert all(0 < tok.count(c) <= 64 for c in chunks)
    assert "".join(chunks) == text
    assert all("\ufffd" not in c for c in chunks)
    # sentences (。) are preferred cut points
    sentences = "".join(f"{CJK}{i}。" for i in range(60))
    assert all(c.endswith("。") for c in chunk_text(sentences, tok, 64))


def test_cjk_seeds_are_not_dropped_as_too_short(tmp_path: Path) -> None:
    text = "".join(chr(0x4E00 + i * 7919 % 20000) for i in range(2000))  # no repeats
    (tmp_path / "zh.txt").write_text(text)
    seeds = load_seeds(tmp_path, chunk_tokens=256)
    assert len(seeds) > 1
    assert [s.source for s in seeds[:2]] == ["zh.txt#1", "zh.txt#2"]
    assert "".join(s.text for s in seeds) == text


def test_code_is_chunked_at_top_level_definitions_only_when_too_long() -> None:
    tok = tokenizer_for(None)
    functions = [CODE.replace("add", f"add{i}").replace("sub", f"sub{i}") for i in range(30)]
    code = "\n\n".join(functions)
    assert chunk_text(CODE, tok, 2048, code=True) == [CODE.strip()]
    chunks = chunk_text(code, tok, 150, code=True)
    assert len(chunks) > 1 and all(tok.count(c) <= 150 for c in chunks)
    assert all(c.startswith("def ") for c in chunks)
    assert squash("".join(chunks)) == squash(code)


def test_overlap_repeats_the_end_of_a_chunk() -> None:
    tok = tokenizer_for(None)
    text = "".join(chr(0x4E00 + i * 7919 % 20000) for i in range(1500))  # no repeats
    chunks = chunk_text(text, tok, 64, overlap_tokens=16)
    assert all(tok.count(c) <= 64 for c in chunks)
    assert len(chunks) > len(chunk_text(text, tok, 64))
    for a, b in itertools.pairwise(chunks):
        assert 0 < b.index(a[-5:]) < 20  # b starts with the end of a


def test_chunk_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="chunk_tokens"):
        iter_seeds([PROSE], chunk_tokens=4)
    with pytest.raises(ValueError, match="overlap_tokens"):
        iter_seeds([PROSE], chunk_tokens=100, overlap_tokens=60)


def test_min_tokens_and_tokenizer_by_model_name(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(PROSE)  # about 15 tokens
    report = SeedReport()
    assert load_seeds(tmp_path, report=report) == []
    assert report.skipped == {"too short": 1}
    assert len(load_seeds(tmp_path, min_tokens=5, tokenizer="gpt-4")) == 1


def test_chunk_sources_are_numbered(tmp_path: Path) -> None:
    (tmp_path / "long.md").write_text("\n\n".join(f"{i}. {PROSE * 8}" for i in range(6)))
    seeds = load_seeds(tmp_path, chunk_tokens=300)
    assert [s.source for s in seeds] == [f"long.md#{i}" for i in range(1, len(seeds) + 1)]
    assert len(seeds) > 1 and all(tokenizer_for(None).count(s.text) <= 300 for s in seeds)


def test_each_skip_is_named_by_file_line_and_chunk(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text(PROSE * 3)
    (d / "sub" / "copy.md").write_text(PROSE * 3)
    (d / "blob.txt").write_bytes(b"\x00\x01binary" * 20)
    (d / "rows.jsonl").write_bytes(
        json.dumps({"text": "Row one. " + PROSE * 3}).encode() + b"\n{broken\n\n"
        + json.dumps({"body": "x"}).encode() + b"\n\"\xff\"\n"
    )  # fmt: skip
    pq.write_table(pa.Table.from_pylist([{"body": PROSE}] * 3), d / "t.parquet")
    (d / "long.txt").write_text("Long. " + PROSE * 3 + "\n\nTail of it all.")
    got: list[Skip] = []
    report = SeedReport()
    seeds = iter_seeds(d, report=report, dedupe=True, chunk_tokens=50)
    # skips are held until a sink is attached
    assert [next(seeds).source, next(seeds).source] == ["a.txt", "long.txt#1"]
    assert report.pending == [Skip("blob.txt", "binary")]
    report.attach(got.append)
    assert [s.source for s in seeds] == ["rows.jsonl:1"]
    assert got == [
        Skip("blob.txt", "binary"),
        Skip("long.txt", "too short", chunk=2),
        Skip("rows.jsonl", "malformed JSON line", 2),
        Skip("rows.jsonl", "row without text field", 4),
        Skip("rows.jsonl", "not UTF-8", 5),
        Skip("sub/copy.md", "duplicate"),
        Skip("t.parquet", "row without text field", count=3),
    ]
    assert report.pending == []
    assert [s.as_dict() for s in got[1:3]] == [
        {"file": "long.txt", "reason": "too short", "chunk": 2},
        {"file": "rows.jsonl", "reason": "malformed JSON line", "line": 2},
    ]
    assert got[-1].as_dict() == {
        "file": "t.parquet",
        "reason": "row without text field",
        "count": 3,
    }
    assert report.files() == [
        "blob.txt: binary",
        "long.txt: too short",
        "rows.jsonl: malformed JSON line, not UTF-8, row without text field",
        "sub/copy.md: duplicate",
        "t.parquet: row without text field (3)",
    ]
    assert report.files(limit=2)[-1] == "... and 3 more files"


def test_pending_skips_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("genteach.seeds.MAX_PENDING_SKIPS", 2)
    report = SeedReport()
    for i in range(5):
        report.skip("empty", f"f{i}.txt")
    assert len(report.pending) == 2 and report.unlisted == 3
    assert report.skipped == {"empty": 5}


def test_require_seeds_refuses_a_source_without_a_usable_seed(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text(" ")
    (tmp_path / "short.txt").write_text("Too short.")
    report = SeedReport()
    with pytest.raises(SeedSourceError) as exc:
        require_seeds(iter_seeds(tmp_path, report=report), report, "docs/")
    assert str(exc.value) == (
        "seeds: no usable seed in docs/ (empty.txt: empty; short.txt: too short)"
    )
    (tmp_path / "good.txt").write_text(PROSE * 5)
    report = SeedReport()
    seeds = require_seeds(iter_seeds(tmp_path, report=report), report, "docs/")
    assert [s.source for s in seeds] == ["good.txt"]
