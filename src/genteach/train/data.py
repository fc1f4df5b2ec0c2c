"""Training data: load sources, normalise rows, mix by ratio, tokenize with loss masks, report.

Sources (one :class:`SourceConfig` each):

* genteach JSONL or a ``genteach export`` (``messages``: ``{"role", "content"}`` turns that may
  carry ``trained``, ``tool_calls``, ``tool_call_id`` and ``name``), or a folder written by
  ``datasets.Dataset.save_to_disk``; an assistant turn with ``trained: false`` stays in the
  context but is not trained;
* the ``microsoft/orca-agentinstruct-1M-v1`` layout: ``messages`` is a JSON *string*, one split
  per skill (a local copy: ``path`` is the folder, ``splits`` the skills to read);
* ``THUDM/AgentInstruct``: ``conversations`` of ``{"from", "value", "loss"}``; turns with
  ``loss: false`` stay in the context but are not trained;
* TRL prompt/completion rows (strings, or message lists).

Every row becomes ``messages`` with a ``train`` flag per turn (only assistant turns can be
trained), or is counted as bad with a reason. Bad rows never stop a run: they are reported
and left out.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from datasets import Dataset, Features
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "BAD_REASONS",
    "DataArguments",
    "DataReport",
    "Normalized",
    "SourceConfig",
    "SourceReport",
    "Turn",
    "load_source",
    "mix_counts",
    "normalize_row",
    "prepare_dataset",
    "tokenize_batch",
]

#: Why a row is left out. The report counts each.
BAD_REASONS: dict[str, str] = {
    "malformed": "not a JSON object / unknown format / unknown role / bad tool call or flag",
    "empty": "no message with text",
    "system_not_first": "a system message after the first turn",
    "no_assistant_turn": "no assistant turn with text",
    "no_trained_turn": "every assistant turn has loss (or trained) false",
    "over_long": "no trained token left after truncation to max_length",
    "template_mismatch": "the template's generation blocks do not match the assistant turns",
}
FORMATS = ("auto", "messages", "orca", "thudm", "prompt_completion")
_JSON_LINE = "_json_line"
_MIXED_COLUMNS = ("input_ids", "labels", "source", "n_tokens", "n_trained")
_THUDM_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


@dataclass
class SourceConfig:
    """One data source of the mix."""

    path: str
    """A .jsonl/.json/.parquet file or glob, a ``save_to_disk`` folder, or a ``datasets`` path."""
    format: str = "auto"
    """auto | messages | orca | thudm | prompt_completion (auto looks at the columns)."""
    splits: list[str] | None = None
    """Splits to read; ``None`` reads them all (orca-agentinstruct-1M: one per skill)."""
    name: str | None = None
    """Name in the report; defaults to the file or folder name."""
    weight: float | None = None
    """Share of the mix (AgentTuning's eta: 0.2 agent / 0.8 general). None on all: take all."""
    limit: int | None = None
    """Read at most this many rows (a seeded random sample)."""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.weight is not None and self.weight <= 0:
            raise ValueError(f"weight must be > 0, got {self.weight}")
        if self.name is None:
            self.name = os.path.basename(self.path.rstrip("/")) or self.path


@dataclass
class DataArguments:
    """Where the training data comes from (the ``sources:`` list of a recipe YAML)."""

    sources: list[SourceConfig] = field(
        default_factory=list,
        metadata={
            "help": "Data sources (set them in the YAML): path, format, splits, weight, limit."
        },
    )
    mix_seed: int = field(default=42, metadata={"help": "Seed of limits, mixing and shuffling."})
    report_path: str | None = field(
        default=None,
        metadata={
            "help": "Where to write the data report (JSON); default <output_dir>/data_report.json."
        },
    )

    def __post_init__(self) -> None:
        self.sources = [
            s
            if isinstance(s, SourceConfig)
            else SourceConfig(path=s)
            if isinstance(s, str)
            else SourceConfig(**s)
            for s in self.sources
        ]
        weighted = [s.weight is not None for s in self.sources]
        if any(weighted) and not all(weighted):
            raise ValueError("give a weight to every source or to none")


class Turn(TypedDict):
    """One normalised turn: ``train`` is True only on assistant turns that are learned.

    ``tool_calls`` (assistant turns) holds ``{"id", "name", "arguments"}`` with the arguments
    as JSON text; ``tool_call_id`` and ``name`` belong to ``tool`` turns (None elsewhere).
    """

    role: str
    content: str
    train: bool
    tool_calls: list[dict[str, str]]
    tool_call_id: str | None
    name: str | None


@dataclass
class Normalized:
    """A row in the one shape training uses; ``bad`` names the reason when it is left out."""

    messages: list[Turn] = field(default_factory=list)
    prompt: str = ""
    completion: str = ""
    bad: str = ""


# Normalising rows (pure functions)


def _tool_call(raw: Any) -> dict[str, str] | None:
    """genteach's ``{"id", "name", "arguments"}`` or OpenAI's ``{"id", "function": {...}}``."""
    if not isinstance(raw, Mapping):
        return None
    function = raw.get("function")
    body = function if isinstance(function, Mapping) else raw
    name, arguments, call_id = body.get("name"), body.get("arguments"), raw.get("id")
    if isinstance(arguments, Mapping):
        arguments = json.dumps(arguments, ensure_ascii=False)
    if arguments is None:
        arguments = "{}"
    if not isinstance(name, str) or not name or not isinstance(arguments, str):
        return None
    if call_id is not None and not isinstance(call_id, str):
        return None
    return {"id": call_id or "", "name": name, "arguments": arguments}


def _message(item: Mapping[str, Any], role: Any, content: Any, train: bool) -> Turn | None:
    """One turn, or None when it is malformed. ``train`` is the format's flag for the turn."""
    if role not in ("system", "user", "assistant", "tool"):
        return None
    if content is None:
        content = ""
    if not isinstance(content, str):
        return None
    calls: list[dict[str, str]] = []
    raw_calls = item.get("tool_calls")
    if raw_calls is not None and role == "assistant":
        if not isinstance(raw_calls, list):
            return None
        for raw in raw_calls:
            call = _tool_call(raw)
            if call is None:
                return None
            calls.append(call)
    call_id, name = item.get("tool_call_id"), item.get("name")
    if role != "tool":
        call_id = name = None
    if not isinstance(call_id, (str, type(None))) or not isinstance(name, (str, type(None))):
        return None
    return {
        "role": role,
        "content": content,
        "train": train and role == "assistant",
        "tool_calls": calls,
        "tool_call_id": call_id,
        "name": name,
    }


def _has_text(m: Turn) -> bool:
    return bool(m["content"].strip() or m["tool_calls"])


def _check(messages: list[Turn]) -> Normalized:
    messages = [m for m in messages if not (m["role"] == "system" and not m["content"].strip())]
    if not any(_has_text(m) for m in messages):
        return Normalized(bad="empty")
    if any(m["role"] == "system" for m in messages[1:]):
        return Normalized(bad="system_not_first")
    for m in messages:  # an assistant turn without text would only train its EOS
        if m["role"] == "assistant" and not _has_text(m):
            m["train"] = False
    if not any(m["role"] == "assistant" and _has_text(m) for m in messages):
        return Normalized(bad="no_assistant_turn")
    if not any(m["train"] for m in messages):
        return Normalized(bad="no_trained_turn")
    return Normalized(messages=messages)


def _from_messages(raw: Any, trained: bool = True) -> list[Turn] | None:
    """genteach/OpenAI messages; a turn's own ``trained`` flag wins over the default
    (assistant turns trained), and ``trained=False`` masks every turn (a prompt)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return None
    if not isinstance(raw, list):
        return None
    out: list[Turn] = []
    for item in raw:
        if not isinstance(item, Mapping):
            return None
        flag = item.get("trained")
        if flag is not None and not isinstance(flag, bool):
            return None
        own = flag if flag is not None else item.get("role") == "assistant"
        message = _message(item, item.get("role"), item.get("content"), trained and own)
        if message is None:
            return None
        out.append(message)
    return out


def _from_thudm(raw: Any) -> list[Turn] | None:
    if not isinstance(raw, list):
        return None
    out: list[Turn] = []
    for item in raw:
        if not isinstance(item, Mapping):
            return None
        speaker = item.get("from")
        role = "system" if speaker == "system" else _THUDM_ROLES.get(str(speaker))
        message = _message({}, role, item.get("value"), item.get("loss") is not False)
        if message is None:
            return None
        out.append(message)
    return out


def normalize_row(row: Mapping[str, Any], fmt: str = "auto") -> Normalized:
    """Turn one raw row of any supported format into :class:`Normalized`.

    Example:
        >>> normalize_row({"conversations": [{"from": "human", "value": "hi", "loss": None},
        ...                                  {"from": "gpt", "value": "OK.", "loss": False}]}).bad
        'no_trained_turn'
    """
    if row.get(_JSON_LINE) is not None:
        line = row[_JSON_LINE]
        if not line.strip():
            return Normalized(bad="empty")
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            return Normalized(bad="malformed")
        if not isinstance(parsed, Mapping):
            return Normalized(bad="malformed")
        return normalize_row(parsed, fmt)
    if fmt == "auto":  # a genteach export has both columns: its messages are the richer
        if row.get("messages") is not None:
            fmt = "messages"
        elif row.get("conversations") is not None:
            fmt = "thudm"
        elif row.get("prompt") is not None and row.get("completion") is not None:
            fmt = "prompt_completion"
        else:
            return Normalized(bad="malformed")
    if fmt == "thudm":
        messages = _from_thudm(row.get("conversations"))
    elif fmt in ("messages", "orca"):
        messages = _from_messages(row.get("messages"))
    else:
        prompt, completion = row.get("prompt"), row.get("completion")
        if isinstance(prompt, str) and isinstance(completion, str):
            if not completion.strip():
                return Normalized(bad="empty" if not prompt.strip() else "no_assistant_turn")
            return Normalized(prompt=prompt, completion=completion)
        head, tail = _from_messages(prompt, trained=False), _from_messages(completion)
        messages = None if head is None or tail is None else head + tail
    return Normalized(bad="malformed") if messages is None else _check(messages)


# Loading


def _features() -> Features:
    from datasets import Features, List, Value

    call = {"id": Value("string"), "name": Value("string"), "arguments": Value("string")}
    message = {
        "role": Value("string"),
        "content": Value("string"),
        "train": Value("bool"),
        "tool_calls": List(call),
        "tool_call_id": Value("string"),
        "name": Value("string"),
    }
    return Features(
        {
            "source": Value("string"),
            "messages": List(message),
            "prompt": Value("string"),
            "completion": Value("string"),
            "bad": Value("string"),
        }
    )


def load_source(source: SourceConfig, seed: int = 42, num_proc: int | None = None) -> Dataset:
    """Load one source as raw rows (its ``limit`` applied), columns as the format needs them."""
    return _load_source(source, seed, num_proc)[0]


def _json_lines(files: Sequence[str], num_proc: int | None) -> Dataset:
    """Lines as text, parsed row by row later: one bad line is one bad row, not a crash.
    Empty files give no row (an empty run's records.jsonl is a source of 0 rows)."""
    from datasets import Dataset, Features, Value, load_dataset

    files = [f for f in files if os.path.getsize(f) > 0]
    if not files:
        return Dataset.from_dict({_JSON_LINE: []}, features=Features({_JSON_LINE: Value("string")}))
    loaded = load_dataset("text", data_files=files, split="train", num_proc=num_proc)
    return loaded.rename_column("text", _JSON_LINE)


def _load_source(source: SourceConfig, seed: int, num_proc: int | None) -> tuple[Dataset, int]:
    """:func:`load_source`, and how many of its records ``genteach eval split`` held out."""
    from datasets import Dataset, DatasetDict, concatenate_datasets, load_dataset, load_from_disk

    path = source.path
    held_out = _held_out(path)
    held_out_rows = 0
    if os.path.isdir(path) and _is_run_folder(path):  # its records files (shards included)
        from genteach.export import find_record_files

        loaded = _json_lines([str(f) for f in find_record_files(source.path)], num_proc)
    elif path.endswith((".jsonl", ".json", ".parquet")):  # a file or a glob
        files = sorted(glob.glob(path))
        if not files:
            raise FileNotFoundError(f"source {source.name!r}: no file matches {path!r}")
        if path.endswith(".parquet"):
            loaded = load_dataset("parquet", data_files=files, split="train")
        else:
            loaded = _json_lines(files, num_proc)
    else:
        if os.path.isdir(path) and (
            os.path.exists(os.path.join(path, "dataset_dict.json"))
            or os.path.exists(os.path.join(path, "state.json"))
        ):
            on_disk = load_from_disk(path)
        elif source.splits:
            on_disk = DatasetDict({s: load_dataset(path, split=s) for s in source.splits})
        else:
            on_disk = load_dataset(path)
        if isinstance(on_disk, Dataset):
            loaded = on_disk
        else:
            names = source.splits or list(on_disk.keys())
            loaded = concatenate_datasets([on_disk[name] for name in names])
    if held_out and _JSON_LINE in loaded.column_names:
        before = len(loaded)
        loaded = loaded.filter(lambda row: _line_id(row[_JSON_LINE]) not in held_out)
        held_out_rows = before - len(loaded)
        log.info(
            "source %r: %d held-out eval records left out (eval/split.json of the run)",
            source.name,
            held_out_rows,
        )
    keep = (_JSON_LINE, "messages", "conversations", "prompt", "completion")
    loaded = loaded.select_columns([c for c in keep if c in loaded.column_names])
    if source.limit is not None and source.limit < len(loaded):
        loaded = loaded.shuffle(seed=seed).select(range(source.limit))
    return loaded, held_out_rows


def _is_run_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "records.jsonl")) or os.path.isdir(
        os.path.join(path, "shards")
    )


def _held_out(path: str) -> set[str]:
    """Ids that ``genteach eval split`` held out of the run this source belongs to (a run
    folder or one of its records files), so training never sees them."""
    candidates = [path] if os.path.isdir(path) else sorted(glob.glob(path))
    if not any(os.path.isdir(c) or c.endswith(".jsonl") for c in candidates):
        return set()
    from genteach.heldout import held_out_ids

    ids: set[str] = set()
    for c in candidates:
        ids |= held_out_ids(c)
    return ids


def _line_id(line: str) -> str | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj.get("id") if isinstance(obj, dict) else None


def _normalize_batch(batch: dict[str, list[Any]], fmt: str, name: str) -> dict[str, list[Any]]:
    columns = list(batch)
    size = len(batch[columns[0]]) if columns else 0
    out: dict[str, list[Any]] = {
        k: [] for k in ("source", "messages", "prompt", "completion", "bad")
    }
    for i in range(size):
        row = normalize_row({k: batch[k][i] for k in columns}, fmt)
        out["source"].append(name)
        out["messages"].append(row.messages)
        out["prompt"].append(row.prompt)
        out["completion"].append(row.completion)
        out["bad"].append(row.bad)
    return out


# Mixing


def mix_counts(available: Sequence[int], weights: Sequence[float | None]) -> list[int]:
    """How many rows to take from each source so the mix follows the weights, with no repeats.

    The largest mix that keeps the ratios: the scarcest source (relative to its weight) is
    taken whole, the others subsampled. With no weights, everything is taken.

    Example:
        >>> mix_counts([1866, 60000], [0.2, 0.8])  # AgentTuning: eta = 0.2
        [1866, 7464]
    """
    if all(w is None for w in weights):
        return list(available)
    given = [float(w or 0.0) for w in weights]
    shares = [w / sum(given) for w in given]
    total = min(n / p for n, p in zip(available, shares, strict=True) if p > 0)
    return [min(n, round(p * total)) for n, p in zip(available, shares, strict=True)]


# Tokenizing with loss masks


def _token_range(encoding: Any, row: int, start: int, end: int) -> tuple[int, int] | None:
    """Tokens that begin inside characters [start, end) of text ``row`` (half-open range).

    A token that begins before ``start`` and runs into the span (a merge across the
    boundary, such as ``][`` in ``[/INST][TOOL_CALLS]`` with Mistral's tokenizer) is left
    out: it is prompt text, never trained."""
    first = last = None
    for char in range(start, end):
        first = encoding.char_to_token(row, char)
        if first is not None:
            break
    for char in range(end - 1, start - 1, -1):
        last = encoding.char_to_token(row, char)
        if last is not None:
            break
    if first is None or last is None:
        return None
    if encoding.token_to_chars(row, first).start < start:
        first += 1
    return (first, last + 1) if first <= last else None


def tokenize_batch(
    batch: Mapping[str, list[Any]],
    tokenizer: PreTrainedTokenizerBase,
    template: str,
    max_length: int | None,
    assistant_only_loss: bool = True,
    completion_only_loss: bool | None = None,
) -> dict[str, list[Any]]:
    """Tokenize normalised rows; labels are -100 outside the trained turns.

    Chat rows are rendered with ``template`` and only the generation blocks of turns with
    ``train`` set are trained (all tokens when ``assistant_only_loss`` is False). Text
    prompt/completion rows train the completion (and an EOS), as TRL does. Rows are cut to
    ``max_length``; a row with no trained token left is marked ``over_long``.
    """
    from genteach.train.templates import render_with_spans

    size = len(batch["messages"])
    ids: list[list[int]] = [[] for _ in range(size)]
    labels: list[list[int]] = [[] for _ in range(size)]
    bad: list[str] = list(batch["bad"])
    chat = [i for i in range(size) if not bad[i] and batch["messages"][i]]
    if chat:
        convs = [batch["messages"][i] for i in chat]
        texts, spans = render_with_spans(tokenizer, template, convs)
        encoding = tokenizer(texts, add_special_tokens=False)
        for k, i in enumerate(chat):
            row_ids = list(encoding["input_ids"][k])
            ids[i] = row_ids
            if not assistant_only_loss:
                labels[i] = list(row_ids)
                continue
            flags = [bool(m["train"]) for m in convs[k] if m["role"] == "assistant"]
            row_spans = spans[k]
            if len(row_spans) != len(flags):
                if not all(flags):  # cannot tell which block is which turn
                    bad[i] = "template_mismatch"
                    continue
                flags = [True] * len(row_spans)
            row_labels = [-100] * len(row_ids)
            for is_trained, (start, end) in zip(flags, row_spans, strict=True):
                covered = _token_range(encoding, k, start, end) if is_trained else None
                if covered is not None:
                    row_labels[covered[0] : covered[1]] = row_ids[covered[0] : covered[1]]
            labels[i] = row_labels
    for i in range(size):
        if bad[i] or batch["messages"][i]:
            continue
        prompt, completion = batch["prompt"][i], batch["completion"][i]
        eos = tokenizer.eos_token or ""
        if eos and not completion.endswith(eos):
            completion += eos
        full = tokenizer(prompt + completion)["input_ids"]
        head = tokenizer(prompt)["input_ids"]
        shared = 0
        while shared < min(len(head), len(full)) and head[shared] == full[shared]:
            shared += 1
        ids[i] = list(full)
        masked = shared if completion_only_loss is not False else 0
        labels[i] = [-100] * masked + list(full[masked:])
    n_tokens, n_trained, truncated = [], [], []
    for i in range(size):
        cut = max_length is not None and len(ids[i]) > max_length
        if cut:
            ids[i], labels[i] = ids[i][:max_length], labels[i][:max_length]
        trained = sum(1 for t in labels[i] if t != -100)
        if not bad[i] and trained == 0:
            bad[i] = "over_long" if cut else "template_mismatch"
        n_tokens.append(len(ids[i]))
        n_trained.append(trained)
        truncated.append(bool(cut))
    return {
        "input_ids": ids,
        "labels": labels,
        "n_tokens": n_tokens,
        "n_trained": n_trained,
        "truncated": truncated,
        "bad": bad,
    }


# Report


@dataclass
class SourceReport:
    """What one source gave, from rows read to tokens trained.

    ``rows_usable`` counts the rows left after normalising and tokenizing (bad and over-long
    rows dropped); the mix is taken from those, so ``rows_kept`` follows the weights.
    ``held_out`` counts the records that ``genteach eval split`` kept out of training (not
    in ``rows_read``).
    """

    name: str
    weight: float | None
    rows_read: int
    rows_usable: int = 0
    rows_kept: int = 0
    truncated: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    bad: dict[str, int] = field(default_factory=dict)
    held_out: int = 0


@dataclass
class DataReport:
    """What went into training; ``format()`` prints it, ``to_dict()`` is its JSON."""

    sources: list[SourceReport]
    max_length: int | None
    seed: int
    assistant_only_loss: bool = True

    @property
    def rows_kept(self) -> int:
        return sum(s.rows_kept for s in self.sources)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sources)

    @property
    def trained_tokens(self) -> int:
        return sum(s.trained_tokens for s in self.sources)

    def shares(self) -> dict[str, float]:
        """Each source's share of the kept rows (what the weights ask for)."""
        total = self.rows_kept
        return {s.name: s.rows_kept / total if total else 0.0 for s in self.sources}

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rows_kept": self.rows_kept,
            "tokens": self.tokens,
            "trained_tokens": self.trained_tokens,
            "shares": self.shares(),
        }

    def format(self) -> str:
        head = (
            f"{'source':<24}{'weight':>7}{'read':>9}{'usable':>9}{'kept':>9}"
            f"{'share':>7}{'tokens':>12}{'trained':>9}"
        )
        lines = [f"data report (max_length={self.max_length}, seed={self.seed})", head]
        shares = self.shares()
        for s in self.sources:
            trained = s.trained_tokens / s.tokens if s.tokens else 0.0
            weight = "-" if s.weight is None else f"{s.weight:g}"
            lines.append(
                f"{s.name[:23]:<24}{weight:>7}{s.rows_read:>9}{s.rows_usable:>9}{s.rows_kept:>9}"
                f"{shares[s.name]:>7.1%}{s.tokens:>12}{trained:>9.1%}"
            )
            for reason, count in sorted(s.bad.items()):
                lines.append(f"    bad rows, {reason}: {count} ({BAD_REASONS.get(reason, '')})")
            if s.truncated:
                lines.append(f"    truncated to max_length (still trained): {s.truncated}")
            if s.held_out:
                lines.append(f"    held out for evaluation (genteach eval split): {s.held_out}")
        share = self.trained_tokens / self.tokens if self.tokens else 0.0
        lines.append(
            f"total: {self.rows_kept} rows, {self.tokens} tokens, {share:.1%} of them trained"
        )
        if not self.assistant_only_loss:
            lines.append("assistant_only_loss is off: every token is trained, prompts included")
        return "\n".join(lines)


def _count(dataset: Dataset, key: str, columns: Sequence[str]) -> dict[tuple[str, str], list[int]]:
    """Per (source, key value): row count and the sums of ``columns``, via Arrow."""
    table = dataset.select_columns(["source", key, *columns]).with_format("arrow")[:]
    grouped = table.group_by(["source", key]).aggregate(
        [("source", "count"), *[(c, "sum") for c in columns]]
    )
    out: dict[tuple[str, str], list[int]] = {}
    for row in grouped.to_pylist():
        sums = [int(row[f"{c}_sum"] or 0) for c in columns]
        out[(str(row["source"]), str(row[key]))] = [int(row["source_count"]), *sums]
    return out


def _not_bad(batch: Mapping[str, list[Any]]) -> list[bool]:
    return [not r for r in batch["bad"]]


def prepare_dataset(
    data_args: DataArguments,
    tokenizer: PreTrainedTokenizerBase,
    template: str,
    *,
    max_length: int | None,
    assistant_only_loss: bool = True,
    completion_only_loss: bool | None = None,
    num_proc: int | None = None,
) -> tuple[Dataset, DataReport]:
    """Load, normalise, tokenize and mix every source; return the rows to train and the report.

    Each source is tokenized before mixing, so rows dropped as bad or over-long never count
    towards the mix: the kept rows follow the weights. The dataset has ``input_ids``,
    ``labels`` (-100 where masked), ``source``, ``n_tokens`` and ``n_trained``.
    """
    from datasets import Dataset, concatenate_datasets

    if not data_args.sources:
        raise ValueError("no data: set `sources:` in the config")
    seed = data_args.mix_seed
    reports: list[SourceReport] = []
    usable: list[Dataset | None] = []
    for source in data_args.sources:
        raw, held_out = _load_source(source, seed, num_proc)
        assert source.name is not None
        if len(raw) == 0:  # nothing to normalise (datasets maps an empty table to no columns)
            reports.append(SourceReport(source.name, source.weight, 0, held_out=held_out))
            usable.append(None)
            continue
        normal = raw.map(
            _normalize_batch,
            batched=True,
            fn_kwargs={"fmt": source.format, "name": source.name},
            remove_columns=raw.column_names,
            features=_features(),
            num_proc=num_proc,
            desc=f"Normalising {source.name}",
        )
        report = SourceReport(
            name=source.name, weight=source.weight, rows_read=len(raw), held_out=held_out
        )
        good = normal.filter(_not_bad, batched=True, num_proc=num_proc)
        tokenized = good.map(
            tokenize_batch,
            batched=True,
            fn_kwargs={
                "tokenizer": tokenizer,
                "template": template,
                "max_length": max_length,
                "assistant_only_loss": assistant_only_loss,
                "completion_only_loss": completion_only_loss,
            },
            remove_columns=["messages", "prompt", "completion"],
            num_proc=num_proc,
            desc=f"Tokenizing {source.name}",
        )
        for bad_rows in (normal, tokenized):
            for (_, reason), (count,) in _count(bad_rows, "bad", []).items():
                if reason:
                    report.bad[reason] = report.bad.get(reason, 0) + count
        kept = tokenized.filter(_not_bad, batched=True, num_proc=num_proc)
        report.rows_usable = len(kept)
        reports.append(report)
        usable.append(kept)
    takes = mix_counts(
        [0 if d is None else len(d) for d in usable], [s.weight for s in data_args.sources]
    )
    parts = []
    for report, dataset, take in zip(reports, usable, takes, strict=True):
        if dataset is None:
            continue
        part = dataset.shuffle(seed=seed).select(range(take)) if take < len(dataset) else dataset
        if len(part):
            count, tokens, trained, truncated = _count(
                part, "bad", ["n_tokens", "n_trained", "truncated"]
            )[(str(report.name), "")]
            report.rows_kept, report.tokens, report.trained_tokens = count, tokens, trained
            report.truncated = truncated
        parts.append(part)
    whole = DataReport(
        sources=reports, max_length=max_length, seed=seed, assistant_only_loss=assistant_only_loss
    )
    if not parts:  # every source was empty
        return Dataset.from_dict({c: [] for c in _MIXED_COLUMNS}), whole
    mixed = concatenate_datasets(parts).shuffle(seed=seed).remove_columns(["bad", "truncated"])
    return mixed, whole
