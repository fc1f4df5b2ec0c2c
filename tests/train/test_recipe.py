"""The recipe end to end on a tiny Mistral: config parsing, training, resume, LoRA, CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

import genteach.train
from genteach.train import cli
from genteach.train.recipe import parse_args, train_from_config

from .conftest import SAMPLE_PAIRS, THUDM_ROWS, write_jsonl

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


@pytest.fixture
def tiny_config(tiny_mistral_dir: Path, tmp_path: Path) -> Path:
    pairs = write_jsonl(tmp_path / "pairs.jsonl", SAMPLE_PAIRS * 2, extra_lines=("oops",))
    thudm = write_jsonl(tmp_path / "thudm.jsonl", THUDM_ROWS)
    config = {
        "model_name_or_path": str(tiny_mistral_dir),
        "sources": [
            {"path": str(pairs), "name": "general", "weight": 0.8},
            {"path": str(thudm), "name": "agent", "format": "thudm", "weight": 0.2},
        ],
        "max_length": 96,
        "packing": True,
        "learning_rate": 3e-3,
        "max_steps": 4,
        "per_device_train_batch_size": 2,
        "activation_checkpointing": False,
        "use_cpu": True,
        "bf16": False,
        "logging_steps": 1,
        "save_steps": 2,
        "report_to": "none",
        "output_dir": str(tmp_path / "out"),
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def losses(result: Any) -> list[float]:
    return [h["loss"] for h in result.trainer.state.log_history if "loss" in h]


def test_public_names() -> None:
    assert set(genteach.train.__all__) == {
        "LOCAL_MODEL",
        "DataArguments",
        "DataReport",
        "PrecisionWarning",
        "PromptLossWarning",
        "RecipeArguments",
        "RecipeResult",
        "SourceConfig",
        "build_trainer",
        "load_tokenizer",
        "parse_args",
        "prepare_dataset",
        "resolve_chat_template",
        "tokenizer_from_sentencepiece",
        "train",
        "train_from_config",
    }


def test_yaml_then_command_line_overrides(tiny_config: Path) -> None:
    data_args, training_args, model_args, _ = parse_args(
        ["--config", str(tiny_config), "--learning_rate", "1e-4", "--max_steps", "7"]
    )
    assert training_args.learning_rate == 1e-4 and training_args.max_steps == 7
    assert training_args.max_length == 96 and training_args.packing
    assert [s.weight for s in data_args.sources] == [0.8, 0.2]
    assert str(model_args.model_name_or_path).endswith("tiny-mistral0")


def test_orca3_default_config_is_the_orca3_recipe() -> None:
    # bf16 needs a GPU; --use_cpu lets the config be parsed here
    data_args, args, model, recipe = parse_args(
        ["--config", str(CONFIGS / "orca3_mistral7b.yaml"), "--use_cpu", "true"]
    )
    assert model.model_name_or_path == "mistralai/Mistral-7B-v0.1"
    assert (args.max_length, args.packing, args.packing_strategy) == (8192, True, "bfd")
    assert args.assistant_only_loss and args.bf16
    assert model.dtype == "float32" and not recipe.pure_bf16  # fp32 master weights
    assert args.activation_checkpointing
    assert args.optim.startswith("adamw") and args.learning_rate == 8e-6
    assert args.lr_scheduler_type == "cosine" and args.warmup_steps == 500
    assert args.weight_decay == 0.1 and args.num_train_epochs == 3
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps * 8 == 128
    assert data_args.sources


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_config_says_how_to_run_it(path: Path) -> None:
    text = path.read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    assert "genteach train" in header or "-m genteach.train" in header, path
    assert isinstance(yaml.safe_load(text), dict)
    if path.parent.name == "accelerate":
        from accelerate.commands.config.config_args import ClusterConfig

        assert "accelerate launch" in header
        ClusterConfig.from_yaml_file(str(path))  # accelerate accepts every key
    else:
        parse_args(["--config", str(path), "--use_cpu", "true"])  # every field is known


def test_tiny_mistral_trains_resumes_and_saves(tiny_config: Path, tmp_path: Path) -> None:
    first = train_from_config(str(tiny_config), ["--max_steps", "2"])
    out = tmp_path / "out"
    assert (out / "checkpoint-2").is_dir() and (out / "chat_template.jinja").exists()
    report = json.loads((out / "data_report.json").read_text())
    assert report["sources"][0]["bad"] == {"malformed": 1}
    assert first.trainer.state.global_step == 2

    resumed = train_from_config(
        str(tiny_config), ["--max_steps", "4", "--resume_from_checkpoint", "last"]
    )
    assert resumed.trainer.state.global_step == 4
    steps = [h["step"] for h in resumed.trainer.state.log_history if "loss" in h]
    assert steps[0] == 1 and steps[-1] == 4  # history of steps 1-2 restored from the checkpoint
    assert losses(resumed)[-1] < losses(first)[0]


def test_lora_option(tiny_config: Path, tmp_path: Path) -> None:
    result = train_from_config(
        str(tiny_config),
        [
            "--max_steps",
            "1",
            "--use_peft",
            "true",
            "--lora_r",
            "4",
            "--lora_target_modules",
            "q_proj",
            "v_proj",
            "--save_strategy",
            "no",
        ],
    )
    assert (tmp_path / "out" / "adapter_config.json").exists()
    model: Any = result.trainer.model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert 0 < trainable < total / 10


def test_cli_inspect_shows_trained_tokens(
    tiny_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["inspect", "--config", str(tiny_config), "--color", "never"]) == 0
    printed = capsys.readouterr().out
    assert "[[" in printed and "</s>]]" in printed  # trained runs, EOS included
    assert "of them trained" in printed and "malformed: 1" in printed


def test_cli_usage_and_missing_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([]) == 2
    assert cli.main(["--max_steps", "3"]) == 2
    assert "give --config or --sources" in capsys.readouterr().err
    ran: list[list[str]] = []
    monkeypatch.setattr("genteach.train.recipe.main", ran.append)
    assert cli.main(["--sources=data.jsonl", "--model_name_or_path", "m"]) == 0
    assert ran == [["--sources=data.jsonl", "--model_name_or_path", "m"]]  # no config needed
    monkeypatch.setattr(cli, "missing_extra", lambda: ["trl"])
    assert cli.main(["--config", "x.yaml"]) == 2
    assert "pip install 'genteach[train]'" in capsys.readouterr().err


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, genteach.train, genteach.train.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(out.stdout))
    heavy = {"autogen_core", "autogen_agentchat", "autogen_ext", "openai", "tiktoken"}
    heavy |= {"torch", "transformers", "trl", "datasets"}  # loaded when a function runs
    assert not loaded & heavy, loaded & heavy


def test_assistant_only_loss_is_the_default_everywhere(
    tiny_mistral_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = write_jsonl(tmp_path / "pairs.jsonl", SAMPLE_PAIRS)
    # the command: no config, no --assistant_only_loss
    argv = ["inspect", "--sources", str(pairs), "--model_name_or_path", str(tiny_mistral_dir)]
    assert cli.main([*argv, "--color", "never"]) == 0
    printed = capsys.readouterr().out
    total = printed.strip().splitlines()[-1]
    assert total.startswith("total: 12 rows") and "100.0% of them trained" not in total
    share = float(total.split(", ")[-1].split("%")[0])
    assert 10 < share < 50, total  # the answers and their EOS, not the prompts
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated gradient_checkpointing
        _, training_args, _, _ = parse_args(["--sources", str(pairs), "--use_cpu", "true"])
    assert training_args.assistant_only_loss and training_args.activation_checkpointing
    assert cli.main([*argv, "--assistant_only_loss", "false"]) == 0
    assert "100.0% of them trained" in capsys.readouterr().out  # only when asked for


def test_an_sftconfig_that_trains_prompts_warns(tiny_mistral_dir: Path, tmp_path: Path) -> None:
    from trl import ModelConfig, SFTConfig

    from genteach.train import DataArguments, PromptLossWarning, build_trainer

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    data = DataArguments(sources=[str(empty)])  # a path alone is a source
    model = ModelConfig(model_name_or_path=str(tiny_mistral_dir))
    config = SFTConfig(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[])
    assert not config.assistant_only_loss  # TRL's own default
    with (
        pytest.warns(PromptLossWarning, match="prompts and context turns are trained"),
        pytest.raises(ValueError, match="no usable rows"),
    ):
        build_trainer(data, config, model)


def test_chat_template_without_markers_is_refused(tiny_config: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.jinja"
    plain.write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    with pytest.raises(ValueError, match="generation"):
        train_from_config(str(tiny_config), ["--chat_template_path", str(plain)])


def test_help_lists_inspect(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    usage_lines = [line.strip() for line in printed.splitlines()]
    assert any(line.startswith("genteach train inspect --config") for line in usage_lines)
    assert any(line.startswith("genteach train --sources DATA.jsonl") for line in usage_lines)
    assert "--pure_bf16" in printed and "--assistant_only_loss" in printed


def test_genteach_local_names_the_default_or_a_shipped_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``genteach:local`` is the default embedded model's folder, ``genteach:local:NAME`` a
    shipped one's; any other name is passed through, and an unknown shipped name is refused."""
    from genteach.models import local_assets
    from genteach.train.recipe import resolve_model_path

    built: list[str] = []
    monkeypatch.setattr(
        local_assets,
        "default_model_dir",
        lambda cache_dir=None, *, spec=None: built.append(spec.name if spec else "-") or "dir",
    )
    monkeypatch.delenv(local_assets.LOCAL_MODEL_ENV, raising=False)
    assert resolve_model_path("genteach:local") == "dir"
    assert resolve_model_path("genteach:local:qwen2.5-coder-0.5b-instruct") == "dir"
    assert built == ["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct"]
    assert resolve_model_path("mistralai/Mistral-7B-v0.1") == "mistralai/Mistral-7B-v0.1"
    with pytest.raises(ValueError, match="no shipped model 'qwen-9b'"):
        resolve_model_path("genteach:local:qwen-9b")
