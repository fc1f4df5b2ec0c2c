"""`genteach export`: output folders to a Hub-ready parquet dataset with a card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import datasets
import pytest

from genteach.cli import main
from genteach.export import (
    RecordSet,
    collect_records,
    dataset_features,
    export_dataset,
    find_record_files,
    push_export,
    to_conversations,
)
from genteach.models.base import Message
from genteach.records import JsonlWriter, Record, RecordMeta, Reject

TEACHER = "teacher-x"
NO_TOOLS = {"tool_calls": None, "tool_call_id": None, "name": None}


def record(skill: str, n: int, *, sub: str = "weaken", teacher: str = TEACHER) -> Record:
    messages: list[Message] = [
        {"role": "system", "content": ""},
        {"role": "user", "content": f"Question {n} about {skill}: why do tunnels flood?"},
        {"role": "assistant", "content": f"Answer {n}: water finds the lowest point."},
    ]
    meta = RecordMeta(
        skill=skill,
        sub_category=sub,
        seed_id=f"seed{n}",
        unit=f"{skill}/seed{n}",
        agents=["transform/identity", f"instruct/{sub}", "responder"],
        teacher=teacher,
        usage={"prompt_tokens": 10, "completion_tokens": 5, "calls": 1},
        task_id=f"task{n}",
        genteach_version="0.1.0",
    )
    return Record(id=Record.make_id(messages), messages=messages, meta=meta)


def write_run(
    folder: Path, records: list[Record], *, rejects: int = 0, skills: list[str] | None = None
) -> Path:
    """A genteach output folder as the Pipeline writes it."""
    with JsonlWriter(folder / "records.jsonl") as w:
        for r in records:
            w.write(r)
    with JsonlWriter(folder / "rejects.jsonl") as w:
        for i in range(rejects):
            w.write(
                Reject(
                    unit=f"rc/{folder.name}{i}",
                    seed_id=f"{folder.name}{i}",
                    skill="rc",
                    stage="x",
                    agent="y",
                    reason="z",
                )
            )
    run = {
        "genteach_version": "0.1.0",
        "teacher": TEACHER,
        "taxonomy": "taxonomies/agentinstruct.yaml",
        "taxonomy_sha256": "abc",
        "skills": skills or sorted({r.meta.skill for r in records}),
        "settings": {"seed": 7, "concurrency": 8},
    }
    (folder / "run.json").write_text(json.dumps(run))
    return folder


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """A plain run (rc x3, fermi x1) and a sharded one (rc x2, one of them a duplicate)."""
    plain = write_run(
        tmp_path / "plain",
        [record("rc", 0), record("rc", 1, sub="strengthen"), record("rc", 2), record("fermi", 3)],
        rejects=2,
    )
    sharded = tmp_path / "sharded"
    write_run(sharded / "shards" / "shard-00000", [record("rc", 2), record("rc", 4)], rejects=1)
    write_run(sharded / "shards" / "shard-00001", [record("text_modification", 5)])
    return plain, sharded


def load(out: Path, tmp_path: Path) -> datasets.DatasetDict:
    return datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))  # type: ignore[return-value]


def test_find_record_files(runs: tuple[Path, Path], tmp_path: Path) -> None:
    plain, sharded = runs
    assert find_record_files(plain) == [plain / "records.jsonl"]
    assert find_record_files(sharded) == [
        sharded / "shards" / "shard-00000" / "records.jsonl",
        sharded / "shards" / "shard-00001" / "records.jsonl",
    ]
    assert find_record_files(plain / "records.jsonl") == [plain / "records.jsonl"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_record_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no records\.jsonl here nor in shards"):
        find_record_files(tmp_path / "empty")


def test_collect_dedupes_across_inputs_and_counts_rejects(runs: tuple[Path, Path]) -> None:
    plain, sharded = runs
    rs = collect_records([plain, sharded, plain / "records.jsonl"])
    assert {k: len(v) for k, v in rs.by_skill.items()} == {
        "rc": 4,
        "fermi": 1,
        "text_modification": 1,
    }
    assert rs.duplicates == 1  # rc/2 is in both; the file given twice is read once
    assert len(rs.sources) == 3
    assert rs.rejects == 3 and rs.rejects_by_skill == {"rc": 3}
    # the shards' run.json files differ (skills), the plain one is its own: three configs
    assert len(rs.runs) == 3


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [record("rc", 0)])
    with (run / "records.jsonl").open("a") as fh:
        fh.write('{"id": "half a rec')
    assert collect_records(run).total == 1


def test_malformed_lines_name_file_and_line(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [record("rc", 0)])
    with (run / "records.jsonl").open("a") as fh:
        fh.write("not json\n")
    with pytest.raises(ValueError, match=r"records\.jsonl:2: not a JSON line"):
        collect_records(run)
    run2 = write_run(tmp_path / "run2", [record("rc", 0)])
    with (run2 / "records.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "x", "messages": []}) + "\n")
    with pytest.raises(ValueError, match=r"records\.jsonl:2: not a genteach record \(meta: "):
        collect_records(run2)


def test_no_records_and_bad_skill_id(tmp_path: Path) -> None:
    empty = write_run(tmp_path / "empty", [])
    with pytest.raises(ValueError, match="no records to export"):
        export_dataset(empty, tmp_path / "hf")
    bad = write_run(tmp_path / "bad", [record("my-skill", 0)])
    with pytest.raises(ValueError, match="'my-skill' cannot be a split name"):
        collect_records(bad)


def test_export_layout_reloads_with_datasets(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "hf"
    dsd = export_dataset(list(runs), out, rows_per_shard=2)
    assert {k: len(v) for k, v in dsd.items()} == {"fermi": 1, "rc": 4, "text_modification": 1}
    files = sorted(p.name for p in (out / "data").iterdir())
    assert files == [
        "fermi-00000-of-00001.parquet",
        "rc-00000-of-00002.parquet",
        "rc-00001-of-00002.parquet",
        "text_modification-00000-of-00001.parquet",
    ]
    for loaded in (
        load(out, tmp_path),
        datasets.load_dataset("parquet", data_dir=str(out), cache_dir=str(tmp_path / "c2")),
    ):
        assert {k: len(v) for k, v in loaded.items()} == {  # type: ignore[union-attr]
            "fermi": 1,
            "rc": 4,
            "text_modification": 1,
        }
    reloaded = load(out, tmp_path)
    features = {split: ds.features for split, ds in reloaded.items()}
    assert all(f == dataset_features() for f in features.values())
    row = reloaded["fermi"][0]
    assert row["messages"] == [
        {**m, "trained": m["role"] == "assistant", **NO_TOOLS} for m in record("fermi", 3).messages
    ]
    assert row["conversations"] == [
        {"from": "human", "value": "Question 3 about fermi: why do tunnels flood?", "loss": None},
        {"from": "gpt", "value": "Answer 3: water finds the lowest point.", "loss": True},
    ]
    assert row["id"] == record("fermi", 3).id
    assert row["meta"]["teacher"] == TEACHER
    assert row["meta"]["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "calls": 1}
    assert row["meta"]["parent_task_id"] is None
    assert sorted(reloaded["rc"]["id"]) == sorted(dsd["rc"]["id"])


def test_json_messages_and_no_meta(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "hf"
    export_dataset(runs[0], out, messages_format="json", include_meta=False)
    reloaded = load(out, tmp_path)
    assert reloaded["rc"].column_names == ["id", "messages", "conversations"]
    text = reloaded["fermi"][0]["messages"]
    assert isinstance(text, str)
    assert json.loads(text) == [
        {**m, "trained": m["role"] == "assistant"} for m in record("fermi", 3).messages
    ]
    assert "`messages` (JSON string)" in (out / "README.md").read_text()


def test_card(runs: tuple[Path, Path], tmp_path: Path) -> None:
    import yaml

    out = tmp_path / "hf"
    export_dataset(list(runs), out, name="My pairs")
    card = (out / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["configs"][0]["data_files"] == [
        {"split": "fermi", "path": "data/fermi-*.parquet"},
        {"split": "rc", "path": "data/rc-*.parquet"},
        {"split": "text_modification", "path": "data/text_modification-*.parquet"},
    ]
    assert body.lstrip().startswith("# My pairs")
    assert "Tokens: `cl100k_base` tokens" in body
    assert "- records: 6 in 3 splits" in body
    assert f"`{TEACHER}` (6)" in body
    assert "not included): 3" in body
    assert "duplicate ids dropped across inputs: 1" in body
    rc_row = next(line for line in body.splitlines() if line.startswith("| rc |"))
    cells = [c.strip() for c in rc_row.strip("|").split("|")]
    assert cells[1:3] == ["4", "3"]  # records, rejects
    tmin, tmean, tmax, ttotal = int(cells[3]), float(cells[4]), int(cells[5]), int(cells[6])
    assert 0 < tmin <= tmean <= tmax and ttotal >= 4 * tmin
    assert cells[7] == cells[8]  # every assistant token is trained
    assert cells[9:] == ["1.00", "1"]  # one assistant turn per record
    assert "`conversations` (list)" in body and "`<tool_call>`" in body
    assert "- **rc**: strengthen 1, weaken 3" in body
    assert "taxonomy_sha256: abc" in body and "seed: 7" in body


class WordTokenizer:
    name = "words"
    approximate = True

    def encode(self, text: str) -> list[int]:
        return [0] * len(text.split())

    def decode(self, ids: Any) -> str:
        return ""

    def count(self, text: str) -> int:
        return len(text.split())


def test_card_tokens_with_another_tokenizer(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "hf"
    export_dataset(runs[0], out, tokenizer=WordTokenizer())
    body = (out / "README.md").read_text()
    assert "Tokens: `words` (approximate) tokens" in body
    # fermi/3: "" (0) + "Question 3 about fermi: ..." (8) + "Answer 3: water ..." (7)
    assert "| fermi | 1 | 0 | 15 | 15.0 | 15 | 15 | 7 | 7 | 1.00 | 1 |" in body


def test_out_dir_must_be_empty_unless_overwrite(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "hf"
    export_dataset(runs[0], out, rows_per_shard=1)
    assert len(list((out / "data").glob("rc-*"))) == 3
    with pytest.raises(ValueError, match="is not empty"):
        export_dataset(runs[0], out)
    export_dataset(runs[0], out, overwrite=True)
    assert [p.name for p in (out / "data").glob("rc-*")] == ["rc-00000-of-00001.parquet"]
    with pytest.raises(ValueError, match="is a genteach output folder"):
        export_dataset(runs[0], runs[0], overwrite=True)


def test_meta_features_follow_record_meta() -> None:
    assert list(dataset_features()["meta"]) == list(RecordMeta.model_fields)
    assert list(dataset_features(include_meta=False)) == ["id", "messages", "conversations"]
    bare = dataset_features(include_meta=False, include_conversations=False)
    assert list(bare) == ["id", "messages"]


def test_max_shard_size(runs: tuple[Path, Path], tmp_path: Path) -> None:
    export_dataset(runs[0], tmp_path / "hf", max_shard_size=1)  # one row per file
    assert len(list((tmp_path / "hf" / "data").glob("rc-*-of-00003.parquet"))) == 3


def test_export_accepts_a_record_set(runs: tuple[Path, Path], tmp_path: Path) -> None:
    rs = collect_records(runs[0])
    assert isinstance(rs, RecordSet)
    dsd = export_dataset(rs, tmp_path / "hf")
    assert sorted(dsd) == ["fermi", "rc"]


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_repo(self, repo_id: str, **kw: Any) -> None:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def upload_folder(self, **kw: Any) -> Any:
        self.calls.append(("upload_folder", kw))
        return type("Info", (), {"commit_url": "https://hub/commit/1"})()


def test_push_export_uploads_the_folder(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "hf"
    export_dataset(runs[0], out)
    api = FakeApi()
    assert push_export(out, "me/pairs", private=True, api=api) == "https://hub/commit/1"
    (_, create), (_, upload) = api.calls
    assert create == {
        "repo_id": "me/pairs",
        "repo_type": "dataset",
        "private": True,
        "exist_ok": True,
    }
    assert upload["folder_path"] == str(out) and upload["repo_type"] == "dataset"
    assert upload["allow_patterns"] == ["README.md", "data/*.parquet"]
    with pytest.raises(FileNotFoundError, match="export first"):
        push_export(tmp_path / "nothing", "me/pairs", api=api)


def test_cli_export(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hf"
    code = main(
        [
            "export",
            str(runs[0]),
            str(runs[1]),
            "--out",
            str(out),
            "--json-messages",
            "--rows-per-shard",
            "3",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "6 records in 3 splits (1 duplicate dropped, 3 rejects not included)" in printed
    assert "rc" in printed and "2 shards" in printed
    assert str(out / "README.md") in printed
    reloaded = load(out, tmp_path)
    assert isinstance(reloaded["rc"][0]["messages"], str)
    assert main(["export", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_identical_rejects_in_one_file_both_count_but_a_copied_folder_does_not(
    tmp_path: Path,
) -> None:
    run = write_run(tmp_path / "run", [record("rc", 1)])
    line = (
        Reject(unit="rc/s", seed_id="s", skill="rc", stage="x", agent="y", reason="z")
        .model_dump_json()
        .strip()
    )
    (run / "rejects.jsonl").write_text(f"{line}\n{line}\n")  # two tasks failed the same way
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert collect_records([run]).rejects == 2
    assert collect_records([run, copy]).rejects == 2  # the copy adds nothing


# An agent trajectory: a scripted "Ok.", a one-shot demo, a tool call and its result.
TRAJECTORY: list[Message] = [
    {"role": "system", "content": "You act in a Linux shell."},
    {"role": "user", "content": "Answer with one command. Say Ok. if you understand."},
    {"role": "assistant", "content": "Ok.", "trained": False},
    {"role": "user", "content": "Demo: count the files in /etc."},
    {"role": "assistant", "content": "ls -1 /etc | wc -l", "trained": False},
    {"role": "user", "content": "Task: how many lines has notes.txt?"},
    {
        "role": "assistant",
        "content": "I will count them.",
        "tool_calls": [{"id": "call_1", "name": "bash", "arguments": '{"cmd": "wc -l notes.txt"}'}],
    },
    {"role": "tool", "content": "3 notes.txt", "tool_call_id": "call_1", "name": "bash"},
    {"role": "assistant", "content": "notes.txt has 3 lines."},
]


def trajectory_record() -> Record:
    meta = record("tool_use", 0).meta.model_copy(update={"skill": "tool_use"})
    return Record(id=Record.make_id(TRAJECTORY), messages=TRAJECTORY, meta=meta)


def test_to_conversations_maps_flags_system_and_tool_turns() -> None:
    assert to_conversations(TRAJECTORY) == [
        {
            "from": "human",
            "value": "You act in a Linux shell.\n\nAnswer with one command. Say Ok. if you understand.",
            "loss": None,
        },
        {"from": "gpt", "value": "Ok.", "loss": False},
        {"from": "human", "value": "Demo: count the files in /etc.", "loss": None},
        {"from": "gpt", "value": "ls -1 /etc | wc -l", "loss": False},
        {"from": "human", "value": "Task: how many lines has notes.txt?", "loss": None},
        {
            "from": "gpt",
            "value": 'I will count them.\n<tool_call>\n{"name": "bash", "arguments": {"cmd": "wc -l notes.txt"}}\n</tool_call>',
            "loss": True,
        },
        {"from": "human", "value": "<tool_response>\n3 notes.txt\n</tool_response>", "loss": None},
        {"from": "gpt", "value": "notes.txt has 3 lines.", "loss": True},
    ]


def test_to_conversations_edge_cases() -> None:
    # a system prompt before an assistant turn is its own human turn; human turns that
    # would follow each other (parallel tool results) are joined; calls without text
    calls = [
        {"id": "a", "name": "f", "arguments": "{}"},
        {"id": "b", "name": "g", "arguments": "not json"},
    ]
    messages: list[Message] = [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "", "tool_calls": calls},  # type: ignore[typeddict-item]
        {"role": "tool", "content": "1", "tool_call_id": "a"},
        {"role": "tool", "content": "2", "tool_call_id": "b"},
        {"role": "assistant", "content": "Done.", "trained": True},
    ]
    assert to_conversations(messages) == [
        {"from": "human", "value": "Be brief.", "loss": None},
        {
            "from": "gpt",
            "value": '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>\n'
            '<tool_call>\n{"name": "g", "arguments": "not json"}\n</tool_call>',
            "loss": True,
        },
        {
            "from": "human",
            "value": "<tool_response>\n1\n</tool_response>\n\n<tool_response>\n2\n</tool_response>",
            "loss": None,
        },
        {"from": "gpt", "value": "Done.", "loss": True},
    ]
    assert to_conversations([{"role": "system", "content": " "}]) == []


def test_tool_turns_and_flags_export_with_stable_features(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [trajectory_record(), record("rc", 1)])
    out = tmp_path / "hf"
    export_dataset(run, out, tokenizer=WordTokenizer())
    reloaded = load(out, tmp_path)
    # a split with tool calls and one without have the same features
    assert reloaded["tool_use"].features == reloaded["rc"].features == dataset_features()
    row = reloaded["tool_use"][0]
    assert [m["trained"] for m in row["messages"]] == [
        False, False, False, False, False, False, True, False, True
    ]  # fmt: skip
    assert row["messages"][6]["tool_calls"] == TRAJECTORY[6]["tool_calls"]
    assert row["messages"][7] == {
        "role": "tool",
        "content": "3 notes.txt",
        "trained": False,
        "tool_calls": None,
        "tool_call_id": "call_1",
        "name": "bash",
    }
    assert row["conversations"] == to_conversations(TRAJECTORY)
    assert [m["tool_calls"] for m in reloaded["rc"][0]["messages"]] == [None, None, None]
    # the card counts trained tokens apart from assistant tokens (words here):
    # "Ok." 1 + "ls -1 /etc | wc -l" 6 (not trained) + the call turn 13 + "notes.txt has 3 lines." 4
    body = (out / "README.md").read_text()
    line = next(x for x in body.splitlines() if x.startswith("| tool_use |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[7:9] == ["24", "17"]


def test_json_messages_keep_tool_fields_only_where_set(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [trajectory_record()])
    export_dataset(run, tmp_path / "hf", messages_format="json")
    row = load(tmp_path / "hf", tmp_path)["tool_use"][0]
    turns = json.loads(row["messages"])
    assert turns[2] == {"role": "assistant", "content": "Ok.", "trained": False}
    assert turns[7] == {**TRAJECTORY[7], "trained": False}
    assert turns[6] == {**TRAJECTORY[6], "trained": True}


def test_cli_no_conversations(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "hf"
    assert main(["export", str(runs[0]), "--out", str(out), "--no-conversations"]) == 0
    reloaded = load(out, tmp_path)
    assert reloaded["rc"].column_names == ["id", "messages", "meta"]
    assert "`conversations`" not in (out / "README.md").read_text()
