"""The CPU smoke config on the real small model the [local] extra ships (slow: 3-7 min on
2 shared cores, see docs/training.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from genteach.train import cli

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_model() -> Path:
    local_assets = pytest.importorskip("genteach.models.local_assets")
    return Path(local_assets.default_model_dir())


def test_qwen_template_masks_real_tokenizer(local_model: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    from genteach.train.data import normalize_row, tokenize_batch
    from genteach.train.templates import resolve_chat_template

    tokenizer = AutoTokenizer.from_pretrained(local_model)
    model_type = AutoConfig.from_pretrained(local_model).model_type
    assert model_type == "qwen2"
    template = resolve_chat_template(tokenizer, model_type)
    row = normalize_row(
        {
            "messages": [
                {"role": "user", "content": "What is 2 plus 3?"},
                {"role": "assistant", "content": "2 plus 3 is 5."},
            ]
        }
    )
    batch: dict[str, list[Any]] = {
        "messages": [row.messages],
        "prompt": [""],
        "completion": [""],
        "bad": [""],
    }
    out = tokenize_batch(batch, tokenizer, template, 256)
    ids, labels = out["input_ids"][0], out["labels"][0]
    trained = tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != -100])
    assert trained == "2 plus 3 is 5.<|im_end|>\n"
    # the prompt is rendered as Qwen's own template renders it at inference
    user = [{"role": "user", "content": "What is 2 plus 3?"}]
    prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    assert str(tokenizer.decode(ids)).startswith(str(prompt))


def test_qwen_template_renders_tool_turns_as_qwen_does(local_model: Path) -> None:
    from transformers import AutoTokenizer

    from genteach.train.templates import read_template, template_message

    from .test_flags import QWEN_TEXT, TRAJECTORY

    tokenizer = AutoTokenizer.from_pretrained(local_model)
    turns = [template_message(dict(m)) for m in TRAJECTORY]
    own = tokenizer.apply_chat_template(turns, tokenize=False)  # Qwen2.5's own template
    assert own == QWEN_TEXT
    ours = tokenizer.apply_chat_template(
        turns, chat_template=read_template("qwen2.jinja"), tokenize=False
    )
    assert ours == own


def test_smoke_config_trains_and_loss_goes_down(
    local_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genteach.train.recipe import train_from_config

    monkeypatch.chdir(ROOT)  # the config's data paths are relative to the repository root
    result: Any = train_from_config(
        "configs/train/smoke_cpu.yaml", ["--output_dir", str(tmp_path / "smoke")]
    )
    losses = [h["loss"] for h in result.trainer.state.log_history if "loss" in h]
    assert len(losses) == 5
    assert min(losses[1:]) < 0.5 * losses[0] and losses[-1] < losses[0], losses
    assert (tmp_path / "smoke" / "model.safetensors").exists()
    assert (tmp_path / "smoke" / "data_report.json").exists()


def test_cli_runs_inspect_on_the_smoke_config(
    local_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    argv = ["inspect", "--config", "configs/train/smoke_cpu.yaml", "--color", "never"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "<|im_end|>\n]]" in printed and "agent" in printed and "general" in printed
