"""Export genteach output folders as a Hugging Face dataset in the orca-agentinstruct layout.

One split per skill id (as in ``microsoft/orca-agentinstruct-1M-v1``), parquet shards at
``data/<split>-NNNNN-of-MMMMM.parquet`` (the Hub's own layout, so ``load_dataset(folder)``
and the Hub viewer find the splits), and a ``README.md`` dataset card with counts, token
statistics, the teacher model and the generation config. Each row has the conversation
twice: genteach's ``messages`` (per-turn ``trained`` flags, tool calls and tool turns) and
THUDM/AgentInstruct's ``conversations`` (``{"from", "value", "loss"}``), unless left out.

Example:
    >>> dsd = export_dataset(["out/"], "hf/")                  # doctest: +SKIP
    >>> push_export("hf/", "me/my-agentinstruct")               # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
import shutil
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import ValidationError

from genteach import __version__
from genteach.models.base import Message, is_trained
from genteach.pipeline import RECORDS_FILE, REJECTS_FILE, RUN_FILE
from genteach.records import Record, read_jsonl
from genteach.tokens import Tokenizer, tokenizer_for

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict, Features

SHARDS_DIR = "shards"
DATA_DIR = "data"
CARD_FILE = "README.md"

_SPLIT_RE = re.compile(r"^\w+(\.\w+)*$")  # what `datasets` accepts as a split name
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "calls")
_ROW_GROUP = 1000  # rows per parquet row group, as `datasets` writes them (viewer-friendly)


@dataclass
class RecordSet:
    """The deduplicated records of one or more genteach output folders, by skill.

    Attributes:
        by_skill: records per skill id, in the order they were read.
        runs: the distinct ``run.json`` contents of the folders read.
        sources: the records files read.
        rejects: distinct reject lines next to those files (``rejects.jsonl``).
        rejects_by_skill: the same, per skill.
        duplicates: records dropped because an earlier input had their id.
        held_out: records left out because their run holds them out for evaluation
            (``RUN/eval/split.json``, written by ``genteach eval split``).
    """

    by_skill: dict[str, list[Record]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)
    rejects: int = 0
    rejects_by_skill: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    held_out: int = 0

    @property
    def total(self) -> int:
        """Number of records kept."""
        return sum(len(v) for v in self.by_skill.values())


def find_record_files(path: str | Path) -> list[Path]:
    """The records files of one input: a records ``.jsonl``, or an output folder.

    A folder contributes its ``records.jsonl`` and those of its shard folders
    (``shards/*/records.jsonl``, written by a sharded run); either may be missing, not both.

    Raises:
        FileNotFoundError: the path does not exist, or the folder holds no records file.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if p.is_file():
        return [p]
    files = [p / RECORDS_FILE] if (p / RECORDS_FILE).is_file() else []
    files += sorted(q for q in (p / SHARDS_DIR).glob(f"*/{RECORDS_FILE}") if q.is_file())
    if not files:
        raise FileNotFoundError(
            f"{p}: no {RECORDS_FILE} here nor in {SHARDS_DIR}/*/; is it a genteach output folder?"
        )
    return files


def collect_records(inputs: str | Path | Sequence[str | Path]) -> RecordSet:
    """Read the records of genteach output folders (or records files), dropping duplicate ids.

    The first record with an id wins. ``run.json`` and ``rejects.jsonl`` are read from the
    folder of each ``records.jsonl``; a torn last line (a run still writing or killed) is
    ignored. Records that ``genteach eval split`` held out of their run are left out (and
    counted), so an export never trains on an evaluation item.

    Args:
        inputs: output folders, shard folders or records ``.jsonl`` files.

    Raises:
        FileNotFoundError: an input is missing or holds no records file.
        ValueError: a line is not JSON or not a genteach record (the message names the file
            and line), or a skill id cannot be a split name.
    """
    from genteach.heldout import held_out_ids

    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not paths:
        raise ValueError("no inputs given")
    out = RecordSet()
    seen_ids: set[str] = set()
    seen_rejects: Counter[str] = Counter()
    seen_runs: set[str] = set()
    seen_files: set[Path] = set()
    for path in paths:
        for file in find_record_files(path):
            if file.resolve() in seen_files:
                continue
            seen_files.add(file.resolve())
            out.sources.append(file)
            held = held_out_ids(file)
            # genteach writes no blank lines, so the n-th line read is line n of the file.
            for lineno, obj in enumerate(read_jsonl(file), 1):
                try:
                    record = Record.model_validate(obj)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(x) for x in first["loc"])
                    raise ValueError(
                        f"{file}:{lineno}: not a genteach record ({where}: {first['msg']})"
                    ) from exc
                if record.id in held:
                    out.held_out += 1
                    continue
                if record.id in seen_ids:
                    out.duplicates += 1
                    continue
                seen_ids.add(record.id)
                skill = record.meta.skill
                if not _SPLIT_RE.match(skill):
                    raise ValueError(
                        f"{file}:{lineno}: skill id {skill!r} cannot be a split name "
                        "(letters, digits and _ only)"
                    )
                out.by_skill.setdefault(skill, []).append(record)
            if file.name != RECORDS_FILE:
                continue
            run_file = file.parent / RUN_FILE
            if run_file.is_file():
                run = json.loads(run_file.read_text(encoding="utf-8"))
                key = json.dumps(run, sort_keys=True)
                if key not in seen_runs:
                    seen_runs.add(key)
                    out.runs.append(run)
            # Two identical lines in one file are two rejects (two tasks failed the same
            # way); the same lines in two copies of a run folder are counted once.
            here = Counter(
                json.dumps(rej, sort_keys=True) for rej in read_jsonl(file.parent / REJECTS_FILE)
            )
            for key, n in here.items():
                seen_rejects[key] = max(seen_rejects[key], n)
    for key, n in seen_rejects.items():
        skill = str(json.loads(key).get("skill", ""))
        out.rejects_by_skill[skill] = out.rejects_by_skill.get(skill, 0) + n
    out.rejects = sum(out.rejects_by_skill.values())
    return out


def dataset_features(
    messages_format: Literal["list", "json"] = "list",
    *,
    include_meta: bool = True,
    include_conversations: bool = True,
) -> Features:
    """The features every exported split has (the same in every split and every export).

    ``id`` (string); ``messages``: a list of ``{role, content, trained, tool_calls,
    tool_call_id, name}`` structs (``trained`` always set; the tool fields null where a turn
    has none; ``tool_calls`` items are ``{id, name, arguments}`` with the arguments as JSON
    text) or, with ``"json"``, the turns as one JSON string (keys only where set);
    ``conversations``: THUDM's list of ``{from, value, loss}`` (see :func:`to_conversations`),
    unless ``include_conversations`` is false; ``meta``: a struct with
    :class:`~genteach.records.RecordMeta`'s fields (``usage`` as ``{prompt_tokens,
    completion_tokens, calls}``), unless ``include_meta`` is false.
    """
    from datasets import Features, Value

    s, i, b = Value("string"), Value("int64"), Value("bool")
    message = {
        "role": s,
        "content": s,
        "trained": b,
        "tool_calls": [{"id": s, "name": s, "arguments": s}],
        "tool_call_id": s,
        "name": s,
    }
    feats: dict[str, Any] = {"id": s, "messages": s if messages_format == "json" else [message]}
    if include_conversations:
        feats["conversations"] = [{"from": s, "value": s, "loss": b}]
    if include_meta:
        feats["meta"] = {
            "skill": s,
            "sub_category": s,
            "seed_id": s,
            "unit": s,
            "agents": [s],
            "teacher": s,
            "usage": {k: i for k in _USAGE_KEYS},
            "task_id": s,
            "parent_task_id": s,
            "refinement_round": i,
            "refinement_goal": s,
            "refinement_suggestion": s,
            "transformer": s,
            "instruction": s,
            "key": s,
            "view": s,
            "slot": s,
            "verification": {"kind": s, "status": s, "detail": s, "answer": s},
            "outcome": s,
            "prompts_sha256": s,
            "genteach_version": s,
            "created_at": s,
        }
    return Features(feats)


def export_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """A record's turns as exported: ``trained`` resolved on every turn (see
    :func:`~genteach.models.base.is_trained`; only assistant turns are ever trained), other
    keys only where the turn has them."""
    out: list[dict[str, Any]] = []
    for m in messages:
        trained = m["role"] == "assistant" and is_trained(m)
        turn: dict[str, Any] = {"role": m["role"], "content": m["content"], "trained": trained}
        for key in ("tool_calls", "tool_call_id", "name"):
            if m.get(key) is not None:
                turn[key] = m[key]
        out.append(turn)
    return out


def tool_call_text(call: Mapping[str, Any]) -> str:
    """One tool call as text: ``<tool_call>`` around ``{"name": ..., "arguments": ...}``.

    The markup of Qwen2.5's (and Hermes') chat templates; arguments that are a JSON object
    are written as an object, anything else as a string.
    """
    try:
        arguments: Any = json.loads(call["arguments"])
    except (json.JSONDecodeError, TypeError):
        arguments = call["arguments"]
    body = json.dumps({"name": call["name"], "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def to_conversations(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """A record's turns in THUDM/AgentInstruct's form: ``{"from", "value", "loss"}``.

    - assistant -> ``gpt`` with ``loss`` = its trained flag (scripted and demo turns false);
      its tool calls follow its text, one :func:`tool_call_text` block each;
    - user -> ``human``, ``loss`` null (THUDM never trains a human turn);
    - tool -> a ``human`` turn, ``<tool_response>`` around the result: AgentTuning's
      observations are human turns;
    - system -> the head of the first human turn (blank line between), as AgentTuning's
      data carries its instructions in the first human turn; its own human turn when the
      conversation does not start with one. An empty system prompt is dropped.

    Human turns that would follow each other (a user turn then a tool result, or the
    results of parallel calls) are joined by a blank line, so turns alternate as THUDM's
    data and its readers expect.

    Example:
        >>> to_conversations([{"role": "user", "content": "hi"},
        ...                   {"role": "assistant", "content": "Ok.", "trained": False}])[1]
        {'from': 'gpt', 'value': 'Ok.', 'loss': False}
    """
    out: list[dict[str, Any]] = []
    system = ""
    for i, m in enumerate(messages):
        if m["role"] == "system":
            if i == 0:
                system = m["content"].strip() and m["content"]
                continue
            value, speaker = m["content"], "human"  # a late system turn: context, as a human turn
        elif m["role"] == "assistant":
            calls = [tool_call_text(c) for c in m.get("tool_calls") or []]
            value = "\n".join([m["content"], *calls] if m["content"] else calls)
            speaker = "gpt"
        elif m["role"] == "tool":
            value, speaker = f"<tool_response>\n{m['content']}\n</tool_response>", "human"
        else:
            value, speaker = m["content"], "human"
        if speaker == "human" and out and out[-1]["from"] == "human":
            out[-1]["value"] += "\n\n" + value
        elif speaker == "human":
            out.append({"from": "human", "value": value, "loss": None})
        else:
            out.append({"from": "gpt", "value": value, "loss": is_trained(m)})
    if system:
        if out and out[0]["from"] == "human":
            out[0]["value"] = f"{system}\n\n{out[0]['value']}"
        else:
            out.insert(0, {"from": "human", "value": system, "loss": None})
    return out


def export_dataset(
    inputs: RecordSet | str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    messages_format: Literal["list", "json"] = "list",
    include_meta: bool = True,
    include_conversations: bool = True,
    rows_per_shard: int | None = None,
    max_shard_size: int | str = "500MB",
    name: str | None = None,
    tokenizer: Tokenizer | None = None,
    overwrite: bool = False,
) -> DatasetDict:
    """Write genteach records as a Hub-ready dataset folder and return its DatasetDict.

    ``out_dir`` gets ``data/<skill>-NNNNN-of-MMMMM.parquet`` and ``README.md``; it loads
    with ``datasets.load_dataset(out_dir)`` or ``load_dataset("parquet", data_dir=out_dir)``.

    Args:
        inputs: output folders / records files (see :func:`collect_records`), or a
            :class:`RecordSet` already collected.
        out_dir: the folder to write; must be empty or missing unless ``overwrite``.
        messages_format: ``"list"`` (list of turn structs) or ``"json"`` (one JSON string, as
            in microsoft/orca-agentinstruct-1M-v1).
        include_meta: keep the ``meta`` column (provenance).
        include_conversations: add THUDM's ``conversations`` column (:func:`to_conversations`).
        rows_per_shard: most rows in one parquet file (None: no row limit).
        max_shard_size: most bytes (in memory, Arrow) per parquet file, e.g. ``"500MB"``.
        name: the dataset's title in the card (default: the folder name).
        tokenizer: counts the card's tokens (default: cl100k_base), e.g.
            ``tokenizer_for("path/to/student-model")``.
        overwrite: replace the ``data/`` and ``README.md`` of an earlier export in ``out_dir``.

    Returns:
        The DatasetDict, one split per skill; ``.push_to_hub(repo)`` works on it, though
        :func:`push_export` uploads exactly these files, card included.

    Raises:
        FileNotFoundError / ValueError: see :func:`collect_records`; also no records at all,
        or a non-empty ``out_dir`` without ``overwrite``.
    """
    from datasets import Dataset, DatasetDict
    from datasets.utils.py_utils import convert_file_size_to_int

    if messages_format not in ("list", "json"):
        raise ValueError(f"messages_format must be 'list' or 'json', not {messages_format!r}")
    if rows_per_shard is not None and rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be at least 1, not {rows_per_shard}")
    max_bytes = convert_file_size_to_int(max_shard_size)
    rs = inputs if isinstance(inputs, RecordSet) else collect_records(inputs)
    if rs.total == 0:
        read = ", ".join(str(s) for s in rs.sources)
        raise ValueError(f"no records to export (read {read or 'nothing'})")
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite=overwrite)

    features = dataset_features(
        messages_format, include_meta=include_meta, include_conversations=include_conversations
    )
    tok = tokenizer or tokenizer_for(None)
    dsd = DatasetDict()
    stats: dict[str, dict[str, Any]] = {}
    for skill in sorted(rs.by_skill):
        records = rs.by_skill[skill]
        rows = [_row(r, messages_format, include_meta, include_conversations) for r in records]
        ds = Dataset.from_list(rows, features=features, split=skill)
        del rows
        _write_shards(ds, out / DATA_DIR, skill, rows_per_shard, max_bytes)
        stats[skill] = _split_stats(records, tok)
        dsd[skill] = ds
    card = _render_card(
        rs,
        stats,
        name=name or out.resolve().name,
        json_messages=messages_format == "json",
        include_meta=include_meta,
        include_conversations=include_conversations,
        tokenizer=tok,
    )
    (out / CARD_FILE).write_text(card, encoding="utf-8")
    return dsd


def push_export(
    out_dir: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    api: Any = None,
) -> str:
    """Upload an exported folder (card and parquet shards) to a Hub dataset repository.

    The folder's layout is the one ``DatasetDict.push_to_hub`` writes, so the Hub viewer
    shows the splits; unlike ``push_to_hub`` it keeps this card. Shards on the Hub under
    ``data/`` that this export lacks are deleted in the same commit.

    Args:
        out_dir: a folder written by :func:`export_dataset`.
        repo_id: ``user/name`` of the dataset repository (created if missing).
        private: make a new repository private (None: the Hub's default).
        token: a Hub token (default: the logged-in one / ``HF_TOKEN``).
        api: a ``huggingface_hub.HfApi`` (default: a new one), e.g. a fake in tests.

    Returns:
        The URL of the commit.
    """
    out = Path(out_dir)
    if not (out / CARD_FILE).is_file() or not any((out / DATA_DIR).glob("*.parquet")):
        raise FileNotFoundError(f"{out}: no {CARD_FILE} and {DATA_DIR}/*.parquet; export first")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(out),
        allow_patterns=[CARD_FILE, f"{DATA_DIR}/*.parquet"],
        delete_patterns=[f"{DATA_DIR}/*"],
        commit_message=f"genteach {__version__} export",
    )
    return str(getattr(info, "commit_url", info))


def _prepare_out_dir(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; give a folder for the export")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"{out} is not empty; use another folder, or overwrite=True")
        if (out / RECORDS_FILE).exists() or (out / SHARDS_DIR).exists():
            raise ValueError(f"{out} is a genteach output folder; export to another folder")
        shutil.rmtree(out / DATA_DIR, ignore_errors=True)
        (out / CARD_FILE).unlink(missing_ok=True)
    (out / DATA_DIR).mkdir(parents=True, exist_ok=True)


#: Metadata whose shape depends on the task's kind, exported as JSON strings.
_JSON_META = ("key", "view", "slot")


def _row(
    record: Record, messages_format: str, include_meta: bool, include_conversations: bool
) -> dict[str, Any]:
    msgs = export_messages(record.messages)
    row: dict[str, Any] = {
        "id": record.id,
        "messages": json.dumps(msgs, ensure_ascii=False) if messages_format == "json" else msgs,
    }
    if include_conversations:
        row["conversations"] = to_conversations(record.messages)
    if include_meta:
        meta = record.meta.model_dump()
        meta["usage"] = {k: int(meta["usage"].get(k, 0)) for k in _USAGE_KEYS}
        # Kind-specific structures as JSON strings: one schema for every split.
        for name in _JSON_META:
            meta[name] = json.dumps(meta[name], ensure_ascii=False, sort_keys=True)
        row["meta"] = meta
    return row


def _write_shards(
    ds: Dataset, data_dir: Path, split: str, rows_per_shard: int | None, max_bytes: int
) -> list[Path]:
    import pyarrow.parquet as pq

    table = ds.data.table  # carries the features in its schema metadata, for load_dataset
    n = max(1, math.ceil(table.nbytes / max_bytes))
    if rows_per_shard:
        n = max(n, math.ceil(len(ds) / rows_per_shard))
    n = min(n, len(ds))
    files = []
    for i in range(n):
        start, stop = i * len(ds) // n, (i + 1) * len(ds) // n
        path = data_dir / f"{split}-{i:05d}-of-{n:05d}.parquet"
        pq.write_table(table.slice(start, stop - start), path, row_group_size=_ROW_GROUP)
        files.append(path)
    return files


def _turn_text(m: Message) -> str:
    calls = [tool_call_text(c) for c in m.get("tool_calls") or []]
    return "\n".join([m["content"], *calls])


def _split_stats(records: Sequence[Record], tokenizer: Tokenizer) -> dict[str, Any]:
    """Tokens (turn texts with their tool calls, no chat template) and turns of one split."""
    tokens: list[int] = []
    turns: list[int] = []
    answer_tokens = trained_tokens = 0
    for r in records:
        per_msg = [(m, tokenizer.count(_turn_text(m))) for m in r.messages]
        tokens.append(sum(n for _, n in per_msg))
        answer_tokens += sum(n for m, n in per_msg if m["role"] == "assistant")
        trained_tokens += sum(n for m, n in per_msg if m["role"] == "assistant" and is_trained(m))
        turns.append(sum(1 for m, _ in per_msg if m["role"] == "assistant"))
    return {
        "records": len(records),
        "tokens_min": min(tokens),
        "tokens_mean": statistics.fmean(tokens),
        "tokens_max": max(tokens),
        "tokens_total": sum(tokens),
        "assistant_tokens_total": answer_tokens,
        "trained_tokens_total": trained_tokens,
        "turns_mean": statistics.fmean(turns),
        "turns_max": max(turns),
        "sub_categories": Counter(r.meta.sub_category for r in records),
        "teachers": Counter(r.meta.teacher for r in records),
    }


def _render_card(
    rs: RecordSet,
    stats: dict[str, dict[str, Any]],
    *,
    name: str,
    json_messages: bool,
    include_meta: bool,
    include_conversations: bool,
    tokenizer: Tokenizer,
) -> str:
    """The dataset card: YAML front matter for the Hub, then counts, tokens and config."""
    front = {
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": s, "path": f"{DATA_DIR}/{s}-*.parquet"} for s in sorted(stats)
                ],
            }
        ],
        "task_categories": ["text-generation"],
        "tags": ["synthetic", "genteach", "agentinstruct"],
        "size_categories": [_size_category(rs.total)],
    }
    teachers: Counter[str] = Counter()
    for st in stats.values():
        teachers.update(st["teachers"])
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {name}",
        "",
        f"Synthetic chat pairs made by genteach {__version__} with "
        "AgentInstruct agent flows (content transformation, seed instruction, refinement). "
        "One split per skill, as in `microsoft/orca-agentinstruct-1M-v1`. Each conversation "
        "is given as genteach's `messages` (per-turn `trained` flags, tool calls)"
        + (
            " and as THUDM/AgentInstruct's `conversations` (`loss` per turn); train on either."
            if include_conversations
            else "."
        ),
        "",
        f"- records: {rs.total} in {len(stats)} splits",
        f"- teacher model(s): {', '.join(f'`{t}` ({n})' for t, n in teachers.most_common())}",
        f"- rejects (items or tasks that produced no record, not included): {rs.rejects}",
        f"- duplicate ids dropped across inputs: {rs.duplicates}",
        f"- held out for evaluation (`genteach eval split`), not exported: {rs.held_out}",
        f"- generation runs: {len(rs.runs)}; record files read: {len(rs.sources)}",
        "",
        "## Splits",
        "",
        f"Tokens: `{tokenizer.name}`{' (approximate)' if tokenizer.approximate else ''} tokens "
        "of the turns of a record (contents and tool calls), no chat template. Trained: tokens "
        "of the assistant turns a student learns from (scripted and demonstration turns are "
        "context only). Turns: assistant messages per record.",
        "",
        "| split | records | rejects | tokens min | tokens mean | tokens max | tokens total "
        "| assistant tokens | trained tokens | turns mean | turns max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sorted(stats):
        st = stats[s]
        lines.append(
            f"| {s} | {st['records']} | {rs.rejects_by_skill.get(s, 0)} | {st['tokens_min']} "
            f"| {st['tokens_mean']:.1f} | {st['tokens_max']} | {st['tokens_total']} "
            f"| {st['assistant_tokens_total']} | {st['trained_tokens_total']} "
            f"| {st['turns_mean']:.2f} | {st['turns_max']} |"
        )
    total_tokens = sum(st["tokens_total"] for st in stats.values())
    lines += [f"| **all** | {rs.total} | {rs.rejects} | | | | {total_tokens} | | | | |", ""]
    lines += ["### Sub-categories", ""]
    for s in sorted(stats):
        subs = ", ".join(f"{k} {n}" for k, n in sorted(stats[s]["sub_categories"].items()))
        lines.append(f"- **{s}**: {subs}")
    lines += [
        "",
        "## Schema",
        "",
        "- `id` (string): content hash of the messages, unique across splits",
        f"- `messages` ({'JSON string' if json_messages else 'list'}): genteach's turns "
        '`{"role", "content", "trained", "tool_calls", "tool_call_id", "name"}`, roles system / '
        "user / assistant / tool. `trained` is true on the assistant turns to learn, false on "
        "context (prompts, tool results, scripted and demonstration answers); an assistant "
        '`tool_calls` item is `{"id", "name", "arguments"}` (arguments: JSON text); a tool turn '
        "names the call it answers in `tool_call_id`. "
        + ("Keys a turn does not have are left out." if json_messages else "Null where unset."),
    ]
    if include_conversations:
        lines.append(
            '- `conversations` (list): the same turns in THUDM/AgentInstruct\'s form, `{"from": '
            '"human"|"gpt", "value", "loss"}`: `loss` is the trained flag on gpt turns, null on '
            "human turns; the system prompt heads the first human turn; tool calls are "
            "`<tool_call>` blocks in the gpt turn and tool results `<tool_response>` blocks in "
            "a human turn"
        )
    if include_meta:
        lines.append(
            "- `meta` (struct): skill, sub_category, seed_id, unit, agents, teacher, usage, "
            "task_id, parent_task_id, refinement_round/goal/suggestion, transformer, "
            "instruction, key / view / slot (JSON strings: the typed answer key, how the task "
            "was shown, the values drawn for its agent), verification (kind, status, detail, "
            "answer), outcome, prompts_sha256, genteach_version, created_at"
        )
    lines += [
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("<this repo or folder>", split="{sorted(stats)[0]}")',
        "```",
        "",
        "## Generation config",
        "",
    ]
    if not rs.runs:
        lines.append("No run.json was found next to the records.")
    for i, run in enumerate(rs.runs, 1):
        lines += [f"Run {i}:", "", "```yaml", yaml.safe_dump(run, sort_keys=False).rstrip()]
        lines += ["```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    for limit, label in ((1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


__all__ = [
    "CARD_FILE",
    "DATA_DIR",
    "SHARDS_DIR",
    "RecordSet",
    "collect_records",
    "dataset_features",
    "export_dataset",
    "export_messages",
    "find_record_files",
    "push_export",
    "to_conversations",
    "tool_call_text",
]
