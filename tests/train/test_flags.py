"""Per-turn trained flags end to end: records with a scripted "Ok.", a demo and tool turns,
exported (``messages`` and THUDM ``conversations``) and trained by the recipe.

Each test states exactly which text is trained: the generation blocks of assistant turns
whose flag is true, EOS included; everything else (system, user, the scripted and demo
answers, tool results) stays in the context with label -100.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from genteach.export import export_dataset
from genteach.models.base import Message
from genteach.records import JsonlWriter, Record, RecordMeta
from genteach.train.data import normalize_row
from genteach.train.templates import read_template

from .conftest import masked_text, tokenize, trained_runs, trained_text

SYSTEM = "You act in a Linux shell."
CALL = {"id": "call_1", "name": "bash", "arguments": '{"cmd": "wc -l notes.txt"}'}
TRAJECTORY: list[Message] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Answer with one command. Say Ok. if you understand."},
    {"role": "assistant", "content": "Ok.", "trained": False},  # scripted
    {"role": "user", "content": "Demo: count the files in /etc."},
    {"role": "assistant", "content": "ls -1 /etc | wc -l", "trained": False},  # demonstration
    {"role": "user", "content": "Task: how many lines has notes.txt?"},
    {"role": "assistant", "content": "I will count them.", "tool_calls": [CALL]},  # type: ignore[list-item]
    {"role": "tool", "content": "3 notes.txt", "tool_call_id": "call_1", "name": "bash"},
    {"role": "assistant", "content": "notes.txt has 3 lines."},
]
MISTRAL_TEXT = (
    "<s>[INST] You act in a Linux shell.\n\nAnswer with one command. Say Ok. if you understand."
    " [/INST] Ok.</s>[INST] Demo: count the files in /etc. [/INST] ls -1 /etc | wc -l</s>"
    "[INST] Task: how many lines has notes.txt? [/INST] I will count them.[TOOL_CALLS] "
    '[{"name": "bash", "arguments": {"cmd": "wc -l notes.txt"}}]</s>'
    "[TOOL_RESULTS] 3 notes.txt[/TOOL_RESULTS] notes.txt has 3 lines.</s>"
)
MISTRAL_TRAINED = (
    ' I will count them.[TOOL_CALLS] [{"name": "bash", "arguments": {"cmd": "wc -l notes.txt"}}]'
    "</s> notes.txt has 3 lines.</s>"
)
QWEN_TEXT = (
    "<|im_start|>system\nYou act in a Linux shell.<|im_end|>\n"
    "<|im_start|>user\nAnswer with one command. Say Ok. if you understand.<|im_end|>\n"
    "<|im_start|>assistant\nOk.<|im_end|>\n"
    "<|im_start|>user\nDemo: count the files in /etc.<|im_end|>\n"
    "<|im_start|>assistant\nls -1 /etc | wc -l<|im_end|>\n"
    "<|im_start|>user\nTask: how many lines has notes.txt?<|im_end|>\n"
    "<|im_start|>assistant\nI will count them.\n<tool_call>\n"
    '{"name": "bash", "arguments": {"cmd": "wc -l notes.txt"}}\n</tool_call><|im_end|>\n'
    "<|im_start|>user\n<tool_response>\n3 notes.txt\n</tool_response><|im_end|>\n"
    "<|im_start|>assistant\nnotes.txt has 3 lines.<|im_end|>\n"
)
QWEN_TRAINED = (
    'I will count them.\n<tool_call>\n{"name": "bash", "arguments": {"cmd": "wc -l notes.txt"}}'
    "\n</tool_call><|im_end|>\nnotes.txt has 3 lines.<|im_end|>\n"
)


@pytest.mark.parametrize(
    ("tokenizer", "template", "text", "trained"),
    [
        ("mistral_tokenizer", "mistral.jinja", MISTRAL_TEXT, MISTRAL_TRAINED),
        ("tiny_tokenizer", "qwen2.jinja", QWEN_TEXT, QWEN_TRAINED),
    ],
)
def test_only_flagged_assistant_turns_are_trained(
    request: pytest.FixtureRequest, tokenizer: str, template: str, text: str, trained: str
) -> None:
    tok = request.getfixturevalue(tokenizer)
    rendered, ids, labels = tokenize(tok, {"messages": TRAJECTORY}, read_template(template))
    assert rendered == text
    runs = trained_runs(tok, rendered, ids, labels)
    assert "".join(runs) == trained and len(runs) == 2  # the tool-call turn and the answer
    assert all(label in (-100, token) for token, label in zip(ids, labels, strict=True))
    masked = masked_text(tok, rendered, ids, labels)
    assert "Ok." in masked and "ls -1 /etc | wc -l" in masked and "3 notes.txt" in masked


def test_trained_true_on_a_non_assistant_turn_is_not_trained(mistral_tokenizer: Any) -> None:
    row = {
        "messages": [
            {"role": "user", "content": "Add two and three.", "trained": True},
            {"role": "assistant", "content": "Five."},
        ]
    }
    text, ids, labels = tokenize(mistral_tokenizer, row, read_template("mistral.jinja"))
    assert trained_text(mistral_tokenizer, text, ids, labels) == " Five.</s>"


def after_user(turn: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "a"}, turn]}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (after_user({"role": "assistant", "content": "b", "trained": "yes"}), "malformed"),
        (after_user({"role": "assistant", "content": "b", "trained": False}), "no_trained_turn"),
        (
            after_user({"role": "assistant", "content": "", "tool_calls": [{"name": ""}]}),
            "malformed",
        ),
        (after_user({"role": "assistant", "content": "", "tool_calls": "f()"}), "malformed"),
        (after_user({"role": "tool", "content": "1", "tool_call_id": 3}), "malformed"),
    ],
)
def test_bad_flags_and_tool_calls(row: dict[str, Any], reason: str) -> None:
    assert normalize_row(row).bad == reason


def test_openai_style_tool_calls_and_a_call_without_text(mistral_tokenizer: Any) -> None:
    row = {
        "messages": [
            {"role": "user", "content": "Files?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "content": "a.txt", "tool_call_id": "c"},
            {"role": "assistant", "content": "One file."},
        ]
    }
    text, ids, labels = tokenize(mistral_tokenizer, row, read_template("mistral.jinja"))
    assert trained_text(mistral_tokenizer, text, ids, labels) == (
        ' [TOOL_CALLS] [{"name": "ls", "arguments": {}}]</s> One file.</s>'
    )


# Through the export and the recipe


def trajectory_run(folder: Path) -> Path:
    meta = RecordMeta(
        skill="tool_use",
        sub_category="shell",
        seed_id="s0",
        unit="tool_use/s0",
        agents=["env"],
        teacher="t",
        usage={},
        task_id="t0",
    )
    folder.mkdir(parents=True)
    with JsonlWriter(folder / "records.jsonl") as writer:
        writer.write(Record(id=Record.make_id(TRAJECTORY), messages=TRAJECTORY, meta=meta))
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flags")
    out = folder / "hf"
    export_dataset(trajectory_run(folder / "run"), out)
    return out


def test_export_then_train_messages_and_conversations(
    mistral_tokenizer: Any, exported: Path
) -> None:
    import datasets

    row = datasets.load_dataset(str(exported), split="tool_use")[0]
    mistral = read_template("mistral.jinja")
    text, ids, labels = tokenize(mistral_tokenizer, row, mistral)  # auto picks `messages`
    assert text == MISTRAL_TEXT
    assert trained_text(mistral_tokenizer, text, ids, labels) == MISTRAL_TRAINED
    # THUDM's form of the same record: loss false on "Ok." and the demo, tools as text
    text, ids, labels = tokenize(mistral_tokenizer, row, mistral, fmt="thudm")
    assert trained_runs(mistral_tokenizer, text, ids, labels) == [
        " I will count them.\n<tool_call>\n"
        '{"name": "bash", "arguments": {"cmd": "wc -l notes.txt"}}\n</tool_call></s>',
        " notes.txt has 3 lines.</s>",
    ]
    masked = masked_text(mistral_tokenizer, text, ids, labels)
    assert " Ok.</s>" in masked and " ls -1 /etc | wc -l</s>" in masked
    assert "[INST] <tool_response>\n3 notes.txt\n</tool_response> [/INST]" in masked


def test_recipe_trains_only_the_flagged_turns(
    tiny_mistral_dir: Path, exported: Path, tmp_path: Path, mistral_tokenizer: Any
) -> None:
    from genteach.train.recipe import train_from_config

    config = {
        "model_name_or_path": str(tiny_mistral_dir),
        "sources": [{"path": str(exported), "splits": ["tool_use"]}],
        "max_length": 512,
        "max_steps": 1,
        "per_device_train_batch_size": 1,
        "use_cpu": True,
        "bf16": False,
        "report_to": "none",
        "save_strategy": "no",
        "output_dir": str(tmp_path / "out"),
    }  # assistant_only_loss unset: the recipe's default
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(config))
    result = train_from_config(str(path))
    batch = next(iter(result.trainer.get_train_dataloader()))
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    runs = trained_runs(mistral_tokenizer, MISTRAL_TEXT, ids, labels)
    assert "".join(runs) == MISTRAL_TRAINED and len(runs) == 2
    assert result.report.trained_tokens == sum(1 for x in labels if x != -100)


AGENT_TRAJECTORY: list[Message] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Answer with one command. Say OK. if you understand."},
    {"role": "assistant", "content": "OK.", "trained": False},  # scripted
    {"role": "user", "content": "Demo: count the files in /etc."},
    {"role": "assistant", "content": "Act: bash\nls -1 /etc | wc -l", "trained": False},  # demo
    {"role": "user", "content": "Task: how many lines has notes.txt?"},
    {"role": "assistant", "content": "Act: bash\nwc -l notes.txt"},
    {"role": "user", "content": "The output of the OS:\n3 notes.txt"},
    {"role": "assistant", "content": "Act: answer(3)"},
]
LLAMA2_TEXT = (
    "<s>[INST] <<SYS>>\nYou act in a Linux shell.\n<</SYS>>\n\nAnswer with one command. Say OK."
    " if you understand. [/INST] OK. </s><s>[INST] Demo: count the files in /etc. [/INST] Act: "
    "bash\nls -1 /etc | wc -l </s><s>[INST] Task: how many lines has notes.txt? [/INST] Act: bash"
    "\nwc -l notes.txt </s><s>[INST] The output of the OS:\n3 notes.txt [/INST] Act: answer(3) </s>"
)


def test_agentlm_template_trains_only_the_models_own_turns(mistral_tokenizer: Any) -> None:
    """AgentLM's recipe on Llama-2-chat's format (``genteach:llama2-chat``; Mistral-7B-v0.1's
    tokenizer stands in for Llama-2's, which shares its ``<s>``/``</s>`` and is not offline):
    the scripted "OK." and the demonstration carry no loss, the task's turns do."""
    from genteach.train.templates import resolve_chat_template

    template = resolve_chat_template(mistral_tokenizer, "llama", "genteach:llama2-chat")
    rendered, ids, labels = tokenize(mistral_tokenizer, {"messages": AGENT_TRAJECTORY}, template)
    assert rendered == LLAMA2_TEXT
    runs = trained_runs(mistral_tokenizer, rendered, ids, labels)
    assert runs == [" Act: bash\nwc -l notes.txt </s>", " Act: answer(3) </s>"]
    masked = masked_text(mistral_tokenizer, rendered, ids, labels)
    assert "OK." in masked and "ls -1 /etc | wc -l" in masked and "3 notes.txt" in masked
    with pytest.raises(ValueError, match=r"genteach ships no such template .*genteach:mistral"):
        resolve_chat_template(mistral_tokenizer, "llama", "genteach:llama9")


def test_the_agentlm_config_mixes_agent_data_at_eta() -> None:
    """The shipped AgentLM config: Llama-2-chat, its template, agent data at 0.2."""
    config = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "configs/train/agentlm_llama2_7b.yaml").read_text()
    )
    assert config["model_name_or_path"] == "meta-llama/Llama-2-7b-chat-hf"
    assert config["chat_template_path"] == "genteach:llama2-chat"
    assert config["assistant_only_loss"] is True
    weights = {s["name"]: s["weight"] for s in config["sources"]}
    assert sum(w for n, w in weights.items() if n.startswith("agent")) == pytest.approx(0.2)
    assert sum(weights.values()) == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["messages", "thudm"])
def test_db_trajectories_export_load_and_train(
    fmt: str, tiny_mistral_dir: Path, tmp_path: Path, mistral_tokenizer: Any
) -> None:
    """Issue 13's path end to end: the database skill's kept trajectories (scripted teacher)
    are exported, load with ``datasets`` in both layouts, and train with the recipe; the
    format's instructions and the scripted "Ok." carry no loss, every action does."""
    import datasets

    from genteach.train.recipe import train_from_config
    from test_db_skill import run as run_db_skill  # tests/ is on the path (prepend mode)

    summary, out = run_db_skill(tmp_path / "run", wrong=False, run_seed=0)
    export_dataset(out, tmp_path / "hf")
    rows = datasets.load_dataset(str(tmp_path / "hf"), split="db")
    assert len(rows) == summary.records > 0  # type: ignore[attr-defined]
    first = rows[0]["conversations"]
    assert first[1] == {"from": "gpt", "value": "Ok.", "loss": False}
    assert all(t["loss"] for t in first[2:] if t["from"] == "gpt")

    config = {
        "model_name_or_path": str(tiny_mistral_dir),
        "sources": [{"path": str(tmp_path / "hf"), "splits": ["db"], "format": fmt}],
        "max_length": 2048,
        "packing": False,
        "max_steps": 1,
        "per_device_train_batch_size": 1,
        "use_cpu": True,
        "bf16": False,
        "report_to": "none",
        "save_strategy": "no",
        "output_dir": str(tmp_path / "out"),
    }
    path = tmp_path / "db.yaml"
    path.write_text(yaml.safe_dump(config))
    result = train_from_config(str(path))
    assert result.trainer.state.global_step == 1
    batch = next(iter(result.trainer.get_train_dataloader()))
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    trained = mistral_tokenizer.decode([t for t, y in zip(ids, labels, strict=True) if y != -100])
    context = mistral_tokenizer.decode([t for t, y in zip(ids, labels, strict=True) if y == -100])
    assert "Action: Operation" in trained or "Action: Answer" in trained
    assert "Ok." not in trained and "Ok." in context
    assert "The name of this table is" in context and "The name of this table is" not in trained
